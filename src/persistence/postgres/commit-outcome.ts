import pg from 'pg';
import { isConnectionLoss } from './postgres-errors.js';

const BACKOFF_MIN_MS = 5;
const BACKOFF_MAX_MS = 1_000;

/** Exponential backoff with jitter for the `attempt`-th retry. */
export function backoffMs(attempt: number): number {
  return Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt) * (0.5 + Math.random());
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs the commit statements (simple protocol), handing the `xid` column's value to `onXid` as
 * soon as its row arrives: if the connection then fails, the caller still knows which
 * transaction to ask about. Resolves with the xid (null: the transaction wrote nothing).
 */
export function commitReportingXid(client: pg.PoolClient, text: string, onXid: (xid: string | null) => void): Promise<string | null> {
  return new Promise((resolve, reject) => {
    let xid: string | null = null;
    const query = new pg.Query(text);
    query.on('row', (row: { xid?: string | null }) => {
      if ('xid' in row) onXid((xid = row.xid ?? null));
    });
    query.on('error', reject);
    query.on('end', () => resolve(xid));
    client.query(query);
  });
}

/**
 * Whether transaction `xid` committed, asked on a new connection (`txid_status`) until the
 * server answers or `deadline` passes: 'committed', 'aborted' (which includes a transaction the
 * server was running when it went down), or 'unknown'.
 */
export async function transactionStatus(pool: pg.Pool, xid: string, deadline: number, closed: () => boolean): Promise<'committed' | 'aborted' | 'unknown'> {
  for (let attempt = 0; !closed(); attempt++) {
    try {
      const { rows } = await pool.query<{ status: string | null }>('select txid_status($1::bigint) as status', [xid]);
      const status = rows[0]?.status;
      if (status === 'committed' || status === 'aborted') return status;
      // 'in progress': the old session has not ended yet (the server has not noticed the cut).
      if (status !== 'in progress') return 'unknown';
    } catch (error) {
      if (!isConnectionLoss(error)) return 'unknown';
    }
    if (Date.now() >= deadline) return 'unknown';
    await sleep(backoffMs(attempt));
  }
  return 'unknown';
}
