import type { ClaimedRow, StoreTransaction } from '../persistence/store.js';
import type { FlowPolicy } from './flow-options.js';
import type { Clock } from './options.js';
import type { UnitOfWork } from './unit-of-work.js';

/** A key another claimer held is tried again this soon (its claim does not wake anyone). */
const CONTENDED_RETRY_MS = 50;

/** What every claim of one pass writes: the new state and the lease. */
export interface ClaimTerms {
  owner: string;
  leaseExpiresAt: number;
  toStatus: string;
  snapshot: string;
}

/** What a flow-controlled claim pass took, and when a rate limit lets the next start through. */
export interface FlowClaim {
  rows: ClaimedRow[];
  /** The earliest time a start refused by a rate limit is allowed; null when none was refused. */
  retryAt: number | null;
}

/**
 * Claims up to `free` due promises of one flow-controlled type, deciding every limit inside the
 * claiming transaction from the rows themselves: the type's running count under its cap, each
 * key's running count under its limit (keys taken least recently served first: round-robin, so
 * a key with a long backlog does not starve one with a few), and each rate key's starts in the
 * last period (a sliding log). On PostgreSQL a claimer locks the type's cap row (waiting) and
 * each key's row (skipping a key another claimer holds): counts are never read by two at once.
 */
export async function claimFlowControlled(uow: UnitOfWork, type: string, policy: FlowPolicy, free: number, dueBy: number, terms: ClaimTerms, clock: Clock): Promise<FlowClaim> {
  const { tx } = uow;
  let budget = free;
  if (policy.globalCap !== null) {
    await tx.lockTypeCap(type);
    budget = Math.min(budget, policy.globalCap - (await tx.countRunning(type, null)));
  }
  // The rate is judged at the time read inside the transaction, once its write lock is held:
  // `uow.now` was read before waiting for it, and a start is recorded when it is decided.
  const pass = new RatePass(tx, type, policy, clock.now());
  const rows: ClaimedRow[] = [];
  if (budget <= 0) return { rows, retryAt: null };
  if (policy.keyLimit === null) {
    for (const candidate of await tx.nextDue({ type, key: null, dueBy, limit: budget * 4 })) {
      if (rows.length >= budget) break;
      const row = await claimIfAllowed(uow, pass, candidate, terms);
      if (row) rows.push(row);
    }
    return { rows, retryAt: pass.retryAt };
  }
  if (tx.serialized && policy.rate === null) {
    // The only writer, no rate to judge per row: one statement claims a promise of each ready key;
    // again while it finds some (a key with room for more is ready again).
    for (let claimed = -1; claimed !== 0 && rows.length < budget; ) {
      const next = await tx.claimReadyKeys({ type, dueBy, keyLimit: policy.keyLimit, limit: budget - rows.length, now: uow.now, ...terms });
      claimed = next.length;
      rows.push(...next);
    }
    return { rows, retryAt: pass.retryAt };
  }
  const keys = await tx.readyFlowKeys({ type, dueBy, keyLimit: policy.keyLimit, limit: budget * 2 });
  for (const { key, running } of keys) {
    if (rows.length >= budget) break;
    const room = Math.min(policy.keyLimit - (await runningUnderLock(tx, type, key, running, pass)), budget - rows.length);
    if (room <= 0) continue;
    const claimed = await claimOfKey(uow, pass, policy, type, key, room, dueBy, terms);
    rows.push(...claimed);
    if (claimed.length > 0) await tx.markKeyStarted(type, key, uow.now);
  }
  return { rows, retryAt: pass.retryAt };
}

/**
 * The key's running count, read under the key's lock where claimers run side by side
 * (PostgreSQL); the only writer (SQLite) trusts the count it read. -1 room when another claimer
 * holds the key.
 */
async function runningUnderLock(tx: StoreTransaction, type: string, key: string, running: number, pass: RatePass): Promise<number> {
  if (tx.serialized) return running;
  if (await tx.lockFlowKey(type, key)) return tx.countRunning(type, key);
  pass.contended();
  return Number.POSITIVE_INFINITY;
}

/** Up to `room` due promises of one key: in one statement without a rate limit, else one by one, each judged by it. */
async function claimOfKey(uow: UnitOfWork, pass: RatePass, policy: FlowPolicy, type: string, key: string, room: number, dueBy: number, terms: ClaimTerms): Promise<ClaimedRow[]> {
  if (policy.rate === null) return uow.tx.claimNextOfKey({ type, key, dueBy, limit: room, now: uow.now, ...terms });
  const rows: ClaimedRow[] = [];
  for (const candidate of await uow.tx.nextDue({ type, key, dueBy, limit: room })) {
    const row = await claimIfAllowed(uow, pass, candidate, terms);
    if (!row) break;
    rows.push(row);
  }
  return rows;
}

async function claimIfAllowed(uow: UnitOfWork, pass: RatePass, candidate: { id: number; rate_key: string | null }, terms: ClaimTerms): Promise<ClaimedRow | undefined> {
  if (!(await pass.allows(candidate.rate_key))) return undefined;
  const row = await uow.tx.claimById({ id: candidate.id, now: uow.now, ...terms });
  if (row) await pass.started(candidate.rate_key);
  return row;
}

/** The rate limit's sliding log, as one claim pass sees it: keys refused once stay refused for the pass. */
class RatePass {
  readonly #tx: StoreTransaction;
  readonly #type: string;
  readonly #rate: FlowPolicy['rate'];
  readonly #now: number;
  readonly #refused = new Set<string>();
  readonly #locked = new Set<string>();
  retryAt: number | null = null;

  constructor(tx: StoreTransaction, type: string, policy: FlowPolicy, now: number) {
    this.#tx = tx;
    this.#type = type;
    this.#rate = policy.rate;
    this.#now = now;
  }

  async allows(rateKey: string | null): Promise<boolean> {
    if (this.#rate === null) return true;
    const key = rateKey ?? '';
    if (this.#refused.has(key)) return false;
    if (!this.#locked.has(key)) {
      if (!(await this.#tx.lockFlowKey(this.#type, `rate:${key}`))) return this.#refuse(key, this.#now + CONTENDED_RETRY_MS);
      this.#locked.add(key);
    }
    const { limit, periodMs } = this.#rate;
    const recent = await this.#tx.recentStarts(this.#type, key, this.#now - periodMs);
    if (recent.count < limit) return true;
    return this.#refuse(key, recent.oldest === null ? this.#now + periodMs : recent.oldest + periodMs);
  }

  async started(rateKey: string | null): Promise<void> {
    if (this.#rate === null) return;
    await this.#tx.recordStart(this.#type, rateKey ?? '', this.#now, this.#now - this.#rate.periodMs);
  }

  /** Another claimer held a key this pass skipped: look again soon. */
  contended(): void {
    this.#hint(this.#now + CONTENDED_RETRY_MS);
  }

  #hint(retryAt: number): void {
    this.retryAt = this.retryAt === null ? retryAt : Math.min(this.retryAt, retryAt);
  }

  #refuse(key: string, retryAt: number | null): false {
    this.#refused.add(key);
    if (retryAt !== null) this.#hint(retryAt);
    return false;
  }
}
