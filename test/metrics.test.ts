import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createDashboardHandler, createEngine, NonRetryableError, type Engine } from '../src/index.js';
import { engineBackends } from './helpers/backends.js';
import { until } from './helpers/wait.js';

// engine.metrics() and the dashboard's /metrics, in the Prometheus text format, scraped.

const engines: Engine[] = [];
const servers: http.Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
  for (const engine of engines.splice(0)) await engine.stop();
});

/** The value of one sample line (`name{labels} value`) of a scrape, or undefined. */
function sample(text: string, line: string): number | undefined {
  const found = text.split('\n').find((entry) => entry.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

for (const backend of engineBackends) describe.skipIf(backend.skip)(`metrics on ${backend.name}`, () => {
  it('counts attempts, durations, retries and dead letters by type, and reads promises by status at each scrape; /metrics serves them', async () => {
    const engine = await createEngine({ database: await backend.fresh(), changeCheckIntervalMs: 0 });
    engines.push(engine);
    engine.task('ok', async () => 'fine');
    engine.task('flaky', async (_payload, ctx) => {
      if (ctx.attempt === 1) throw new Error('first try fails');
    }, { retries: 1, retryDelay: 0 });
    engine.task('denied', async () => {
      throw new NonRetryableError('FORBIDDEN', 'no');
    });
    engine.task('later', async () => undefined);
    await engine.start();
    const ids = await engine.enqueueMany([{ type: 'ok' }, { type: 'ok' }, { type: 'ok' }, { type: 'flaky' }, { type: 'denied' }]);
    await engine.enqueue('later', {}, { delay: 60_000 });
    await Promise.allSettled(ids.map((id) => engine.result(id, { timeout: 10_000 })));
    await engine.idle();
    // Counters are fed by the events announced after each commit. The scrape waits for the last
    // one rather than assume result() and idle() resolve after it: once, on PostgreSQL under
    // load, the dead letter was not counted yet (why is not understood; noted for the speed work).
    await until(async () => sample(await engine.metrics(), 'promised_dead_letters_total{type="denied",code="FORBIDDEN"}') === 1, 5_000, 'the dead letter to be counted');

    const text = await engine.metrics();
    expect(sample(text, 'promised_attempts_total{type="ok",outcome="succeeded"}')).toBe(3);
    expect(sample(text, 'promised_attempts_total{type="flaky",outcome="failed"}')).toBe(1);
    expect(sample(text, 'promised_attempts_total{type="flaky",outcome="succeeded"}')).toBe(1);
    expect(sample(text, 'promised_retries_total{type="flaky"}')).toBe(1);
    expect(sample(text, 'promised_dead_letters_total{type="denied",code="FORBIDDEN"}')).toBe(1);
    expect(sample(text, 'promised_attempt_duration_seconds_count{type="ok"}')).toBe(3);
    expect(sample(text, 'promised_promises{type="ok",status="completed"}')).toBe(3);
    expect(sample(text, 'promised_promises{type="later",status="pending"}')).toBe(1);
    expect(sample(text, 'promised_dead_letters')).toBe(1);
    expect(text).toMatch(/# TYPE promised_attempt_duration_seconds histogram/);

    const handler = await createDashboardHandler(engine);
    const server = http.createServer(handler);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const scraped = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(scraped.status).toBe(200);
    expect(scraped.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sample(await scraped.text(), 'promised_promises{type="ok",status="completed"}')).toBe(3);
    await handler.close();
    server.closeAllConnections();
  });
});
