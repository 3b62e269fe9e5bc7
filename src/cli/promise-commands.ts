import type { Engine, PromiseStatus } from '../index.js';
import { NotFoundError } from '../errors.js';
import { parseJsonArgument } from './arguments.js';
import { EXIT } from './exit-codes.js';
import { openEngine, type GlobalOptions } from './open-engine.js';
import { formatRecord, formatStats, formatTable, type Output } from './output.js';

/** Runs `work` on an engine opened on an existing database, and closes it. */
async function withEngine<T>(options: GlobalOptions, work: (engine: Engine) => Promise<T>): Promise<T> {
  const engine = await openEngine(options.db, { mustExist: true, changeCheckIntervalMs: 0 });
  try {
    return await work(engine);
  } finally {
    await engine.stop();
  }
}

/** `promised status ID`. */
export async function statusCommand(id: string, options: GlobalOptions, output: Output): Promise<number> {
  const record = await withEngine(options, (engine) => engine.get(id));
  if (!record) throw new NotFoundError(id);
  output.result(record, () => formatRecord(record));
  return EXIT.ok;
}

export interface ListOptions extends GlobalOptions {
  status?: string;
  type?: string;
  limit: number;
}

/** `promised list [--status S] [--type T] [--limit N]`, newest first. */
export async function listCommand(options: ListOptions, output: Output): Promise<number> {
  const records = await withEngine(options, (engine) => engine.list({ status: options.status as PromiseStatus | undefined, type: options.type, limit: options.limit }));
  output.result(records, () => formatTable(records));
  return EXIT.ok;
}

/** `promised stats`. */
export async function statsCommand(options: GlobalOptions, output: Output): Promise<number> {
  const stats = await withEngine(options, (engine) => engine.stats());
  output.result(stats, () => formatStats(stats));
  return EXIT.ok;
}

/** `promised cancel ID`: the promise fails with CANCELLED; a worker running it sees its signal abort. */
export async function cancelCommand(id: string, options: GlobalOptions, output: Output): Promise<number> {
  const record = await withEngine(options, async (engine) => {
    await engine.cancel(id);
    return (await engine.get(id))!;
  });
  output.result({ id: record.id, status: record.status, error: record.error }, () => `cancelled promise ${record.id}`);
  return EXIT.ok;
}

export interface RetryCommandOptions extends GlobalOptions {
  /** JSON text: the payload to run with instead of the stored one. */
  payload?: string;
}

/** `promised retry ID [--payload JSON]`: a failed promise goes back to pending with its attempts reset (and that payload). */
export async function retryCommand(id: string, options: RetryCommandOptions, output: Output): Promise<number> {
  // Parsed before the database is opened: a payload that is not JSON changes nothing.
  const retryOptions = options.payload === undefined ? {} : { payload: parseJsonArgument(options.payload) };
  const record = await withEngine(options, async (engine) => {
    await engine.retry(id, retryOptions);
    return (await engine.get(id))!;
  });
  output.result({ id: record.id, status: record.status, payload: record.payload }, () => `promise ${record.id} is ${record.status} again${options.payload === undefined ? '' : ', with the payload given'}`);
  return EXIT.ok;
}
