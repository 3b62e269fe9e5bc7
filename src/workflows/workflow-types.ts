import type { TaskOptions } from '../kernel/options.js';
import type { PromiseRecord } from '../kernel/records.js';
import type { TaskHandler } from '../kernel/task-context.js';

/** A step: a handler `(input, ctx) => output`, or `{ workflow: name }` to run another workflow as a child. */
export type WorkflowStep = TaskHandler | { workflow: string };

/** Options for {@link Engine.workflow}. */
export interface WorkflowOptions {
  /** One entry per actor the machine invokes, by its name in `setup({ actors })`. */
  steps: Record<string, WorkflowStep>;
  /** Task options (retries, timeout…) for every step, or per step name. */
  stepOptions?: TaskOptions | Record<string, TaskOptions>;
}

/** Options of `engine.startWorkflow`. */
export interface WorkflowStartOptions {
  /**
   * An idempotency key (at most 512 characters): a start with a key already used returns that
   * workflow's id and writes nothing, so a retried request starts one workflow, not two.
   */
  key?: string;
}

/** @internal What the runtime's start takes: the public options, validated, and the parent step of a child workflow. */
export interface StartOptions {
  key?: string;
  parentStepId?: number;
}

/** An external event: a `type`, and any JSON fields. */
export type WorkflowEvent = { type: string } & Record<string, unknown>;

/** A workflow as `getWorkflow` shows it. */
export interface WorkflowRecord {
  id: string;
  name: string;
  status: 'running' | 'completed' | 'failed';
  /** The machine's state value. */
  value: unknown;
  context: unknown;
  output: unknown;
  error: { code: string; message: string } | null;
  /** The idempotency key it was started with, or `null`. */
  key: string | null;
  steps: PromiseRecord[];
  createdAt: Date;
  completedAt: Date | null;
}

/** A workflow moved: the event applied and the state it led to. */
export type WorkflowChange = Pick<WorkflowRecord, 'id' | 'name' | 'status' | 'value' | 'context' | 'output' | 'error'> & { event: string; at: Date };

/** Where a workflow's changes go once committed (the engine's `workflow` event). */
export interface WorkflowListeners {
  /** True when someone listens (building a change costs a parse of the snapshot). */
  wanted(): boolean;
  emit(change: WorkflowChange): void;
}

/** The workflow statuses, as stored. */
export const WORKFLOW_STATUSES = ['running', 'completed', 'failed'] as const;
