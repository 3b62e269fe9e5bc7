import http from 'node:http';
import type { Engine } from '../engine/engine.js';
import { resolveAccess } from '../inspect/access-control.js';
import { createDashboardHandler, type DashboardHandler, type DashboardOptions } from './dashboard-handler.js';

/** A running dashboard server. */
export interface RunningDashboard {
  url: string;
  port: number;
  handler: DashboardHandler;
  close(): Promise<void>;
}

/**
 * Serves the dashboard on its own HTTP server: 127.0.0.1 by default; any other host requires a
 * token (`token` or PROMISED_DASHBOARD_TOKEN), checked on every request and WebSocket.
 *
 * @example
 * ```ts
 * const dashboard = await startDashboard(engine, { port: 4242, database: './promised.db' });
 * console.log(dashboard.url); // http://127.0.0.1:4242/
 * ```
 */
export async function startDashboard(engine: Engine, options: DashboardOptions & { port?: number; host?: string } = {}): Promise<RunningDashboard> {
  const { port = 4242, host, ...handlerOptions } = options;
  const access = resolveAccess(host, options.token);
  const handler = await createDashboardHandler(engine, { ...handlerOptions, token: access.token ?? '' });
  const server = http.createServer((request, response) => handler(request, response));
  server.on('upgrade', (request, socket, head) => {
    if (!handler.upgrade(request, socket, head)) socket.destroy();
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, access.host, () => resolve());
    });
  } catch (error) {
    await handler.close();
    throw error;
  }
  const bound = (server.address() as { port: number }).port;
  const shown = access.host === '0.0.0.0' || access.host === '::' ? '127.0.0.1' : access.host.includes(':') ? `[${access.host}]` : access.host;
  return {
    url: `http://${shown}:${bound}${handlerOptions.basePath ?? ''}/`,
    port: bound,
    handler,
    close: async () => {
      await handler.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
