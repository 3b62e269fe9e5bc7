import { Cron } from 'croner';
import { InvalidOptionError, InvalidScheduleError, ScheduleNotRegisteredError } from '../errors.js';
import type { CatchUp, PeriodicContext, PeriodicOptions } from './public-types.js';
import type { KernelPort } from '../kernel/port.js';
import { timerDelay } from '../kernel/timers.js';
import { detachedFromTrace } from '../kernel/tracing.js';
import type { UnitOfWork } from '../kernel/unit-of-work.js';


export interface PeriodicDefinition {
  name: string;
  /** The task type each run is enqueued as: `periodic:<name>`. */
  type: string;
  pattern: string;
  timezone: string | null;
  catchUp: CatchUp;
  cron: Cron;
}

/** Parses a 5- or 6-field cron expression (croner), or throws a typed error naming what is wrong. */
export function parseCron(name: string, pattern: unknown, timezone: unknown): Cron {
  if (typeof pattern !== 'string' || pattern.trim().length === 0) throw new InvalidScheduleError('INVALID_CRON', name, `cron expression ${String(pattern)} is empty`);
  const fields = pattern.trim().split(/\s+/).length;
  if (fields !== 5 && fields !== 6) throw new InvalidScheduleError('INVALID_CRON', name, `"${pattern}" has ${fields} fields; expected 5 (minute…weekday) or 6 (second first)`);
  if (timezone !== undefined && timezone !== null) {
    if (typeof timezone !== 'string') throw new InvalidScheduleError('INVALID_TIMEZONE', name, `time zone ${String(timezone)} is not a string`);
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    } catch {
      throw new InvalidScheduleError('INVALID_TIMEZONE', name, `unknown time zone "${timezone}"; use an IANA name such as "Europe/Berlin"`);
    }
  }
  try {
    return new Cron(pattern, { paused: true, ...(typeof timezone === 'string' ? { timezone } : {}) });
  } catch (error) {
    throw new InvalidScheduleError('INVALID_CRON', name, `"${pattern}": ${(error as Error).message}`);
  }
}

/** The latest due time at or before `at`, if any. */
export function latestDueAtOrBefore(cron: Cron, at: number): number | undefined {
  return cron.previousRuns(1, new Date(at + 1))[0]?.getTime();
}

/** The first due time strictly after `at`, if any. */
export function nextDueAfter(cron: Cron, at: number): number | undefined {
  return cron.nextRun(new Date(at))?.getTime();
}

/**
 * Creates each run of each periodic schedule once, durably. The schedule's row remembers the due
 * time of its last run; creating a run advances it by compare-and-set *in the transaction that
 * inserts the run* (whose idempotency key is `periodic:<name>:<due ISO time>`), so processes and
 * restarts never create a due run twice. One timer per schedule waits for its next due time.
 */
export class PeriodicSchedules {
  readonly #host: KernelPort;
  readonly #definitions = new Map<string, PeriodicDefinition>();
  readonly #timers = new Map<string, { timer: NodeJS.Timeout; due: number }>();

  constructor(host: KernelPort) {
    this.#host = host;
    host.onClockMoved({ nextDueAt: () => this.#nextDueAt(), fireDue: () => this.fireDue() });
  }

  /** Registers a schedule and its task type `periodic:<name>` (validated before anything is kept). */
  define(name: string, pattern: string, handler: (ctx: PeriodicContext) => unknown, options: PeriodicOptions): void {
    if (typeof name !== 'string' || name.length === 0) throw new InvalidOptionError('name', name, 'a non-empty schedule name');
    const { timezone, catchUp = 'once', ...taskOptions } = options;
    const cron = parseCron(name, pattern, timezone);
    if (catchUp !== 'once' && catchUp !== 'skip') throw new InvalidOptionError('catchUp', catchUp, '"once" or "skip"');
    if (typeof handler !== 'function') throw new InvalidOptionError('handler', handler, 'a function (ctx) => result');
    const type = `periodic:${name}`;
    this.#host.registerTask(type, (payload: { scheduledAt: string }, ctx) => handler({ ...ctx, scheduledAt: new Date(payload.scheduledAt) }), taskOptions);
    this.#definitions.set(name, { name, type, pattern, timezone: timezone ?? null, catchUp, cron });
  }

  /** Registers every schedule, creates the run missed while nothing was running (or skips it), and arms the timers. */
  async start(): Promise<void> {
    for (const definition of this.#definitions.values()) {
      const lastDue = await this.#host.write(async (uow) => {
        const { tx, now } = uow;
        await tx.upsertSchedule(definition.name, definition.pattern, definition.timezone, now);
        const row = await tx.getSchedule(definition.name);
        const latest = latestDueAtOrBefore(definition.cron, now);
        if (row?.last_due_at === null || row?.last_due_at === undefined) {
          // A new schedule starts now: it has missed nothing.
          await tx.advanceSchedule(definition.name, now, now);
          return now;
        }
        if (latest === undefined || latest <= row.last_due_at) return row.last_due_at;
        if (definition.catchUp === 'skip') {
          await tx.advanceSchedule(definition.name, latest, now);
          this.#host.log.info({ schedule: definition.name, skipped: new Date(latest).toISOString() }, 'skipped runs missed while stopped');
          return latest;
        }
        await this.#createRun(uow, definition, latest);
        return latest;
      });
      this.#arm(definition, lastDue);
    }
  }

  #nextDueAt(): number | null {
    const dues = [...this.#timers.values()].map(({ due }) => due);
    return dues.length === 0 ? null : Math.min(...dues);
  }

  /** The clock moved forward (a virtual clock): every schedule whose armed due time passed runs now. */
  async fireDue(): Promise<void> {
    for (const definition of this.#definitions.values()) {
      const armed = this.#timers.get(definition.name);
      if (!armed || armed.due > this.#host.clock.now()) continue;
      clearTimeout(armed.timer);
      this.#timers.delete(definition.name);
      await this.#fire(definition, armed.due);
    }
  }

  /**
   * Creates a run of schedule `name` now, outside its cron times (the schedule's own due times
   * are left as they were); its id. The schedule must be registered in this process.
   */
  async trigger(name: string): Promise<string> {
    const definition = this.#definitions.get(name);
    if (!definition) throw new ScheduleNotRegisteredError(name, [...this.#definitions.keys()]);
    const id = await this.#host.write(async (uow) => {
      const at = new Date(uow.now).toISOString();
      const spec = this.#host.specOf({ type: definition.type, payload: { schedule: name, scheduledAt: at, triggered: true }, key: `periodic:${name}:triggered:${at}` }, 'payload');
      return (await this.#host.promises.create(uow, { ...spec, runAt: uow.now })).id;
    });
    this.#host.wake();
    return String(id);
  }

  stop(): void {
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  /** Creates the run due at `dueAt` unless another process did; returns whether this one did. */
  async #createRun(uow: UnitOfWork, definition: PeriodicDefinition, dueAt: number): Promise<boolean> {
    if (!(await uow.tx.advanceSchedule(definition.name, dueAt, uow.now))) return false;
    const spec = this.#host.specOf(
      { type: definition.type, payload: { schedule: definition.name, scheduledAt: new Date(dueAt).toISOString() }, key: `periodic:${definition.name}:${new Date(dueAt).toISOString()}` },
      'payload',
    );
    return (await this.#host.promises.create(uow, { ...spec, runAt: dueAt })).created;
  }

  #arm(definition: PeriodicDefinition, after: number): void {
    const due = nextDueAfter(definition.cron, Math.max(after, this.#host.clock.now() - 1));
    if (due === undefined || !this.#host.started) return;
    const wait = timerDelay(due - this.#host.clock.now());
    // Detached: each run is a trace of its own, not a child of whatever armed the timer (start()'s caller).
    const timer = setTimeout(detachedFromTrace(() => void this.#fire(definition, due)), wait);
    timer.unref();
    this.#timers.set(definition.name, { timer, due });
  }

  async #fire(definition: PeriodicDefinition, due: number): Promise<void> {
    if (!this.#host.started) return;
    // A timer capped at setTimeout's ceiling (~24.8 days) wakes early: wait again.
    if (this.#host.clock.now() < due - 1_000) {
      this.#arm(definition, due - 1);
      return;
    }
    // A timer that fires after later due times have passed (a stalled event loop, a suspended
    // process) fell behind: those due times were missed while running, and get the same policy
    // as runs missed while stopped: one run at the latest of them, or none.
    const latest = Math.max(due, latestDueAtOrBefore(definition.cron, this.#host.clock.now()) ?? due);
    const behind = latest > due;
    try {
      // A paused schedule (its type paused) skips its due times rather than piling up runs.
      const paused = (await this.#host.store.pausedTypes()).some((row) => row.type === definition.type);
      const created = await this.#host.write(async (uow) => {
        if (paused || (behind && definition.catchUp === 'skip')) {
          await uow.tx.advanceSchedule(definition.name, latest, uow.now);
          return false;
        }
        return this.#createRun(uow, definition, latest);
      });
      if (behind) {
        this.#host.log.warn(
          { schedule: definition.name, dueAt: new Date(due).toISOString(), latest: new Date(latest).toISOString(), catchUp: definition.catchUp },
          'periodic timer fell behind its due times; missed runs handled by the catch-up policy',
        );
      }
      // Losing the race is normal with several processes: the other one's transaction created the run.
      this.#host.log.debug({ schedule: definition.name, dueAt: new Date(latest).toISOString(), created }, created ? 'created a periodic run' : 'periodic run already created elsewhere');
    } catch (error) {
      this.#host.log.error({ schedule: definition.name, err: error }, 'could not create a periodic run; trying again at the next due time');
    }
    this.#arm(definition, latest);
  }
}
