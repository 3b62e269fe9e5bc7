import pg from 'pg';

/** The channel every write transaction that can make work runnable, or finish it, notifies. */
export const CHANGE_CHANNEL = 'promised_changes';

const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;

/**
 * One dedicated connection that `LISTEN`s on {@link CHANGE_CHANNEL} and calls `onChange` when
 * another process committed a change. Reconnects with backoff when the connection fails or the
 * server restarts, and reports a change after every (re)connect: notifications sent while nobody
 * listened are lost, so a listener that has just connected must assume it missed some.
 *
 * Notifications from this process (payload = `selfId`) are ignored. The first notification after
 * a quiet spell is delivered at once; a burst that follows is delivered at most once per
 * `minIntervalMs` (and always once after the burst's last). Why: every delivery makes the engine
 * re-read its running claims and run a claim pass; with several busy workers, each commit of each
 * worker would otherwise cost every other worker that, and they spent more CPU hearing about each
 * other's work than doing their own (measured: bench/postgres.js).
 */
export class ChangeListener {
  readonly #config: pg.ClientConfig;
  readonly #selfId: string;
  readonly #onChange: () => void;
  readonly #minIntervalMs: number;
  #lastDelivery = 0;
  #client: pg.Client | undefined;
  #stopped = false;
  #delivery: NodeJS.Timeout | NodeJS.Immediate | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #failures = 0;

  constructor(config: pg.ClientConfig, selfId: string, onChange: () => void, minIntervalMs = 0) {
    this.#config = config;
    this.#selfId = selfId;
    this.#onChange = onChange;
    this.#minIntervalMs = minIntervalMs;
  }

  start(): void {
    void this.#connect();
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    const client = new pg.Client(this.#config);
    this.#client = client;
    let lost = false;
    const onLost = () => {
      if (lost) return;
      lost = true;
      client.removeAllListeners('notification');
      // An 'error' after end() would otherwise be unhandled.
      client.on('error', () => {});
      void client.end().catch(() => {});
      this.#scheduleReconnect();
    };
    client.on('error', onLost);
    client.on('end', onLost);
    client.on('notification', (message) => {
      if (message.payload !== this.#selfId) this.#deliver();
    });
    try {
      await client.connect();
      await client.query(`listen ${CHANGE_CHANNEL}`);
      if (this.#stopped) {
        await client.end();
        return;
      }
      this.#failures = 0;
      this.#deliver();
    } catch {
      onLost();
    }
  }

  #scheduleReconnect(): void {
    if (this.#stopped || this.#reconnectTimer) return;
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** this.#failures++) * (0.5 + Math.random() / 2);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      void this.#connect();
    }, delay);
    this.#reconnectTimer.unref();
  }

  #deliver(): void {
    if (this.#delivery || this.#stopped) return;
    const deliver = () => {
      this.#delivery = undefined;
      this.#lastDelivery = performance.now();
      if (!this.#stopped) this.#onChange();
    };
    const wait = this.#lastDelivery + this.#minIntervalMs - performance.now();
    this.#delivery = wait > 0 ? setTimeout(deliver, wait) : setImmediate(deliver);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    if (this.#delivery) {
      clearTimeout(this.#delivery as NodeJS.Timeout);
      clearImmediate(this.#delivery as NodeJS.Immediate);
    }
    const client = this.#client;
    this.#client = undefined;
    if (client) {
      client.removeAllListeners('end');
      client.removeAllListeners('error');
      client.on('error', () => {});
      await client.end().catch(() => {});
    }
  }
}
