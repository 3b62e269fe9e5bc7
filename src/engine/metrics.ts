import { Counter, Gauge, Histogram, Registry } from './prom-client-classes.js';
import type { EngineEmitter } from './events.js';
import type { EngineStats } from './public-types.js';

/**
 * The engine's metrics in the Prometheus text format (prom-client, on a registry of this engine's
 * own): counters fed by the engine's events as they happen, gauges read from `stats()` at each
 * scrape, so a scrape always shows what the database holds.
 */
export class EngineMetrics {
  readonly #registry = new Registry();

  constructor(emitter: EngineEmitter, stats: () => Promise<EngineStats>) {
    const registers = [this.#registry];
    const attempts = new Counter({ name: 'promised_attempts_total', help: 'Attempts whose handler returned (succeeded) or threw (failed), by type.', labelNames: ['type', 'outcome'], registers });
    const durations = new Histogram({
      name: 'promised_attempt_duration_seconds',
      help: 'How long an attempt’s handler ran, by type.',
      labelNames: ['type'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
      registers,
    });
    const retries = new Counter({ name: 'promised_retries_total', help: 'Attempts that failed and were scheduled again, by type.', labelNames: ['type'], registers });
    const leaseLosses = new Counter({ name: 'promised_lease_losses_total', help: 'Claims taken back after their worker stopped renewing the lease, by type.', labelNames: ['type'], registers });
    const deadLettered = new Counter({ name: 'promised_dead_letters_total', help: 'Promises that failed for good here, by type and error code.', labelNames: ['type', 'code'], registers });
    emitter.on('attempt', (attempt) => {
      attempts.inc({ type: attempt.type, outcome: attempt.outcome });
      durations.observe({ type: attempt.type }, attempt.durationMs / 1_000);
    });
    emitter.on('retrying', (record) => {
      retries.inc({ type: record.type });
      if (record.error?.code === 'LEASE_EXPIRED') leaseLosses.inc({ type: record.type });
    });
    emitter.on('failed', (record) => {
      deadLettered.inc({ type: record.type, code: record.error?.code ?? 'UNKNOWN' });
      if (record.error?.code === 'LEASE_EXPIRED') leaseLosses.inc({ type: record.type });
    });
    this.#gauges(stats);
  }

  /** The metrics, in the Prometheus text exposition format. */
  text(): Promise<string> {
    return this.#registry.metrics();
  }

  get contentType(): string {
    return this.#registry.contentType;
  }

  #gauges(stats: () => Promise<EngineStats>): void {
    const registers = [this.#registry];
    // One read of the database per scrape, shared by every gauge of that scrape.
    let scrape: Promise<EngineStats> | undefined;
    const current = () => (scrape ??= stats().finally(() => setImmediate(() => (scrape = undefined))));
    new Gauge({
      name: 'promised_promises',
      help: 'Promises in the database, by type and status.',
      labelNames: ['type', 'status'],
      registers,
      async collect() {
        this.reset();
        for (const [type, counts] of Object.entries((await current()).byType)) for (const [status, count] of Object.entries(counts)) this.set({ type, status }, count ?? 0);
      },
    });
    new Gauge({
      name: 'promised_oldest_pending_age_seconds',
      help: 'How long the longest-waiting runnable promise has been due.',
      registers,
      async collect() {
        this.set((await current()).oldestPendingAgeMs / 1_000);
      },
    });
    new Gauge({
      name: 'promised_dead_letters',
      help: 'Dead-letter records in the database.',
      registers,
      async collect() {
        this.set((await current()).deadLetters);
      },
    });
    new Gauge({
      name: 'promised_paused_types',
      help: 'Task types paused with engine.pause(type) (1 per paused type).',
      labelNames: ['type'],
      registers,
      async collect() {
        this.reset();
        for (const type of (await current()).paused) this.set({ type }, 1);
      },
    });
  }
}
