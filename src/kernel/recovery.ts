import { promiseLaw } from '../machines/transition-table.js';
import type { PromiseStatus } from '../machines/promise-machine.js';
import type { ExpiredLease } from '../persistence/store.js';
import { retryDelayMs } from './backoff.js';
import type { ClaimRunner } from './claim-runner.js';
import type { KernelContext } from './context.js';
import type { ResumeSummary } from './events.js';
import { isDeadLocalOwner } from './local-process.js';
import { DEFAULT_MAX_LEASE_LOSSES } from './options.js';
import { stepOf, type ClaimRef } from './transition-types.js';
import type { UnitOfWork } from './unit-of-work.js';

const RECOVERY_BATCH = 500;

/**
 * Brings the database back to a state the kernel can run from: on start, every unfinished
 * promise is counted and checked against its machine, waiting promises re-check their parents,
 * and claims held by dead processes are taken back; while running, claims whose lease expired.
 */
export class Recovery {
  readonly #ctx: KernelContext;
  readonly #runner: ClaimRunner;

  constructor(ctx: KernelContext, runner: ClaimRunner) {
    this.#ctx = ctx;
    this.#runner = runner;
  }

  /** Resumes every unfinished promise (the row is the truth; a snapshot that disagrees is rewritten from it). */
  async rehydrate(): Promise<ResumeSummary> {
    const resumed = { waiting: 0, pending: 0, in_progress: 0, total: 0 };
    const damaged: Array<{ id: number; status: PromiseStatus }> = [];
    const owners = new Set<string>();
    for await (const row of this.#ctx.store.unfinished()) {
      const status = row.status as 'waiting' | 'pending' | 'in_progress';
      resumed[status]++;
      resumed.total++;
      if (row.snapshot !== promiseLaw.snapshotText(status)) damaged.push({ id: row.id, status });
      if (row.lease_owner) owners.add(row.lease_owner);
    }
    const deadOwners = [...owners].filter((owner) => isDeadLocalOwner(owner));
    // The count is returned, not accumulated in the closure: a store may run the work again.
    let recovered = await this.#ctx.write(async (uow) => {
      for (const { id, status } of damaged) await uow.tx.repairSnapshot(id, status, promiseLaw.snapshotText(status));
      await this.#ctx.transitions.settleWaiting(uow);
      let count = 0;
      for (const owner of deadOwners) {
        for (const lease of await uow.tx.leasesOwnedBy(owner)) if (await this.#loseLease(uow, lease)) count++;
      }
      return count;
    });
    recovered += await this.recoverExpiredLeases();
    for (const { id } of damaged) this.#ctx.options.logger.warn({ promiseId: id }, 'snapshot did not match its status; rewritten from the row');
    return { resumed, recovered, repairedSnapshots: damaged.length };
  }

  /** Takes back every claim whose lease expired, but this process's own live ones; returns how many. */
  async recoverExpiredLeases(): Promise<number> {
    let recovered = 0;
    for (;;) {
      const count = await this.#ctx.write(async (uow) => {
        const expired = await uow.tx.expiredLeases(uow.now, RECOVERY_BATCH);
        let applied = 0;
        for (const lease of expired) {
          if (this.#runner.has(lease.id)) continue;
          if (await this.#loseLease(uow, lease)) applied++;
        }
        return { seen: expired.length, applied };
      });
      recovered += count.applied;
      // Stop when the batch was short, or when it held only this process's own live claims.
      if (count.seen < RECOVERY_BATCH || count.applied === 0) return recovered;
    }
  }

  #loseLease(uow: UnitOfWork, lease: ExpiredLease): Promise<boolean> {
    const task = this.#ctx.tasks.get(lease.type);
    const claim: ClaimRef = {
      step: stepOf(lease),
      id: lease.id,
      type: lease.type,
      leaseToken: lease.lease_token,
      attempts: lease.attempts,
      maxAttempts: lease.max_attempts,
      leaseLosses: lease.lease_losses,
    };
    const retryAt = uow.now + (task ? retryDelayMs(task.options, lease.attempts) : 0);
    const maxLosses = task?.options.maxLeaseLosses ?? DEFAULT_MAX_LEASE_LOSSES;
    return this.#ctx.transitions.loseLease(uow, claim, lease.lease_losses + 1, maxLosses, retryAt);
  }
}
