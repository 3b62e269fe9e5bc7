import { InvalidOptionError } from '../errors.js';
import { PROMISE_STATUSES } from '../machines/promise-machine.js';
import { integerIn } from '../kernel/options.js';
import { parseId, toRecord } from '../kernel/records.js';
import { hasUnstorableText } from '../kernel/storable-text.js';
import type { PromisePageQuery, Store } from '../persistence/store.js';
import type { PageFilter, PromisePage } from './public-types.js';

/**
 * How many ids one filtered page may read below its cursor: a filter that matches few rows
 * stops there and answers a cursor to go on, so no page reads the whole table however large it
 * grows. A search (a substring of every payload and error message) costs several times an
 * equality per row, so it reads a tenth as many. bench/dashboard-list.js measures both.
 */
export const FILTER_WINDOW = 1_000_000;
export const SEARCH_WINDOW = 100_000;
const MAX_TEXT = 200;

/** One page of promises for `filter`, newest first, and the cursor of the next (older) one. */
export async function readPromisePage(store: Store, filter: PageFilter): Promise<PromisePage> {
  const { window, ...query } = pageQuery(filter);
  if (query.before === 0) query.before = ((await store.newestPromiseId()) ?? 0) + 1;
  // Without a filter every row matches: the page stops at its limit, and needs no floor.
  const floor = window === 0 ? 0 : Math.max(0, query.before - window);
  const rows = await store.pageOfPromises({ ...query, floor });
  const parents = await store.dependenciesOfMany(rows.map((row) => row.id));
  const promises = rows.map((row) => toRecord(row, parents.get(row.id) ?? []));
  // A full page goes on below its last row; a short one below the window it read, unless that
  // window reached the first id.
  const next = rows.length === query.limit ? rows.at(-1)!.id : floor > 1 ? floor : null;
  return { promises, next: next === null ? null : String(next) };
}

/** The validated query; `before` 0 for "from the newest", `window` 0 for "unbounded". */
function pageQuery(filter: PageFilter): Omit<PromisePageQuery, 'floor'> & { window: number } {
  if (typeof filter !== 'object' || filter === null) throw new InvalidOptionError('filter', filter, 'an object { status?, type?, errorCode?, search?, before?, limit? }');
  if (filter.status !== undefined && !PROMISE_STATUSES.includes(filter.status)) throw new InvalidOptionError('status', filter.status, PROMISE_STATUSES.join(' | '));
  const limit = integerIn('limit', filter.limit ?? 50, 1, 1_000);
  const before = filter.before === undefined ? 0 : parseId(filter.before);
  if (before === undefined) throw new InvalidOptionError('before', filter.before, 'a promise id (the `next` of the previous page)');
  const type = text('type', filter.type);
  const errorCode = text('errorCode', filter.errorCode);
  const search = text('search', typeof filter.search === 'string' ? filter.search.trim() || undefined : filter.search);
  const filtered = filter.status !== undefined || type !== null || errorCode !== null;
  return {
    status: filter.status ?? null,
    type,
    errorCode,
    search: search === null ? null : `%${search.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`,
    before,
    limit,
    window: search !== null ? SEARCH_WINDOW : filtered ? FILTER_WINDOW : 0,
  };
}

function text(option: string, value: unknown): string | null {
  if (value === undefined) return null;
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_TEXT || hasUnstorableText(value)) {
    throw new InvalidOptionError(option, value, `a non-empty string of at most ${MAX_TEXT} characters`);
  }
  return value;
}
