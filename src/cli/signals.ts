import { EXIT } from './exit-codes.js';

/**
 * Graceful shutdown for long-running commands: the first SIGINT or SIGTERM calls `graceful`
 * (stop claiming, let running work finish); a second one calls `force`, which by default exits
 * at once with 130/143. Returns a function that removes the handlers.
 *
 * @example
 * ```ts
 * const release = onShutdownSignal(() => void engine.stop());
 * try { await longWork(); } finally { release(); }
 * ```
 */
export function onShutdownSignal(graceful: (signal: NodeJS.Signals) => void, force: (signal: NodeJS.Signals) => void = exitFor): () => void {
  let received = false;
  const handler = (signal: NodeJS.Signals) => {
    if (received) {
      force(signal);
      return;
    }
    received = true;
    graceful(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

/** The conventional exit code for a process stopped by `signal`. */
export function exitCodeForSignal(signal: NodeJS.Signals): number {
  return signal === 'SIGINT' ? EXIT.interrupted : EXIT.terminated;
}

function exitFor(signal: NodeJS.Signals): never {
  process.exit(exitCodeForSignal(signal));
}
