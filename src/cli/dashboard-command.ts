import { EXIT } from './exit-codes.js';
import { openEngine, type GlobalOptions } from './open-engine.js';
import type { Output } from './output.js';
import { onShutdownSignal } from './signals.js';

export interface DashboardCommandOptions extends GlobalOptions {
  port: number;
  host: string;
  token?: string;
  tasks?: string;
  poll: number;
}

/**
 * `promised dashboard [--port N] [--host H] [--token T] [--tasks MODULE]`: the web dashboard and
 * the inspection hub (ws://…/inspect) over a database, until SIGINT or SIGTERM. It runs no work:
 * `--tasks` only registers the module's workflows so their state charts can be drawn.
 */
export async function dashboardCommand(options: DashboardCommandOptions, output: Output): Promise<number> {
  const { startDashboard } = await import('../dashboard/start-dashboard.js');
  const { resolveAccess } = await import('../inspect/access-control.js');
  // Refuse a bad host/token pair before opening anything.
  resolveAccess(options.host, options.token);
  const engine = await openEngine(options.db, { mustExist: true, changeCheckIntervalMs: 0 });
  try {
    if (options.tasks) {
      const { loadTasks, registerTasks } = await import('./load-tasks.js');
      await registerTasks(await loadTasks(options.tasks), engine);
    }
    const dashboard = await startDashboard(engine, { port: options.port, host: options.host, token: options.token, database: options.db, pollIntervalMs: options.poll });
    const inspectUrl = `${dashboard.url.replace(/^http/, 'ws')}inspect`;
    output.result({ url: dashboard.url, inspect: inspectUrl }, () => `dashboard: ${dashboard.url}${options.token ? '?token=…' : ''}\ninspector hub (Stately wire format): ${inspectUrl}\n`);
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      const release = onShutdownSignal((received) => {
        release();
        resolve(received);
      });
    });
    await dashboard.close();
    output.note(`${signal}: dashboard closed`);
    return EXIT.ok;
  } finally {
    await engine.stop();
  }
}
