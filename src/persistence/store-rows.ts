// The rows and requests the store's interfaces share (store.ts and flow-store.ts).

/** A value, or a promise of it: SQLite answers synchronously, PostgreSQL over the network. */
export type Awaitable<T> = T | Promise<T>;

/** What a claim hands the engine: enough to run the handler and to fence its outcome. */
export interface ClaimedRow {
  id: number;
  type: string;
  payload: string;
  priority: number;
  run_at: number;
  attempts: number;
  max_attempts: number;
  lease_token: number;
  /** Leases lost so far: those attempts do not spend `retries`. */
  lease_losses: number;
  workflow_id: number | null;
  invoke_id: string | null;
  /** The trace context it was enqueued in, as JSON text, or null. */
  trace_context: string | null;
}

export interface ClaimRequest {
  now: number;
  /** Claim rows due at or before this time (`now`, or later to ignore delays). */
  dueBy: number;
  /** Only these task types (the ones this process can run). */
  types: readonly string[];
  limit: number;
  owner: string;
  leaseExpiresAt: number;
  toStatus: string;
  snapshot: string;
}
