/**
 * promised: durable, actor-style promises for Node.js, persisted as XState machines in SQLite.
 * Every public name is listed here.
 */
export { createEngine } from './create-engine.js';
export type { EngineOptions } from './create-engine.js';
export { Engine } from './engine/engine.js';
export type {
  EnqueueOptions,
  EnqueueItem,
  ListFilter,
  PageFilter,
  PromisePage,
  RetryOptions,
  RetriedDeadLetters,
  EngineStats,
  StartSummary,
  DeadLetter,
  HistoryLine,
  PeriodicOptions,
  PeriodicContext,
  InboxOptions,
} from './engine/public-types.js';
export { Inbox } from './engine/inbox.js';
export type { ReceiveResult } from './engine/inbox.js';
export type { CatchUp } from './engine/public-types.js';
export type {
  WorkflowOptions,
  WorkflowRecord,
  WorkflowSummary,
  WorkflowStep,
  WorkflowEvent,
  WorkflowChange,
  WorkflowStartOptions,
  WorkflowSendOptions,
  SendResult,
  KeptEvent,
  CancelResult,
  WorkflowTransition,
  RestartOptions,
  WorkflowMigration,
  MigrationPreview,
} from './workflows/workflow-types.js';
export type { EngineWorkflows } from './engine/engine-workflows.js';
export type { WorkflowStateAt } from './engine/workflow-state-at.js';
export type { ScheduleInfo, LimitedKey } from './engine/schedule-reads.js';
export { WorkflowError } from './workflows/workflow-errors.js';
export type { TaskOptions, Backoff, Clock } from './kernel/options.js';
export type { TaskContext, TaskHandler, BatchHandler } from './kernel/task-context.js';
export type { GraphNode } from './engine/graph.js';
export { defineWorkflow } from './engine/typed-workflows.js';
export type { TypedWorkflow, AnyTypedWorkflow, WorkflowInputOf, WorkflowEventOf, WorkflowOutputOf, WorkflowId } from './engine/typed-workflows.js';
export { defineTask } from './engine/typed-tasks.js';
export type { TypedTask, AnyTypedTask, InputOf, PayloadOf, ResultOf, PromiseId, TaskItem, TaskNode, GraphIds } from './engine/typed-tasks.js';
export type { PromiseRecord } from './kernel/records.js';
export type { EngineEvents, EngineEventName } from './engine/events.js';
export type { TransitionEvent } from './kernel/events.js';
export { promiseMachine, PROMISE_STATUSES } from './machines/promise-machine.js';
export type { PromiseStatus, PromiseEvent, PromiseEventType } from './machines/promise-machine.js';
export {
  PromisedError,
  UnknownTaskTypeError,
  InvalidPayloadError,
  InvalidOptionError,
  UnknownDependencyError,
  DependencyCycleError,
  NotFoundError,
  InvalidTransitionError,
  PromiseFailedError,
  TimeoutError,
  CancelledError,
  DatabaseError,
  EngineStateError,
  InvalidScheduleError,
  ScheduleNotRegisteredError,
  InvalidMessageError,
  NonRetryableError,
  RetryAfterError,
} from './errors.js';
export type { FlowOptions, KeyOf } from './kernel/flow-options.js';
export type { DebounceOptions, BatchOptions } from './kernel/grouping-options.js';
export { createInspectionHub, InspectionHub } from './inspect/inspection-hub.js';
export { InspectionFeed } from './inspect/inspection-feed.js';
export type { InspectionFeedOptions } from './inspect/inspection-feed.js';
export { attachInspector } from './inspect/attach-inspector.js';
export type { StatelyInspectorLike } from './inspect/attach-inspector.js';
export type { InspectionFrame, ActorFrame, EventFrame, SnapshotFrame, InspectedSnapshot } from './inspect/frames.js';
export { databaseFingerprint, promiseSessionId, workflowSessionId } from './inspect/session-ids.js';
export { machineDefinition } from './inspect/machine-definition.js';
export { createDashboardHandler } from './dashboard/dashboard-handler.js';
export type { DashboardHandler, DashboardOptions } from './dashboard/dashboard-handler.js';
export { startDashboard } from './dashboard/start-dashboard.js';
export type { RunningDashboard } from './dashboard/start-dashboard.js';
