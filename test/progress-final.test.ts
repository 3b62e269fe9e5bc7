import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.js';
import { engineBackends } from './helpers/backends.js';

// The last progress report before a handler returns is stored with its outcome: a completed
// promise shows 3/3, not whichever report the 250 ms throttle wrote last.

const engines: Engine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop();
});

for (const backend of engineBackends) describe.skipIf(backend.skip)(`final progress on ${backend.name}`, () => {
  it('a completed or failed promise shows the last progress its handler reported', async () => {
    const engine = await createEngine({ database: await backend.fresh(), changeCheckIntervalMs: 0 });
    engines.push(engine);
    engine.task('steps', async (payload: { fail: boolean }, ctx) => {
      for (let step = 1; step <= 3; step++) ctx.progress(step, 3);
      if (payload.fail) throw new Error('after the last step');
      return 'done';
    });
    await engine.start();
    const done = await engine.enqueue('steps', { fail: false });
    const failed = await engine.enqueue('steps', { fail: true });
    expect(await engine.result(done, { timeout: 10_000 })).toBe('done');
    await expect(engine.result(failed, { timeout: 10_000 })).rejects.toMatchObject({ code: 'PROMISE_FAILED' });
    expect((await engine.get(done))!.progress).toEqual({ current: 3, total: 3 });
    expect((await engine.get(failed))!.progress).toEqual({ current: 3, total: 3 });
  });
});
