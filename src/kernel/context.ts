import type { Store } from '../persistence/store.js';
import type { KernelEmitter } from './events.js';
import type { ResolvedEngineOptions } from './options.js';
import type { TaskRegistry } from './task-registry.js';
import type { PromiseTransitions } from './transitions.js';
import type { Work } from './unit-of-work.js';

/** What the kernel's own parts (claim runner, scheduler, recovery) share. Internal to the kernel. */
export interface KernelContext {
  readonly store: Store;
  readonly options: ResolvedEngineOptions;
  /** This process's lease owner id (`host:pid:nonce`). */
  readonly owner: string;
  readonly tasks: TaskRegistry;
  readonly transitions: PromiseTransitions;
  readonly emitter: KernelEmitter;
  /** The one write path: a unit of work per transaction attempt. */
  write<T>(work: Work<T>): Promise<T>;
  /** Reports an error no caller can receive: logged, and emitted as `error`. */
  reportError(error: unknown, message: string): void;
}
