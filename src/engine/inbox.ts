import { InvalidMessageError } from '../errors.js';
import type { EngineHost } from './engine-host.js';
import type { AppliedTransition } from './transitions.js';

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
  readonly #host: EngineHost;
  readonly name: string;
  readonly type: string;
  readonly catchUpWindow: number;

  /** @internal Use `engine.inbox(name, handler, options)`. */
  constructor(host: EngineHost, name: string, catchUpWindow: number) {
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
    if (typeof receivedAt !== 'number' || !Number.isFinite(receivedAt)) throw new InvalidMessageError(this.name, `receivedAt must be a Date or epoch milliseconds`);
    const spec = this.#host.specOf({ type: this.type, payload: { id, message, receivedAt: new Date(receivedAt).toISOString() }, key: `${this.type}:${id}` }, 'message');
    return this.#host.write<ReceiveResult>(async (tx, now) => {
      // The run-at is the reception time: an inbox works through its backlog oldest first.
      const created = await this.#host.transitions.create(tx, { ...spec, runAt: receivedAt }, now);
      if (!created.created) return { value: { promiseId: String(created.id), outcome: 'duplicate' as const }, transitions: [] };
      const transitions = [...created.transitions];
      if (this.#host.started && this.isStale(receivedAt, now)) {
        transitions.push(...(await this.#skip(tx, created.id, receivedAt, now)));
        return { value: { promiseId: String(created.id), outcome: 'skipped' as const }, transitions };
      }
      return { value: { promiseId: String(created.id), outcome: 'accepted' as const }, transitions };
    });
  }

  /** Older than the window: strictly more than `catchUpWindow` ms before `now` (exactly at the window is still run). */
  isStale(receivedAt: number, now: number): boolean {
    return now - receivedAt > this.catchUpWindow;
  }

  /** On start: skips every stored message that never ran and is now older than the window. */
  async skipStale(): Promise<number> {
    return this.#host.write(async (tx, now) => {
      const stale = await tx.stalePending([this.type], now - this.catchUpWindow);
      const transitions: AppliedTransition[] = [];
      for (const row of stale) {
        const promise = await tx.getPromiseRunAt(row.id);
        transitions.push(...(await this.#skip(tx, row.id, promise ?? now, now)));
      }
      return { value: stale.length, transitions };
    });
  }

  #skip(tx: Parameters<Parameters<EngineHost['write']>[0]>[0], id: number, receivedAt: number, now: number) {
    const age = now - receivedAt;
    return this.#host.transitions.skip(
      tx,
      id,
      { code: 'SKIPPED', message: `received ${new Date(receivedAt).toISOString()}, ${age} ms before it could run: older than the catch-up window of ${this.catchUpWindow} ms` },
      now,
    );
  }
}
