import { describe, expect, it } from 'vitest';
import { torture } from './torture/torture.js';

describe('torture (shortened; `npm run torture` runs the full campaign)', () => {
  it('chains, fan-out/fan-in graphs, workflows and a cron schedule survive repeated SIGKILLs', async () => {
    const report = await torture({ promises: 1_000, workflows: 5, kills: 10 });
    console.log(`torture (short): ${JSON.stringify(report)}`);
    expect(report).toMatchObject({ lost: 0, duplicatedCompletions: 0, stuck: 0, orderViolations: 0, workflowsCompleted: 5, promises: 1_000 });
    expect(report.workflowSteps).toBe(5 * 5);
    expect(report.cronRuns).toBeGreaterThan(0);
  }, 240_000);
});
