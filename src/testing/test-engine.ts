import { pino } from 'pino';
import { Engine } from '../engine/engine.js';
import { kernelOf } from '../engine/engine-reads.js';
import { resolveEngineOptions, type EngineOptions, type ResolvedEngineOptions } from '../kernel/options.js';
import type { TaskContext } from '../kernel/task-context.js';
import { openStore } from '../persistence/open-store.js';
import type { Store } from '../persistence/store.js';
import { stepType } from '../workflows/step-types.js';
import type { WorkflowRecord } from '../workflows/workflow-types.js';
import { followPath } from './follow-path.js';
import { spanMs, VirtualClock } from './virtual-clock.js';
import type { WorkflowPath } from './workflow-paths.js';

/** Options for {@link createTestEngine}. */
export interface TestEngineOptions extends Omit<EngineOptions, 'clock' | 'database' | 'immediate'> {
  /** Registers the tasks, periodics and workflows under test, before the engine starts. */
  register?: (engine: Engine) => unknown;
  /** Where the virtual clock starts, ms since the epoch. @defaultValue the real time now */
  startAt?: number;
}

/**
 * An engine for tests: on an in-memory SQLite database, started, on a virtual clock that moves
 * only through {@link TestEngine.advance}, and quiet unless given a logger.
 */
export class TestEngine extends Engine {
  /** The virtual clock the engine runs on. */
  readonly clock: VirtualClock;

  /** @internal Use {@link createTestEngine}. */
  constructor(store: Store, options: ResolvedEngineOptions, clock: VirtualClock) {
    super(store, options);
    this.clock = clock;
  }

  /**
   * Moves the clock forward by `span` (ms, or `'25h'`, `'90s'`…), firing in order of their due
   * times everything that comes due on the way (delays, retries with their backoff, cron runs,
   * workflow `after` timers, lease expiries), each followed by {@link Engine.idle}.
   *
   * @example
   * ```ts
   * await t.advance('25h');
   * ```
   */
  async advance(span: number | string): Promise<void> {
    const target = this.clock.now() + spanMs(span);
    const kernel = kernelOf(this);
    await this.idle();
    for (;;) {
      const next = await kernel.nextDueAt();
      if (next === null || next > target) break;
      this.clock.moveTo(Math.max(next, this.clock.now() + 1));
      await kernel.clockMoved();
      await this.idle();
    }
    this.clock.moveTo(target);
    await kernel.clockMoved();
    await this.idle();
  }

  /**
   * Replaces the handler of one step of a workflow: `fn(input, ctx)` runs instead.
   *
   * @example
   * ```ts
   * t.mockStep('ci', 'runTests', async () => 'green');
   * ```
   */
  mockStep(workflow: string, step: string, fn: (input: any, ctx: TaskContext) => unknown): void {
    kernelOf(this).tasks.replaceHandler(stepType(workflow, step), (payload: { input: unknown }, ctx: TaskContext) => fn(payload.input, ctx));
  }

  /**
   * Starts workflow `workflow` with `input` and drives it along `path` (one of
   * `workflowPaths(machine)`): its steps are mocked and held, and released one move at a time to
   * return the path's output or fail; events are sent, timers fired by {@link advance}, a cancel
   * asked for. Throws `PATH_DIVERGED` when the workflow is not where the path says after a move;
   * resolves the workflow at the end. The steps stay held afterwards: follow one path per engine.
   *
   * @example
   * ```ts
   * const record = await t.followPath('publish', path, { input: { title: 'hello' } });
   * ```
   */
  followPath(workflow: string, path: WorkflowPath, options: { input?: unknown } = {}): Promise<WorkflowRecord> {
    return followPath(this, workflow, path, options.input ?? {});
  }
}

/**
 * Creates a {@link TestEngine}: in memory, registered through `register`, started, on a virtual
 * clock.
 *
 * @example
 * ```ts
 * import { createTestEngine } from 'promised/testing';
 * const t = await createTestEngine({ register: (engine) => engine.task('hello', async () => 'hi') });
 * const id = await t.enqueue('hello');
 * await t.idle();
 * console.log(await t.result(id)); // 'hi'
 * await t.stop();
 * ```
 */
export async function createTestEngine(options: TestEngineOptions = {}): Promise<TestEngine> {
  const { register, startAt, ...engineOptions } = options;
  const clock = new VirtualClock(startAt ?? Date.now());
  const resolved = resolveEngineOptions({
    changeCheckIntervalMs: 0,
    cleanupIntervalMs: 0,
    logger: pino({ level: 'silent' }),
    ...engineOptions,
    database: ':memory:',
    clock,
  });
  const engine = new TestEngine(await openStore(resolved), resolved, clock);
  await register?.(engine);
  await engine.start();
  return engine;
}
