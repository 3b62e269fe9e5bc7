import { CliError, EXIT } from './exit-codes.js';
import { openEngine, type GlobalOptions } from './open-engine.js';
import { formatDuration, type Output } from './output.js';
import { createProgress } from './progress.js';
import { exitCodeForSignal, onShutdownSignal } from './signals.js';

export interface DeadLettersOptions extends GlobalOptions {
  clear?: boolean;
  retry?: boolean;
  limit: number;
}

/** `promised dead-letters [--retry | --clear]`: promises that failed for good; `--retry` retries them, `--clear` empties the record. */
export async function deadLettersCommand(options: DeadLettersOptions, output: Output): Promise<number> {
  if (options.clear && options.retry) throw new CliError('INVALID_ARGUMENT', '--retry and --clear exclude each other: retry the dead letters, or forget them');
  const engine = await openEngine(options.db, { mustExist: true, changeCheckIntervalMs: 0 });
  try {
    if (options.retry) {
      const outcome = await engine.deadLetters.retryAll();
      output.result(outcome, () =>
        [`retried ${outcome.retried.length} dead letter${outcome.retried.length === 1 ? '' : 's'}`, ...outcome.skipped.map((skip) => `skipped ${skip.id}: ${skip.code}`)].join('\n'),
      );
      return EXIT.ok;
    }
    if (options.clear) {
      const { removed } = await engine.deadLetters.clear();
      output.result({ removed }, () => `cleared ${removed} dead letter${removed === 1 ? '' : 's'} (the failed promises themselves stay; see promised list --status failed)`);
      return EXIT.ok;
    }
    const letters = await engine.deadLetters.list({ limit: options.limit });
    output.result(letters, () => {
      if (letters.length === 0) return 'no dead letters';
      const now = Date.now();
      return letters
        .map((l) => `${l.promiseId.padEnd(8)} ${l.type}  failed ${formatDuration(now - l.failedAt.getTime())} ago after ${l.attempts} attempt${l.attempts === 1 ? '' : 's'}: ${l.error.code}: ${l.error.message}`)
        .join('\n');
    });
    return EXIT.ok;
  } finally {
    await engine.stop();
  }
}

export interface CleanupOptions extends GlobalOptions {
  olderThan?: number;
}

/**
 * `promised cleanup [--older-than 7d]`: removes finished promises whose results expired, and with
 * `--older-than` every promise finished longer ago than that. Batches of rows, a bar on a
 * terminal; Ctrl-C stops after the current batch (what was removed stays removed).
 */
export async function cleanupCommand(options: CleanupOptions, output: Output): Promise<number> {
  const engine = await openEngine(options.db, { mustExist: true, changeCheckIntervalMs: 0 });
  const stats = await engine.stats();
  const progress = await createProgress('cleanup');
  let interruptedBy: NodeJS.Signals | undefined;
  let removedSoFar = 0;
  const release = onShutdownSignal((signal) => {
    interruptedBy = signal;
    void engine.stop();
  });
  // At most every finished promise can go: a fair total for the bar.
  const finished = stats.completed + stats.failed;
  try {
    const { removed } = await engine.cleanup({
      olderThan: options.olderThan,
      onProgress: (count) => {
        removedSoFar = count;
        progress.update(count, Math.max(finished, count));
      },
    });
    progress.stop();
    output.result({ removed }, () => `removed ${removed} finished promise${removed === 1 ? '' : 's'}`);
    return EXIT.ok;
  } catch (error) {
    progress.stop();
    if (interruptedBy === undefined) throw error;
    throw new CliError('INTERRUPTED', `cleanup interrupted after removing ${removedSoFar} promises`, exitCodeForSignal(interruptedBy));
  } finally {
    release();
    await engine.stop();
  }
}

/** `promised pause TYPE` / `promised resume TYPE`: a task type held back, or let go, in every process on the database. */
export async function pauseCommand(action: 'pause' | 'resume', type: string, options: GlobalOptions, output: Output): Promise<number> {
  const engine = await openEngine(options.db, { mustExist: true, changeCheckIntervalMs: 0 });
  try {
    await (action === 'pause' ? engine.pause(type) : engine.resume(type));
    const { paused } = await engine.stats();
    output.result({ type, paused: paused.includes(type) }, () => (action === 'pause' ? `paused ${type}: no process claims it until promised resume ${type}` : `resumed ${type}`));
    return EXIT.ok;
  } finally {
    await engine.stop();
  }
}
