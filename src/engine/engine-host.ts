import type { Logger } from 'pino';
import type { StoreTransaction } from '../persistence/store.js';
import type { Clock } from './options.js';
import type { AppliedTransition, NewPromiseSpec, PromiseTransitions } from './transitions.js';

/** What an engine part (periodic schedules, inboxes) may use of the engine that owns it. */
export interface EngineHost {
  readonly clock: Clock;
  readonly log: Logger;
  readonly transitions: PromiseTransitions;
  /** True between `start()` and `stop()`. */
  readonly started: boolean;
  /** One transaction; its transitions are announced after the commit. */
  write<T>(work: (tx: StoreTransaction, now: number) => Promise<{ value: T; transitions: AppliedTransition[] }>): Promise<T>;
  /** Validates an item as `enqueue` would and returns what to insert. */
  specOf(item: { type: string; payload?: unknown; key?: string; priority?: number }, payloadPath: string): NewPromiseSpec;
}
