import type { AnyStateMachine } from 'xstate';
import type { Engine } from '../engine/engine.js';
import type { TransitionEvent } from '../kernel/events.js';
import { PROMISE_EVENT_TYPES, promiseMachine, UNFINISHED_STATUSES, type PromiseStatus } from '../machines/promise-machine.js';
import { promiseLaw } from '../machines/transition-table.js';
import type { WorkflowChange, WorkflowRecord } from '../workflows/workflow-types.js';
import { actorFrame, eventFrame, snapshotFrame, type ActorFrame, type InspectedSnapshot, type InspectionFrame, type SnapshotFrame } from './frames.js';
import { machineDefinition } from './machine-definition.js';
import { databaseFingerprint, promiseSessionId, workflowSessionId } from './session-ids.js';

/** Options of {@link InspectionFeed}. */
export interface InspectionFeedOptions {
  /** The engine's database (path or URL): session ids carry its fingerprint. */
  database?: string;
  /** A fingerprint of your choosing instead of one derived from `database`. */
  fingerprint?: string;
  /**
   * Workflow machines by name, for workflows this engine does not register (by default each is
   * read from `engine.workflowMachine(name)` when needed).
   */
  machines?: Record<string, AnyStateMachine>;
  /**
   * Actors kept in memory for late joiners; past it the oldest finished (then oldest) go.
   * @defaultValue 10_000
   */
  maxActors?: number;
  /**
   * How long a finished actor's last state is kept for late joiners, ms.
   * @defaultValue 60_000
   */
  finishedTtlMs?: number;
  /**
   * Re-read unfinished promises and running workflows from the database this often, ms, to see
   * what other processes change (events only come from this process). 0: only on start.
   * @defaultValue 0
   */
  pollIntervalMs?: number;
  /** Reports a failed database read (the feed carries on). */
  onError?: (error: Error) => void;
}

interface Entry {
  kind: 'promise' | 'workflow';
  id: string;
  actor: ActorFrame;
  latest: SnapshotFrame | undefined;
  status: string;
  /** JSON of the last published workflow state, to tell a change from a repeat. */
  signature: string;
  finishedAt: number | null;
  /** The feed's tick at the last live update: an older database read does not overwrite it. */
  tick: number;
}

const PROMISE_DEFINITION = machineDefinition(promiseMachine);
/** Each workflow machine's definition, serialised once. */
const definitions = new WeakMap<AnyStateMachine, string>();
const RECONCILE_LIMIT = 1_000;

/** The constant persisted snapshot of a promise machine in `status` (its machine has no context). */
function promiseSnapshot(status: PromiseStatus): InspectedSnapshot {
  return JSON.parse(promiseLaw.snapshotText(status)) as InspectedSnapshot;
}

function workflowSnapshot(workflow: Pick<WorkflowRecord, 'status' | 'value' | 'context' | 'output' | 'error'>): InspectedSnapshot {
  const status = workflow.status === 'running' ? 'active' : workflow.status === 'completed' ? 'done' : 'error';
  const snapshot: InspectedSnapshot = { status, value: workflow.value, context: workflow.context };
  if (workflow.output !== null && workflow.output !== undefined) snapshot.output = workflow.output;
  if (workflow.error) snapshot.error = workflow.error;
  return snapshot;
}

/** The promise event that leads from `from` to `to`, for a change seen only in the database. */
function inferredEvent(from: string, to: PromiseStatus): string {
  for (const type of PROMISE_EVENT_TYPES) {
    if (promiseLaw.next(from as PromiseStatus, type, false) === to || promiseLaw.next(from as PromiseStatus, type, true) === to) return type;
  }
  return 'promised.sync';
}

/**
 * Every promise and workflow actor of an engine as frames of the Stately inspector's wire format,
 * with the latest state of each kept (bounded) for viewers that join late. Sources: the engine's
 * `transition` and `workflow` events, and on start (and every `pollIntervalMs`) the unfinished
 * promises and running workflows stored in the database, including those rehydrated after a restart.
 *
 * @example
 * ```ts
 * const feed = new InspectionFeed(engine, { database: './promised.db' });
 * feed.subscribe((frame) => console.log(frame.type, frame.sessionId));
 * await feed.start();
 * ```
 */
export class InspectionFeed {
  readonly fingerprint: string;
  readonly #engine: Engine;
  readonly #options: Required<Pick<InspectionFeedOptions, 'maxActors' | 'finishedTtlMs' | 'pollIntervalMs'>> & InspectionFeedOptions;
  readonly #machines: Map<string, AnyStateMachine>;
  readonly #entries = new Map<string, Entry>();
  readonly #listeners = new Set<(frame: InspectionFrame) => void>();
  #tick = 0;
  #started = false;
  #closed = false;
  #reconciling: Promise<void> | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  readonly #onTransition = (t: TransitionEvent) => this.#promiseMoved(t.id, t.type, t.from, t.to, t.event, t.at.getTime());
  readonly #onWorkflow = (change: WorkflowChange) => this.#workflowMoved(change, change.event, change.at.getTime());
  readonly #onStarted = () => void this.reconcile();
  readonly #onStopping = () => this.close();

  constructor(engine: Engine, options: InspectionFeedOptions = {}) {
    this.#engine = engine;
    this.#options = { maxActors: 10_000, finishedTtlMs: 60_000, pollIntervalMs: 0, ...options };
    this.fingerprint = options.fingerprint ?? databaseFingerprint(options.database ?? ':memory:');
    this.#machines = new Map(Object.entries(options.machines ?? {}));
  }

  /** Listens to the engine and publishes what the database holds. Idempotent. */
  async start(): Promise<void> {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#engine.on('transition', this.#onTransition);
    this.#engine.on('workflow', this.#onWorkflow);
    // Rehydrated work shows once the engine has resumed it, with the machines registered by then.
    this.#engine.on('started', this.#onStarted);
    this.#engine.on('stopping', this.#onStopping);
    this.#sweepTimer = setInterval(() => this.#sweep(), Math.max(1_000, this.#options.finishedTtlMs / 2));
    this.#sweepTimer.unref();
    if (this.#options.pollIntervalMs > 0) this.#schedulePoll();
    await this.reconcile();
  }

  /** Stops listening; the engine is left as it is. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#engine.off('transition', this.#onTransition);
    this.#engine.off('workflow', this.#onWorkflow);
    this.#engine.off('started', this.#onStarted);
    this.#engine.off('stopping', this.#onStopping);
    if (this.#pollTimer) clearTimeout(this.#pollTimer);
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    this.#listeners.clear();
  }

  /** Calls `listener` with every frame from now on; returns the function that stops it. */
  subscribe(listener: (frame: InspectionFrame) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** What a late joiner needs: for every actor kept, its actor frame (at its latest state) and its latest snapshot frame. */
  current(): InspectionFrame[] {
    const frames: InspectionFrame[] = [];
    for (const entry of this.#entries.values()) {
      frames.push(entry.latest ? { ...entry.actor, snapshot: entry.latest.snapshot } : entry.actor);
      if (entry.latest) frames.push(entry.latest);
    }
    return frames;
  }

  /** The session id of a promise or workflow of this engine. */
  sessionIdOf(kind: 'promise' | 'workflow', id: string): string {
    return kind === 'promise' ? promiseSessionId(this.fingerprint, id) : workflowSessionId(this.fingerprint, id);
  }

  /** The machine definition of a registered workflow, if this feed knows it. */
  definitionOf(workflowName: string): string | undefined {
    const machine = this.#machines.get(workflowName) ?? this.#engine.workflowMachine(workflowName);
    if (!machine) return undefined;
    let definition = definitions.get(machine);
    if (definition === undefined) definitions.set(machine, (definition = machineDefinition(machine)));
    return definition;
  }

  /** Re-reads unfinished promises and running workflows and publishes what changed. */
  reconcile(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#reconciling ??= this.#reconcile().finally(() => (this.#reconciling = undefined));
    return this.#reconciling;
  }

  async #reconcile(): Promise<void> {
    const since = this.#tick;
    const now = Date.now();
    try {
      const seen = new Set<string>();
      for (const status of UNFINISHED_STATUSES) {
        for (const record of await this.#engine.list({ status, limit: RECONCILE_LIMIT })) {
          seen.add(promiseSessionId(this.fingerprint, record.id));
          this.#promiseRead(record.id, record.type, record.status, since, now);
        }
      }
      for (const workflow of await this.#engine.listWorkflows({ status: 'running', limit: RECONCILE_LIMIT })) {
        seen.add(workflowSessionId(this.fingerprint, workflow.id));
        this.#workflowRead(workflow, since, now);
      }
      // Live actors that are no longer unfinished finished elsewhere (or were removed).
      for (const [sessionId, entry] of [...this.#entries]) {
        if (this.#closed) return;
        if (entry.finishedAt !== null || seen.has(sessionId) || entry.tick > since) continue;
        if (entry.kind === 'promise') {
          const record = await this.#engine.get(entry.id);
          if (record) this.#promiseRead(record.id, record.type, record.status, since, now);
          else this.#entries.delete(sessionId);
        } else {
          const workflow = await this.#engine.getWorkflow(entry.id);
          if (workflow) this.#workflowRead(workflow, since, now);
          else this.#entries.delete(sessionId);
        }
      }
    } catch (error) {
      if (!this.#closed) this.#options.onError?.(error instanceof Error ? error : new Error(String(error)));
    }
  }

  #schedulePoll(): void {
    this.#pollTimer = setTimeout(() => {
      void this.reconcile().finally(() => {
        if (!this.#closed) this.#schedulePoll();
      });
    }, this.#options.pollIntervalMs);
    this.#pollTimer.unref();
  }

  // ---- promises ----

  #promiseMoved(id: string, type: string, from: PromiseStatus, to: PromiseStatus, event: string, at: number): void {
    const sessionId = promiseSessionId(this.fingerprint, id);
    const entry = this.#entries.get(sessionId) ?? this.#addActor('promise', id, sessionId, { name: type, definition: PROMISE_DEFINITION }, promiseSnapshot(from), from, at);
    entry.tick = ++this.#tick;
    this.#publishChange(entry, { type: event }, promiseSnapshot(to), to, to === 'completed' || to === 'failed', at);
  }

  /** A promise's state as read from the database at `now`; ignored if a live event came since the read began. */
  #promiseRead(id: string, type: string, status: PromiseStatus, since: number, now: number): void {
    const sessionId = promiseSessionId(this.fingerprint, id);
    const entry = this.#entries.get(sessionId);
    if (!entry) {
      const added = this.#addActor('promise', id, sessionId, { name: type, definition: PROMISE_DEFINITION }, promiseSnapshot(status), status, now);
      if (status === 'completed' || status === 'failed') added.finishedAt = now;
      return;
    }
    if (entry.tick > since || entry.status === status) return;
    this.#publishChange(entry, { type: inferredEvent(entry.status, status) }, promiseSnapshot(status), status, status === 'completed' || status === 'failed', now);
  }

  // ---- workflows ----

  #workflowMoved(change: WorkflowChange, event: string, at: number): void {
    const sessionId = workflowSessionId(this.fingerprint, change.id);
    const snapshot = workflowSnapshot(change);
    // A workflow's first event (`xstate.init`, its start) makes the actor appear in that state.
    const entry = this.#entries.get(sessionId) ?? this.#addActor('workflow', change.id, sessionId, this.#workflowActor(change.name), snapshot, change.status, at);
    entry.tick = ++this.#tick;
    this.#publishChange(entry, { type: event }, snapshot, change.status, change.status !== 'running', at);
  }

  #workflowRead(workflow: Omit<WorkflowRecord, 'steps' | 'keptEvents'>, since: number, now: number): void {
    const sessionId = workflowSessionId(this.fingerprint, workflow.id);
    const snapshot = workflowSnapshot(workflow);
    const signature = JSON.stringify(snapshot);
    let entry = this.#entries.get(sessionId);
    if (!entry) {
      entry = this.#addActor('workflow', workflow.id, sessionId, this.#workflowActor(workflow.name), snapshot, workflow.status, now);
      entry.signature = signature;
      if (workflow.status !== 'running') entry.finishedAt = now;
      // Read from the database (a workflow another process runs, or one rehydrated): its snapshot
      // follows its actor frame, as a workflow moving in this process sends one with its start.
      else this.#publishSnapshot(entry, { type: 'promised.sync' }, snapshot, now);
      return;
    }
    const definition = entry.actor.definition === undefined ? this.definitionOf(workflow.name) : undefined;
    if (definition !== undefined) {
      // Registered since it was first seen (a workflow started elsewhere before this process registered it): tell viewers its machine.
      entry.actor = { ...entry.actor, definition };
      this.#emit({ ...entry.actor, snapshot: entry.latest?.snapshot ?? entry.actor.snapshot });
    }
    if (entry.tick > since || entry.signature === signature) return;
    this.#publishChange(entry, { type: 'promised.sync' }, snapshot, workflow.status, workflow.status !== 'running', now);
  }

  #workflowActor(name: string): { name: string; definition?: string } {
    return { name, definition: this.definitionOf(name) };
  }

  // ---- entries ----

  #addActor(kind: Entry['kind'], id: string, sessionId: string, actor: { name: string; definition?: string }, snapshot: InspectedSnapshot, status: string, at: number): Entry {
    const entry: Entry = {
      kind,
      id,
      actor: actorFrame({ ...actor, sessionId }, snapshot, at),
      latest: undefined,
      status,
      signature: '',
      finishedAt: null,
      tick: 0,
    };
    this.#entries.set(sessionId, entry);
    if (this.#entries.size > this.#options.maxActors) this.#evictOverflow();
    this.#emit(entry.actor);
    return entry;
  }

  #publishChange(entry: Entry, event: { type: string }, snapshot: InspectedSnapshot, status: string, finished: boolean, at: number): void {
    const sessionId = entry.actor.sessionId;
    entry.status = status;
    entry.signature = JSON.stringify(snapshot);
    entry.latest = snapshotFrame(sessionId, snapshot, event, at, entry.actor.rootId);
    entry.finishedAt = finished ? Date.now() : null;
    this.#emit(eventFrame(sessionId, event, at, entry.actor.rootId));
    this.#emit(entry.latest);
  }

  /** A snapshot frame alone (no event happened here: the state was read), kept for late joiners. */
  #publishSnapshot(entry: Entry, event: { type: string }, snapshot: InspectedSnapshot, at: number): void {
    entry.latest = snapshotFrame(entry.actor.sessionId, snapshot, event, at, entry.actor.rootId);
    this.#emit(entry.latest);
  }

  #emit(frame: InspectionFrame): void {
    for (const listener of this.#listeners) {
      try {
        listener(frame);
      } catch (error) {
        this.#options.onError?.(error instanceof Error ? error : new Error(String(error)));
      }
    }
  }

  /** Finished actors older than `finishedTtlMs` are forgotten. */
  #sweep(): void {
    const cutoff = Date.now() - this.#options.finishedTtlMs;
    for (const [sessionId, entry] of this.#entries) if (entry.finishedAt !== null && entry.finishedAt < cutoff) this.#entries.delete(sessionId);
  }

  /** Over the bound: the oldest finished actors go first, then the oldest. */
  #evictOverflow(): void {
    const excess = () => this.#entries.size - this.#options.maxActors;
    for (const [sessionId, entry] of this.#entries) {
      if (excess() <= 0) return;
      if (entry.finishedAt !== null) this.#entries.delete(sessionId);
    }
    for (const sessionId of this.#entries.keys()) {
      if (excess() <= 0) return;
      this.#entries.delete(sessionId);
    }
  }

  /** How many actors are kept (for tests and stats). */
  get size(): number {
    return this.#entries.size;
  }
}
