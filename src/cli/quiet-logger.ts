import type { Level, Logger } from 'pino';

const LEVEL_VALUES: Record<Level, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

const noop = () => undefined;

/**
 * The logger of short-lived commands: errors only, on stderr, so a command's own one-line
 * messages are what people read (PROMISED_LOG_LEVEL raises it).
 *
 * pino itself is loaded the first time a line passes the level: a `promised stats` that logs
 * nothing does not pay for loading it. Lines below the level are dropped here, as pino would.
 */
export function quietLogger(): Logger {
  const level = (process.env.PROMISED_LOG_LEVEL ?? 'error') as Level | 'silent';
  return deferredLogger(level, async () => {
    const { default: pino } = await import('pino');
    return pino({ name: 'promised', level }, pino.destination(2));
  });
}

/** A logger whose pino is made when first needed; `child` loggers are deferred the same way. */
function deferredLogger(level: Level | 'silent', load: () => Promise<Logger>): Logger {
  const threshold = level === 'silent' ? Infinity : LEVEL_VALUES[level];
  let loading: Promise<Logger> | undefined;
  const logger = () => (loading ??= load());
  return deferred(threshold, level, logger);
}

function deferred(threshold: number, level: string, logger: () => Promise<Logger>): Logger {
  return new Proxy({} as Logger, {
    get(_target, property) {
      if (property === 'level') return level;
      if (property === 'isLevelEnabled') return (name: Level) => LEVEL_VALUES[name] >= threshold;
      if (property === 'child') {
        return (bindings: Record<string, unknown>) => {
          let child: Promise<Logger> | undefined;
          return deferred(threshold, level, () => (child ??= logger().then((parent) => parent.child(bindings))));
        };
      }
      if (typeof property === 'string' && property in LEVEL_VALUES) {
        if (LEVEL_VALUES[property as Level] < threshold) return noop;
        // pino loads asynchronously: the line is written once it has (a command waits for its
        // pending work before it exits, and pino.destination writes synchronously).
        return (...args: unknown[]) => void logger().then((real) => (real[property as Level] as (...a: unknown[]) => void)(...args));
      }
      return undefined;
    },
  });
}
