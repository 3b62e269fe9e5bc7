import { CliError } from './exit-codes.js';

/**
 * Parses an integer option (`--priority -5`, `--concurrency 4`), refusing anything else with
 * exit code 2 before any command runs.
 */
export function integerArgument(name: string, min: number, max: number) {
  return (text: string): number => {
    const value = /^[+-]?\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new CliError('INVALID_ARGUMENT', `${name} "${text}" is not an integer from ${min} to ${max}`);
    }
    return value;
  };
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Parses a duration: `500` or `500ms`, `30s`, `15m`, `12h`, `7d`, `2w`; returns milliseconds. */
export function durationArgument(name: string) {
  return (text: string): number => {
    const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?$/.exec(text.trim());
    const value = match ? Math.round(Number(match[1]) * UNIT_MS[match[2] ?? 'ms']!) : Number.NaN;
    if (!Number.isSafeInteger(value)) {
      throw new CliError('INVALID_ARGUMENT', `${name} "${text}" is not a duration; use milliseconds or a number with ms, s, m, h, d or w (for example 7d)`);
    }
    return value;
  };
}

/** Parses the JSON payload argument of `enqueue`; a payload that does not parse is refused. */
export function parseJsonArgument(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CliError('INVALID_JSON', `the payload is not valid JSON (${(error as Error).message}): ${abbreviate(text)}`);
  }
}

function abbreviate(text: string): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > 60 ? `${flat.slice(0, 57)}...` : flat;
}
