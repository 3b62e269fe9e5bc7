import http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Engine } from '../engine/engine.js';
import { checkRequest, resolveAccess, type Access } from './access-control.js';
import type { InspectionFrame } from './frames.js';
import { InspectionFeed, type InspectionFeedOptions } from './inspection-feed.js';

/** A viewer this far behind (bytes queued) is dropped rather than let grow without bound. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

/**
 * The inspection hub: a WebSocket server that speaks the Stately inspector's wire format. Every
 * viewer, whenever it joins, first receives each kept actor's latest state, then every frame.
 * Mount it on an HTTP server you have (`handleUpgrade`), or let it `listen` on its own.
 *
 * @example
 * ```ts
 * const hub = await createInspectionHub(engine, { database: './promised.db' });
 * const { port } = await hub.listen({ port: 4243 });   // ws://127.0.0.1:4243
 * ```
 */
export class InspectionHub {
  readonly feed: InspectionFeed;
  readonly #sockets = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  readonly #unsubscribe: () => void;
  #server: http.Server | undefined;

  constructor(feed: InspectionFeed) {
    this.feed = feed;
    this.#unsubscribe = feed.subscribe((frame) => this.#broadcast(frame));
    this.#sockets.on('connection', (socket) => this.#welcome(socket));
  }

  /** Viewers connected now. */
  get viewers(): number {
    return this.#sockets.clients.size;
  }

  /** Takes over an HTTP upgrade that the caller has already authorised. */
  handleUpgrade(request: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#sockets.handleUpgrade(request, socket, head, (ws) => this.#sockets.emit('connection', ws, request));
  }

  /**
   * Listens on its own HTTP server (any path upgrades). 127.0.0.1 by default; any other host
   * needs `token` (or PROMISED_DASHBOARD_TOKEN), checked on every upgrade.
   */
  async listen(options: { port?: number; host?: string; token?: string } = {}): Promise<{ port: number; host: string }> {
    const access: Access = resolveAccess(options.host, options.token);
    const server = http.createServer((request, response) => {
      const refusal = checkRequest(request, access);
      response.writeHead(refusal?.status ?? 426, { 'content-type': 'text/plain; charset=utf-8' });
      response.end(refusal ? `${refusal.reason}\n` : 'promised inspection hub: connect with a WebSocket\n');
    });
    server.on('upgrade', (request, socket, head) => {
      const refusal = checkRequest(request, access);
      if (refusal) return refuseUpgrade(socket, refusal.status, refusal.reason);
      this.handleUpgrade(request, socket, head);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, access.host, () => resolve());
    });
    this.#server = server;
    const address = server.address() as { port: number };
    return { port: address.port, host: access.host };
  }

  /** Closes every viewer and the server it listens on (if any); the engine is left running. */
  async close(): Promise<void> {
    this.#unsubscribe();
    for (const socket of this.#sockets.clients) socket.terminate();
    await new Promise<void>((resolve) => this.#sockets.close(() => resolve()));
    if (this.#server) {
      const server = this.#server;
      this.#server = undefined;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  #welcome(socket: WebSocket): void {
    socket.on('error', () => socket.terminate());
    // Viewers only listen: whatever they send is ignored (the Stately UI sends nothing we need).
    socket.on('message', () => undefined);
    for (const frame of this.feed.current()) socket.send(JSON.stringify(frame));
  }

  #broadcast(frame: InspectionFrame): void {
    if (this.#sockets.clients.size === 0) return;
    const text = JSON.stringify(frame);
    for (const socket of this.#sockets.clients) {
      if (socket.readyState !== socket.OPEN) continue;
      if (socket.bufferedAmount > MAX_BUFFERED_BYTES) socket.terminate();
      else socket.send(text);
    }
  }
}

/** Writes a refusal on a socket whose upgrade is not allowed, and closes it. */
export function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  const text = status === 401 ? 'Unauthorized' : 'Forbidden';
  socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(reason) + 1}\r\n\r\n${reason}\n`);
}

/**
 * Creates an inspection hub on `engine` and publishes what its database holds (unfinished
 * promises, running workflows) before it returns.
 *
 * @example
 * ```ts
 * const hub = await createInspectionHub(engine, { database: './promised.db' });
 * ```
 */
export async function createInspectionHub(engine: Engine, options: InspectionFeedOptions = {}): Promise<InspectionHub> {
  const feed = new InspectionFeed(engine, options);
  const hub = new InspectionHub(feed);
  await feed.start();
  return hub;
}
