import type { StoreTransaction } from '../persistence/store.js';
import type { AppliedTransition } from './transition-types.js';

/**
 * One attempt at one transaction: what the kernel and the layers above write with. A store may
 * run the work again (PostgreSQL retries a transaction that lost a deadlock); every attempt gets
 * its own unit, and only the unit of the attempt that committed has its transitions announced
 * and its `afterCommit` effects run. A rolled-back attempt takes its effects with it.
 */
export class UnitOfWork {
  /** The transitions this attempt applied, announced after the commit. */
  readonly transitions: AppliedTransition[] = [];
  readonly #effects: Array<() => void> = [];

  constructor(
    readonly tx: StoreTransaction,
    /** The time of this transaction: every row it writes carries it. */
    readonly now: number,
  ) {}

  /** Records a transition applied in this transaction, to be announced after the commit. */
  record(transition: AppliedTransition): void {
    this.transitions.push(transition);
  }

  /** Runs `effect` once this attempt has committed; never for an attempt that rolled back. */
  afterCommit(effect: () => void): void {
    this.#effects.push(effect);
  }

  /** @internal Called by the writer once, after the commit. Every effect runs even if one throws. */
  runEffects(onError: (error: unknown) => void): void {
    for (const effect of this.#effects) {
      try {
        effect();
      } catch (error) {
        onError(error);
      }
    }
  }
}

/** Work done in one transaction. */
export type Work<T> = (uow: UnitOfWork) => Promise<T>;
