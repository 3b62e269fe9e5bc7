import { InvalidMessageError, InvalidOptionError } from '../errors.js';
import { integerIn } from '../kernel/options.js';
import type { TaskContext } from '../kernel/task-context.js';
import type { InboxOptions } from './public-types.js';
import type { KernelPort } from '../kernel/port.js';
import type { UnitOfWork } from '../kernel/unit-of-work.js';

/** What an inbox's handler receives: the message, and the task context with the message's id and reception time. */
export type InboxHandler<M = unknown> = (message: M, ctx: TaskContext & { messageId: string; receivedAt: Date }) => unknown;

/** The largest epoch milliseconds a Date holds. */
const MAX_DATE_MS = 8.64e15;

/** What {@link Inbox.receive} did with a message. */
export interface ReceiveResult {
  /** The promise that holds the message. */
  promiseId: string;
  /** `accepted`: will run; `duplicate`: this id was received before (nothing written); `skipped`: older than the window, recorded as failed with `SKIPPED`. */
  outcome: 'accepted' | 'duplicate' | 'skipped';
}

/**
 * An inbox: each message becomes a durable promise of type `inbox:<name>` keyed by its id.
 * A message is run if, when the engine first considers it (on `receive` while started, or on
 * `start()` for messages stored while it was down), it is at most `catchUpWindow` old; older
 * ones are recorded as `failed` with code `SKIPPED`, never silently dropped.
 */
export class Inbox {
  readonly #host: KernelPort;
  readonly name: string;
  readonly type: string;
  readonly catchUpWindow: number;

  /** @internal Registers an inbox and its task type on the kernel; use `engine.inbox(name, handler, options)`. */
  static define<M>(port: KernelPort, name: string, handler: InboxHandler<M>, options: InboxOptions): Inbox {
    if (typeof name !== 'string' || name.length === 0) throw new InvalidOptionError('name', name, 'a non-empty inbox name');
    const { catchUpWindow, ...taskOptions } = options ?? ({} as InboxOptions);
    integerIn('catchUpWindow', catchUpWindow, 0, Number.MAX_SAFE_INTEGER);
    const inbox = new Inbox(port, name, catchUpWindow);
    port.registerTask(
      inbox.type,
      (payload: { id: string; message: M; receivedAt: string }, ctx) => handler(payload.message, { ...ctx, messageId: payload.id, receivedAt: new Date(payload.receivedAt) }),
      taskOptions,
    );
    return inbox;
  }

  /** @internal Use `engine.inbox(name, handler, options)`. */
  constructor(host: KernelPort, name: string, catchUpWindow: number) {
    this.#host = host;
    this.name = name;
    this.type = `inbox:${name}`;
    this.catchUpWindow = catchUpWindow;
  }

  /**
   * Stores a message durably (ignoring a repeated `id`).
   *
   * @example
   * ```ts
   * await inbox.receive({ subject: 'hi' }, { id: 'msg-42', receivedAt: new Date() });
   * ```
   */
  async receive(message: unknown, meta: { id: string; receivedAt?: Date | number }): Promise<ReceiveResult> {
    const id = meta?.id;
    if (typeof id !== 'string' || id.length === 0 || id.length > 400) throw new InvalidMessageError(this.name, `a message needs an id (a non-empty string), got ${JSON.stringify(id)}`);
    const receivedAt = meta.receivedAt === undefined ? this.#host.clock.now() : meta.receivedAt instanceof Date ? meta.receivedAt.getTime() : meta.receivedAt;
    // A Date's range: beyond it there is no time to store (new Date(1e16) is Invalid Date).
    if (typeof receivedAt !== 'number' || !Number.isFinite(receivedAt) || Math.abs(receivedAt) > MAX_DATE_MS) {
      throw new InvalidMessageError(this.name, `receivedAt must be a valid Date or epoch milliseconds within ±${MAX_DATE_MS}, got ${String(meta.receivedAt)}`);
    }
    const spec = this.#host.specOf({ type: this.type, payload: { id, message, receivedAt: new Date(receivedAt).toISOString() }, key: `${this.type}:${id}` }, 'message');
    return this.#host.write<ReceiveResult>(async (uow) => {
      // The run-at is the reception time: an inbox works through its backlog oldest first.
      const created = await this.#host.promises.create(uow, { ...spec, runAt: receivedAt });
      const promiseId = String(created.id);
      if (!created.created) return { promiseId, outcome: 'duplicate' };
      if (this.#host.started && this.isStale(receivedAt, uow.now)) {
        await this.#skip(uow, created.id, receivedAt);
        return { promiseId, outcome: 'skipped' };
      }
      return { promiseId, outcome: 'accepted' };
    });
  }

  /** Older than the window: strictly more than `catchUpWindow` ms before `now` (exactly at the window is still run). */
  isStale(receivedAt: number, now: number): boolean {
    return now - receivedAt > this.catchUpWindow;
  }

  /** On start: skips every stored message that never ran and is now older than the window. */
  async skipStale(): Promise<number> {
    return this.#host.write(async (uow) => {
      const stale = await uow.tx.stalePending([this.type], uow.now - this.catchUpWindow);
      for (const row of stale) {
        const receivedAt = await uow.tx.getPromiseRunAt(row.id);
        await this.#skip(uow, row.id, receivedAt ?? uow.now);
      }
      return stale.length;
    });
  }

  #skip(uow: UnitOfWork, id: number, receivedAt: number): Promise<void> {
    const age = uow.now - receivedAt;
    return this.#host.promises.skip(uow, id, {
      code: 'SKIPPED',
      message: `received ${new Date(receivedAt).toISOString()}, ${age} ms before it could run: older than the catch-up window of ${this.catchUpWindow} ms`,
    });
  }
}
