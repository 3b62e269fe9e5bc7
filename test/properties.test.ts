import fc from 'fast-check';
import { transition } from 'xstate';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, PromisedError, type Engine } from '../src/index.js';
import { PROMISE_EVENT_TYPES, promiseMachine, type PromiseEvent, type PromiseStatus } from '../src/machines/promise-machine.js';
import { compilePromiseLaw, machineSnapshotOf } from '../src/machines/transition-table.js';
import { dumpDb } from './helpers/db-dump.js';
import { tempDbPath } from './helpers/temp-db.js';

const tried: Record<string, number> = {};
afterAll(() => {
  console.log(`property-based cases tried: ${Object.entries(tried).map(([name, n]) => `${name} ${n}`).join(', ')}`);
});

const law = compilePromiseLaw();

const anEvent: fc.Arbitrary<PromiseEvent> = fc.oneof(
  fc.constantFrom(...PROMISE_EVENT_TYPES.filter((t) => t !== 'FAIL' && t !== 'LEASE_LOST' && t !== 'RETRY')).map((type) => ({ type }) as PromiseEvent),
  fc.record({ type: fc.constant('RETRY' as const), dependenciesMet: fc.boolean() }),
  fc.record({ type: fc.constant('FAIL' as const), attempts: fc.nat(6), maxAttempts: fc.integer({ min: 1, max: 6 }) }),
  fc.record({ type: fc.constant('LEASE_LOST' as const), losses: fc.nat(6), maxLosses: fc.nat(6) }),
);

describe('property: the compiled law is the machine', () => {
  it('any sequence of events leads the law and XState to the same states', () => {
    fc.assert(
      fc.property(fc.constantFrom<PromiseStatus>('waiting', 'pending', 'in_progress', 'completed', 'failed'), fc.array(anEvent, { maxLength: 25 }), (start, events) => {
        tried.machine = (tried.machine ?? 0) + 1;
        let snapshot = machineSnapshotOf(start);
        let status: PromiseStatus = start;
        for (const event of events) {
          [snapshot] = transition(promiseMachine, snapshot, event);
          const budgetLeft =
            event.type === 'FAIL'
              ? event.attempts < event.maxAttempts
              : event.type === 'LEASE_LOST'
                ? event.losses <= event.maxLosses
                : event.type === 'RETRY'
                  ? event.dependenciesMet
                  : false;
          status = law.next(status, event.type, budgetLeft) ?? status;
          expect(status).toBe(snapshot.value);
        }
      }),
      { numRuns: 2_000 },
    );
  });
});

/** Checks invariants that every committed state of the database must hold. */
function assertConsistent(file: string): void {
  const dump = dumpDb(file) as { promises: any[]; promise_dependencies: Array<{ parent_id: number; child_id: number }> };
  const byId = new Map(dump.promises.map((row) => [row.id, row]));
  for (const row of dump.promises) {
    expect(row.snapshot).toBe(law.snapshotText(row.status));
    const parents = dump.promise_dependencies.filter((edge) => edge.child_id === row.id).map((edge) => byId.get(edge.parent_id));
    expect(parents.every(Boolean)).toBe(true);
    if (row.status === 'pending') expect(parents.every((p) => p.status === 'completed')).toBe(true);
    if (row.status === 'waiting') expect(parents.some((p) => p.status !== 'completed')).toBe(true);
    if (row.status === 'failed') expect(row.error_code).not.toBeNull();
  }
}

describe('property: every public call either succeeds consistently or fails with a PromisedError and changes nothing', () => {
  let engine: Engine;
  let file: string;
  const ids: string[] = [];

  const anId = fc.oneof(
    fc.constantFrom('0', '-1', 'abc', '1e3', '', '999999'),
    fc.nat(40).map((i) => String(i)),
    fc.constant('existing'),
  );
  const payload = fc.oneof(
    fc.jsonValue(),
    fc.anything({ withBigInt: true, withMap: true, withSet: true, withDate: true, withNullPrototype: true, withObjectString: true, withBoxedValues: true }),
    fc.func(fc.integer()),
  );
  const options = fc.record(
    {
      priority: fc.oneof(fc.integer({ min: -2000, max: 2000 }), fc.double(), fc.constant('high' as unknown as number)),
      delay: fc.oneof(fc.integer({ min: -10, max: 1_000 }), fc.constant(400 * 24 * 3600_000)),
      dependsOn: fc.array(anId, { maxLength: 3 }),
      key: fc.oneof(fc.constant(''), fc.string({ maxLength: 8 })),
    },
    { requiredKeys: [] },
  );
  const resolveIds = (list: string[] | undefined) => list?.map((id) => (id === 'existing' && ids.length > 0 ? ids[ids.length - 1]! : id));

  const call = fc.oneof(
    fc.record({ kind: fc.constant('enqueue' as const), type: fc.constantFrom('work', 'nope'), payload, options }),
    fc.record({
      kind: fc.constant('graph' as const),
      nodes: fc.array(fc.record({ name: fc.constantFrom('a', 'b', 'c', 'd'), dependsOn: fc.array(fc.oneof(fc.constantFrom('a', 'b', 'c', 'd'), anId), { maxLength: 3 }), payload: fc.jsonValue() }), {
        maxLength: 4,
      }),
    }),
    fc.record({ kind: fc.constantFrom('cancel' as const, 'retry' as const, 'result' as const), id: anId }),
  );

  it('holds for random calls, payloads, options and graphs (cycles and self-dependencies included)', async () => {
    file = tempDbPath();
    engine = await createEngine({ database: file, changeCheckIntervalMs: 0, immediate: false });
    engine.task('work', async () => 1);
    try {
      await fc.assert(
        fc.asyncProperty(call, async (c) => {
          tried.api = (tried.api ?? 0) + 1;
          const before = dumpDb(file);
          let outcome: unknown;
          try {
            if (c.kind === 'enqueue') {
              ids.push(await engine.enqueue(c.type, c.payload, { ...c.options, dependsOn: resolveIds(c.options.dependsOn) }));
            } else if (c.kind === 'graph') {
              const graph = Object.fromEntries(c.nodes.map((node) => [node.name, { type: 'work', payload: node.payload, dependsOn: resolveIds(node.dependsOn) }]));
              ids.push(...Object.values(await engine.enqueueGraph(graph)));
            } else if (c.kind === 'cancel') {
              await engine.cancel(resolveIds([c.id])![0]!);
            } else if (c.kind === 'retry') {
              await engine.retry(resolveIds([c.id])![0]!);
            } else {
              await engine.result(resolveIds([c.id])![0]!, { timeout: 0 });
            }
            outcome = 'ok';
          } catch (error) {
            outcome = error;
          }
          if (outcome !== 'ok') {
            const code = (outcome as PromisedError).code;
            // result() of an unfinished promise with timeout 0 is a TIMEOUT; of a failed one, PROMISE_FAILED.
            expect(outcome, String(outcome)).toBeInstanceOf(PromisedError);
            expect(typeof code).toBe('string');
            expect(dumpDb(file)).toEqual(before);
          }
          assertConsistent(file);
        }),
        { numRuns: 300 },
      );
    } finally {
      await engine.stop();
    }
  });
});
