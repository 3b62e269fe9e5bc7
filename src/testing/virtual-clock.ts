import { InvalidOptionError } from '../errors.js';

/** A clock that moves only when told: what `createTestEngine` runs on. */
export class VirtualClock {
  #now: number;

  constructor(start: number) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Moves to `at`; never backwards. */
  moveTo(at: number): void {
    this.#now = Math.max(this.#now, at);
  }
}

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `25h`, `90s`, `1.5d`, `250ms` or a number of ms, as milliseconds. */
export function spanMs(span: number | string): number {
  if (typeof span === 'number' && Number.isFinite(span) && span >= 0) return span;
  const match = typeof span === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(span.trim()) : null;
  if (!match) throw new InvalidOptionError('span', span, 'milliseconds (a number ≥ 0) or a duration such as "250ms", "90s", "5m", "25h", "2d"');
  return Number(match[1]) * UNITS[match[2]!]!;
}
