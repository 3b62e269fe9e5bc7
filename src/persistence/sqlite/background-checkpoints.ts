import { createRequire } from 'node:module';

/**
 * WAL checkpoints on a thread of their own.
 *
 * Why: SQLite's automatic checkpoint runs inside whichever commit crosses 1,000 WAL pages, so one
 * commit in a few hundred pays milliseconds: the engine's p99 latency. A second connection on a
 * worker thread checkpoints (PASSIVE: it never blocks readers or the writer) while the engine's
 * own connection, with `wal_autocheckpoint = 0`, only ever appends. The WAL stays bounded.
 */
export interface BackgroundCheckpoints {
  stop(): Promise<void>;
}

// Plain CommonJS, evaluated in the worker: no file to ship beside a bundled CLI.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.filename, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
const checkpoint = () => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {} };
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message === 'stop') { clearInterval(timer); checkpoint(); db.close(); parentPort.postMessage('stopped'); }
});
parentPort.postMessage('ready');
`;

/** Starts checkpointing `filename` every `intervalMs`; resolves once the thread holds its connection. */
export async function startBackgroundCheckpoints(filename: string, intervalMs: number): Promise<BackgroundCheckpoints> {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  // Loaded here: a short command opens the store and never starts the thread.
  const { Worker } = await import('node:worker_threads');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, filename, intervalMs } });
  worker.unref();
  await new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
  });
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        const done = () => resolve();
        worker.once('message', () => void worker.terminate().then(done, done));
        worker.once('error', done);
        worker.once('exit', done);
        worker.postMessage('stop');
      }),
  };
}
