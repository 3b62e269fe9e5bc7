import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fromPromise, setup } from 'xstate';
import { createEngine, startDashboard, type Engine, type RunningDashboard } from '../src/index.js';
import { tempDbPath } from './helpers/temp-db.js';
import { until } from './helpers/wait.js';
import { publishMachine, publishSteps } from './fixtures/dashboard-workflow.js';

const CHROMIUM = '/usr/bin/chromium';
// A step that runs until the test lets it finish: an event for the state after it is kept meanwhile.
const gatedMachine = setup({ actors: { work: fromPromise(async () => null) } }).createMachine({
  id: 'gated',
  initial: 'working',
  states: { working: { invoke: { src: 'work', onDone: 'waiting' } }, waiting: { on: { GO: 'done' } }, done: { type: 'final' } },
});
const OUTPUT = path.resolve(import.meta.dirname, '../test-output');
const available = fs.existsSync(CHROMIUM);
if (!available) console.log(`dashboard browser tests skipped: ${CHROMIUM} is absent (apt-get install -y chromium; .ci/run installs it)`);

describe.skipIf(!available)('the dashboard in a browser', () => {
  let browser: BrowserContext;
  let profile: string;
  let engine: Engine;
  let dashboard: RunningDashboard;
  let page: Page;
  let flakyCalls = 0;
  let nightlyRuns = 0;
  const releases: Array<() => void> = [];
  const gates: Array<() => void> = [];

  beforeAll(async () => {
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'promised-chromium-'));
    // A fresh profile (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1280, height: 900 },
    });
    const database = tempDbPath();
    engine = await createEngine({ database, changeCheckIntervalMs: 10, cleanupIntervalMs: 0, stopTimeoutMs: 1_000 });
    dashboard = await startDashboard(engine, { port: 0, database });
    engine.task('slow', (_payload, ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(null))));
    engine.task('flaky', async () => {
      flakyCalls += 1;
      if (flakyCalls === 1) throw new Error('first attempt fails');
      return 'second time lucky';
    });
    engine.task('note', async (payload: unknown) => payload);
    engine.task('needs-ok', async (payload: { ok: boolean }) => {
      if (!payload.ok) throw new Error('payload.ok is false');
      return 'accepted';
    }, { retries: 0 });
    engine.task('paged', async () => new Promise((resolve) => setTimeout(() => resolve('done'), 5)));
    engine.workflow('publish', publishMachine, { steps: publishSteps });
    engine.workflow('gated', gatedMachine, { steps: { work: () => new Promise((resolve) => gates.push(() => resolve(null))) } });
    engine.periodic('nightly', '0 3 * * *', async () => void (nightlyRuns += 1));
    engine.task('per-chat', () => new Promise((resolve) => releases.push(() => resolve('sent'))), { concurrency: { limit: 1, key: (payload: { chat: string }) => payload.chat } });
    await engine.start();
    fs.mkdirSync(OUTPUT, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await dashboard?.close();
    await engine?.stop();
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
  });

  afterEach(async (context) => {
    if (page && context.task.result?.state === 'fail') await page.screenshot({ path: path.join(OUTPUT, `dashboard-failed-${context.task.name.replace(/\W+/g, '-')}.png`), fullPage: true });
  });

  async function openPage(): Promise<Page> {
    page = await browser.newPage();
    await page.goto(dashboard.url);
    await page.locator('#live.on').waitFor({ timeout: 5_000 });
    return page;
  }

  it('shows a running workflow change state without reloading', async () => {
    const page = await openPage();
    await page.evaluate(() => ((globalThis as unknown as { notReloaded: boolean }).notReloaded = true));
    const id = await engine.startWorkflow('publish', { title: 'Hello' });
    const card = page.locator(`[data-workflow-id="${id}"]`);
    await expect.poll(() => card.locator('.current-state').textContent(), { timeout: 5_000 }).toBe('awaitingApproval');
    await card.locator('.state.active[data-state="awaitingApproval"]').waitFor({ timeout: 2_000 });
    await engine.send(id, { type: 'APPROVE' });
    await expect.poll(() => card.locator('.current-state').textContent(), { timeout: 5_000 }).toBe('{"checking":{"spelling":"open","legal":"open"}}');
    await card.locator('.state.active[data-state="checking.spelling.open"]').waitFor({ timeout: 2_000 });
    expect(await card.locator('.state.active[data-state="awaitingApproval"]').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
  });

  it('cancels a promise, which fails with CANCELLED', async () => {
    const page = await openPage();
    const id = await engine.enqueue('slow', { wait: 'forever' });
    const row = page.locator(`#promise-table tr[data-id="${id}"]`);
    await expect.poll(() => row.locator('td.status').textContent(), { timeout: 5_000 }).toBe('in_progress');
    await row.locator('button.cancel').click();
    await expect.poll(() => row.locator('td.status').textContent(), { timeout: 5_000 }).toBe('failed');
    expect(await row.locator('td.error .error-code').textContent()).toBe('CANCELLED');
    expect(await row.locator('td.error .error-message').textContent()).toMatch(/cancel/i);
    expect((await engine.get(id))!.error?.code).toBe('CANCELLED');
  });

  it('retries the dead letters', async () => {
    const page = await openPage();
    const id = await engine.enqueue('flaky', {});
    const row = page.locator(`#promise-table tr[data-id="${id}"]`);
    await expect.poll(() => row.locator('td.status').textContent(), { timeout: 5_000 }).toBe('failed');
    expect(await row.locator('td.error .error-code').textContent()).toBe('HANDLER_ERROR');
    expect(await row.locator('td.error .error-message').textContent()).toBe('first attempt fails');
    await page.locator('#retry-dead-letters').click();
    await expect.poll(() => row.locator('td.status').textContent(), { timeout: 5_000 }).toBe('completed');
    expect(await engine.result(id, { timeout: 1_000 })).toBe('second time lucky');
  });

  it('lists with error messages, times and durations, filtered and paged by the server', async () => {
    const page = await openPage();
    const ids = await engine.enqueueMany(Array.from({ length: 12 }, (_, i) => ({ type: 'paged', payload: { i } })));
    await Promise.all(ids.map((id) => engine.result(id, { timeout: 5_000 })));
    await page.locator('#page-size').selectOption('10');
    await page.locator('#filter-type').fill('paged');
    const rows = page.locator('#promise-table tbody tr');
    await expect.poll(() => rows.count(), { timeout: 5_000 }).toBe(10);
    // Newest first: the last enqueued is on top; the times are shown.
    expect(await rows.first().getAttribute('data-id')).toBe(ids[11]);
    expect(await rows.first().locator('td.created').textContent()).not.toBe('');
    expect(await rows.first().locator('td.duration').textContent()).toMatch(/\d+(\.\d)? (ms|s)$/);
    expect(await page.locator('#page-newer').isDisabled()).toBe(true);
    await page.locator('#page-older').click();
    await expect.poll(() => rows.count(), { timeout: 5_000 }).toBe(2);
    expect(await rows.first().getAttribute('data-id')).toBe(ids[1]);
    expect(await page.locator('#page-older').isDisabled()).toBe(true);
    await page.locator('#page-newer').click();
    await expect.poll(() => rows.first().getAttribute('data-id'), { timeout: 5_000 }).toBe(ids[11]);
    // A search is the server's: only the payload holding 7 (ids[7]) is left.
    await page.locator('#filter-search').fill('"i":7}');
    await expect.poll(() => rows.count(), { timeout: 5_000 }).toBe(1);
    expect(await rows.first().getAttribute('data-id')).toBe(ids[7]);
    await page.screenshot({ path: path.join(OUTPUT, 'dashboard-list.png') });
  });

  it('sends a workflow only the events its state accepts, pauses, resumes and cancels it', async () => {
    const page = await openPage();
    const id = await engine.startWorkflow('publish', { title: 'Steer me' });
    const card = page.locator(`[data-workflow-id="${id}"]`);
    await expect.poll(() => card.locator('.send-event option').allTextContents(), { timeout: 5_000 }).toEqual(['APPROVE']);
    await card.locator('.send-payload').fill('{ "by": "ada" }');
    await card.locator('button.send').click();
    await expect.poll(async () => (await engine.getWorkflow(id))?.value, { timeout: 5_000 }).toEqual({ checking: { spelling: 'open', legal: 'open' } });
    await expect.poll(async () => (await card.locator('.send-event option').allTextContents()).sort(), { timeout: 5_000 }).toEqual(['LEGAL_OK', 'SPELLING_OK']);
    await card.locator('button.pause').click();
    await card.locator('.workflow-paused', { hasText: 'paused' }).waitFor({ timeout: 5_000 });
    expect((await engine.getWorkflow(id))!.pausedAt).not.toBeNull();
    await card.locator('button.resume').click();
    await expect.poll(async () => (await engine.getWorkflow(id))!.pausedAt, { timeout: 5_000 }).toBeNull();
    await page.screenshot({ path: path.join(OUTPUT, 'dashboard-workflow-actions.png') });
    await card.locator('button.cancel').click();
    await expect.poll(() => card.locator('.workflow-status').textContent(), { timeout: 5_000 }).toBe('failed (CANCELLED)');
    await expect.poll(() => card.locator('button.cancel').isHidden(), { timeout: 5_000 }).toBe(true);
  });

  it('filters workflows by the event they await (listWorkflows({ awaiting }))', async () => {
    const page = await openPage();
    const waiting = await engine.startWorkflow('publish', { title: 'Waits' });
    const moved = await engine.startWorkflow('publish', { title: 'Moves on' });
    await expect.poll(async () => (await engine.getWorkflow(moved))?.value, { timeout: 5_000 }).toBe('awaitingApproval');
    await engine.send(moved, { type: 'APPROVE' });
    await page.locator('#workflow-awaiting').fill('APPROVE');
    await expect.poll(() => page.locator(`[data-workflow-id="${moved}"]`).count(), { timeout: 5_000 }).toBe(0);
    await page.locator(`[data-workflow-id="${waiting}"]`).waitFor({ timeout: 5_000 });
    await page.locator('#workflow-awaiting').fill('SPELLING_OK');
    await page.locator(`[data-workflow-id="${moved}"]`).waitFor({ timeout: 5_000 });
    expect(await page.locator(`[data-workflow-id="${waiting}"]`).count()).toBe(0);
    await page.locator('#workflow-awaiting').fill('NOTHING_WAITS_FOR_THIS');
    await page.locator('#workflow-list .empty', { hasText: 'no workflows match' }).waitFor({ timeout: 5_000 });
    await engine.cancelWorkflow(waiting);
    await engine.cancelWorkflow(moved);
  });

  it('lists an event kept for a later state on the card, and discards it', async () => {
    const page = await openPage();
    const id = await engine.startWorkflow('gated', {});
    await expect.poll(() => gates.length, { timeout: 5_000 }).toBe(1);
    expect((await engine.send(id, { type: 'GO' })).outcome).toBe('kept');
    const kept = page.locator(`[data-workflow-id="${id}"] .kept-events li`);
    await expect.poll(() => kept.first().textContent(), { timeout: 5_000 }).toMatch(/^kept: GO until /);
    await kept.first().locator('button.discard').click();
    await expect.poll(() => kept.count(), { timeout: 5_000 }).toBe(0);
    expect((await engine.getWorkflow(id))!.keptEvents).toEqual([]);
    gates.shift()!();
    await expect.poll(async () => (await engine.getWorkflow(id))?.value, { timeout: 5_000 }).toBe('waiting');
    // Finished, it is shown folded on a page opened later; a click unfolds its chart.
    await engine.send(id, { type: 'GO' });
    await engine.workflowResult(id, { timeout: 5_000 });
    await page.reload();
    const fold = page.locator(`[data-workflow-id="${id}"] details.fold`);
    await fold.waitFor({ state: 'attached', timeout: 5_000 });
    expect(await fold.evaluate((node) => (node as unknown as { open: boolean }).open)).toBe(false);
    await fold.locator('summary').click();
    await page.locator(`[data-workflow-id="${id}"] .state.active[data-state="done"]`).waitFor({ timeout: 5_000 });
  });

  it('retries a failed promise with an edited payload', async () => {
    const page = await openPage();
    const id = await engine.enqueue('needs-ok', { ok: false });
    await expect(engine.result(id, { timeout: 5_000 })).rejects.toMatchObject({ code: 'PROMISE_FAILED' });
    await page.locator(`#promise-table tr[data-id="${id}"]`).click();
    await page.locator('#detail-retry').waitFor({ timeout: 5_000 });
    expect(JSON.parse(await page.locator('#retry-payload').inputValue())).toEqual({ ok: false });
    await page.locator('#retry-payload').fill('{ "ok": true, "note": "edited" }');
    await page.locator('#retry-edited').click();
    expect(await engine.result(id, { timeout: 5_000 })).toBe('accepted');
    expect((await engine.get(id))!.payload).toEqual({ ok: true, note: 'edited' });
    await expect.poll(() => page.locator('.field-status').textContent(), { timeout: 5_000 }).toBe('completed');
  });

  it('draws the state chart laid out by elkjs: labelled arrows, the transitions taken, and time travel', async () => {
    const page = await openPage();
    const id = await engine.startWorkflow('publish', { title: 'Travel' });
    const card = page.locator(`[data-workflow-id="${id}"]`);
    await card.locator('.state.active[data-state="awaitingApproval"]').waitFor({ timeout: 5_000 });
    const labels = await card.locator('.transition-label text').allTextContents();
    expect(labels).toEqual(expect.arrayContaining(['done: draft', 'APPROVE', 'SPELLING_OK', 'LEGAL_OK', 'done', 'done: publish']));
    // Laid out, not stacked: the arrows have real geometry, and boxes sit apart.
    expect(await card.locator('path.transition').count()).toBeGreaterThanOrEqual(7);
    // Read in one go: live frames redraw the chart, and two separate reads could straddle one.
    const boxes = await card.locator('svg.state-chart').evaluate((chart) => {
      const box = (state: string) => {
        const rect = (chart as unknown as { querySelector(selector: string): { getAttribute(name: string): string } }).querySelector(`.state[data-state="${state}"] rect`);
        return { x: Number(rect.getAttribute('x')), width: Number(rect.getAttribute('width')) };
      };
      return { drafting: box('drafting'), approval: box('awaitingApproval') };
    });
    expect(boxes.approval.x).toBeGreaterThan(boxes.drafting.x + boxes.drafting.width);
    await expect.poll(() => card.locator('path.transition.taken').count(), { timeout: 5_000 }).toBeGreaterThanOrEqual(1);
    expect(await card.locator('path.transition.taken[data-transition="drafting → awaitingApproval"]').count()).toBe(1);
    expect(await card.locator('path.transition.taken[data-transition="awaitingApproval → checking"]').count()).toBe(0);

    await engine.send(id, { type: 'APPROVE' }, {});
    // A straight arrow has no height: it is attached, though playwright calls it hidden.
    await card.locator('path.transition.taken[data-transition="awaitingApproval → checking"]').waitFor({ state: 'attached', timeout: 5_000 });
    await expect.poll(() => card.locator('.scrubber').getAttribute('max'), { timeout: 5_000 }).toBe(String((await engine.workflowHistory(id)).length));
    // Back to the first step: the chart and the context as they were then.
    await card.locator('.scrubber').evaluate((input: { value: string; dispatchEvent(event: unknown): boolean }) => {
      input.value = '1';
      input.dispatchEvent(new (globalThis as unknown as { Event: new (type: string) => unknown }).Event('input'));
    });
    await card.locator('.state.active[data-state="drafting"]').waitFor({ timeout: 5_000 });
    expect(await card.locator('.step').textContent()).toMatch(/^step 1 of \d+/);
    expect(await card.locator('.context').textContent()).toContain('"title": "Travel"');
    expect(await card.locator('path.transition.taken').count()).toBe(0);
    await page.screenshot({ path: path.join(OUTPUT, 'dashboard-time-travel.png'), fullPage: true });
    await card.locator('button.now').click();
    await card.locator('.state.active[data-state="checking.spelling.open"]').waitFor({ timeout: 5_000 });
  });

  it('charts counts and throughput with uPlot: axes, units and a legend, nothing loaded from elsewhere', async () => {
    page = await browser.newPage();
    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    await page.goto(dashboard.url);
    await page.locator('#live.on').waitFor({ timeout: 5_000 });
    const chart = page.locator('#stats-chart .uplot');
    await chart.waitFor({ timeout: 5_000 });
    const legend = await chart.locator('.u-legend .u-series .u-label').allTextContents();
    expect(legend).toEqual(['time', 'pending', 'running', 'waiting', 'failed', 'dead letters', 'completed / s']);
    await expect.poll(async () => (await chart.locator('.u-legend .u-series .u-value').allTextContents()).at(-1), { timeout: 6_000 }).toMatch(/ \/s$/);
    const canvas = (await chart.locator('canvas').boundingBox())!;
    expect(canvas.width).toBeGreaterThan(300);
    expect(await page.evaluate(() => typeof (globalThis as unknown as { uPlot?: unknown }).uPlot)).toBe('function');
    expect(requests.filter((url) => !url.startsWith(dashboard.url.replace(/\/$/, '')) && !url.startsWith('ws'))).toEqual([]);
    await page.locator('.stats').screenshot({ path: path.join(OUTPUT, 'dashboard-charts.png') });
  });

  it('lists schedules with their next run, triggers, pauses and resumes one; shows paused types and held keys', async () => {
    const page = await openPage();
    const row = page.locator('#schedule-table tr[data-schedule="nightly"]');
    await row.waitFor({ timeout: 5_000 });
    expect(await row.locator('.cron').textContent()).toBe('0 3 * * *');
    expect(await row.locator('.next-run').textContent()).toMatch(/^in \d/);
    await row.locator('button.trigger').click();
    await expect.poll(() => nightlyRuns, { timeout: 5_000 }).toBe(1);
    await row.locator('button.pause').click();
    await expect.poll(() => row.locator('.next-run').textContent(), { timeout: 5_000 }).toBe('paused');
    await page.locator('#paused-types li[data-type="periodic:nightly"]').waitFor({ timeout: 5_000 });
    expect((await engine.pausedTypes()).map((entry) => entry.type)).toEqual(['periodic:nightly']);
    await row.locator('button.resume').click();
    await expect.poll(async () => (await engine.pausedTypes()).length, { timeout: 5_000 }).toBe(0);
    // A type paused from the page, then resumed from its entry.
    await page.locator('#pause-type-name').fill('note');
    await page.locator('#pause-type button').click();
    await page.locator('#paused-types li[data-type="note"]').waitFor({ timeout: 5_000 });
    expect((await engine.pausedTypes()).map((entry) => entry.type)).toEqual(['note']);
    const first = await engine.enqueue('per-chat', { chat: 'c1' });
    const second = await engine.enqueue('per-chat', { chat: 'c1' });
    const held = page.locator('#limited-keys tr.held[data-key="per-chat c1"]');
    await held.waitFor({ timeout: 8_000 });
    expect(await held.locator('.running').textContent()).toBe('1 / 1');
    expect(await held.locator('.pending').textContent()).toBe('1');
    await page.locator('.schedules').screenshot({ path: path.join(OUTPUT, 'dashboard-schedules.png') });
    await page.locator('#paused-types li[data-type="note"] button.resume').click();
    await expect.poll(async () => (await engine.pausedTypes()).length, { timeout: 5_000 }).toBe(0);
    releases.shift()!();
    await expect.poll(() => releases.length, { timeout: 5_000 }).toBe(1);
    releases.shift()!();
    await engine.result(first, { timeout: 5_000 });
    await engine.result(second, { timeout: 5_000 });
  });

  it('shows a <script> payload as text and never runs it', async () => {
    const page = await openPage();
    const evil = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">';
    const id = await engine.enqueue('note', { text: evil }, { dependsOn: [] });
    await engine.result(id, { timeout: 5_000 });
    const row = page.locator(`#promise-table tr[data-id="${id}"]`);
    await row.waitFor({ timeout: 5_000 });
    await row.click();
    await until(async () => ((await page.locator('.field-payload pre').textContent()) ?? '').includes('<script>'), 5_000, 'the payload shown');
    expect(await page.locator('.field-payload pre').textContent()).toContain(evil.replace(/"/g, '\\"'));
    expect(await page.locator('.field-payload script, .field-payload img, .field-result img').count()).toBe(0);
    await page.waitForTimeout(100);
    expect(await page.evaluate(() => (globalThis as unknown as { pwned?: number }).pwned)).toBeUndefined();
    await page.screenshot({ path: path.join(OUTPUT, 'dashboard.png'), fullPage: true });
  });
});
