import { InvalidOptionError } from '../errors.js';
import type { KernelContext } from './context.js';
import type { ClaimRef } from './transition-types.js';

/** Progress is emitted at once but written at most this often per promise. */
const PROGRESS_WRITE_INTERVAL_MS = 250;

/**
 * One running claim's progress: every report is emitted at once and the latest is written at
 * most every 250 ms (by the engine's clock); what is still unwritten when the attempt ends is
 * written with its outcome, so a completed promise shows its last report.
 */
export class ProgressWriter {
  readonly #ctx: KernelContext;
  readonly #claim: ClaimRef;
  /** False once the claim is no longer this process's to write (fenced off or finished). */
  readonly #active: () => boolean;
  #timer: NodeJS.Timeout | undefined;
  #unwritten: { current: number; total: number } | undefined;
  #lastWrite = Number.NEGATIVE_INFINITY;

  constructor(ctx: KernelContext, claim: ClaimRef, active: () => boolean) {
    this.#ctx = ctx;
    this.#claim = claim;
    this.#active = active;
  }

  report(current: number, total: number): void {
    if (!Number.isFinite(current) || !Number.isFinite(total) || total < 0) {
      throw new InvalidOptionError('progress', { current, total }, 'finite numbers with total >= 0');
    }
    if (!this.#active()) return;
    this.#ctx.emitter.emit('progress', { id: String(this.#claim.id), type: this.#claim.type, current, total });
    this.#unwritten = { current, total };
    if (this.#timer) return;
    const wait = Math.max(0, this.#lastWrite + PROGRESS_WRITE_INTERVAL_MS - this.#ctx.options.clock.now());
    this.#timer = setTimeout(() => this.#write(), wait);
  }

  /** The report not written yet, taken to be written with the attempt's outcome. */
  takeUnwritten(): { current: number; total: number } | undefined {
    this.stop();
    const unwritten = this.#unwritten;
    this.#unwritten = undefined;
    return unwritten;
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #write(): void {
    this.#timer = undefined;
    const progress = this.#unwritten;
    if (!progress || !this.#active()) return;
    this.#unwritten = undefined;
    this.#lastWrite = this.#ctx.options.clock.now();
    const { id, leaseToken } = this.#claim;
    this.#ctx
      .write(async ({ tx, now }) => tx.saveProgress(id, leaseToken, progress.current, progress.total, now))
      .catch((error: unknown) => this.#ctx.reportError(error, 'could not save progress'));
  }
}
