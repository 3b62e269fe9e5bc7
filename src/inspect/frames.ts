/**
 * The Stately inspector's wire format, as `@statelyai/inspect` 0.7 sends it: one JSON object per
 * WebSocket message. Field for field the shapes of its `createInspector` (`actor`, `event`,
 * `snapshot`), so the Stately UI and any tool that reads that format read ours.
 */

/** The `_version` field: the `@statelyai/inspect` release whose frames these copy. */
export const STATELY_INSPECT_VERSION = '0.7.2';

/** What a snapshot frame carries: the machine's state. */
export interface InspectedSnapshot {
  status: 'active' | 'done' | 'error' | 'stopped';
  value?: unknown;
  context?: unknown;
  output?: unknown;
  error?: unknown;
  [key: string]: unknown;
}

/** An actor appeared (or a late viewer is told about it): its machine and current state. */
export interface ActorFrame {
  type: '@xstate.actor';
  name: string;
  sessionId: string;
  createdAt: string;
  _version: string;
  rootId: string | undefined;
  parentId: string | undefined;
  id: null;
  /** The machine's config as JSON text (see {@link machineDefinition}), when known. */
  definition: string | undefined;
  snapshot: InspectedSnapshot;
}

/** An event was sent to an actor. */
export interface EventFrame {
  type: '@xstate.event';
  sourceId: string | undefined;
  sessionId: string;
  event: { type: string; [key: string]: unknown };
  id: string;
  createdAt: string;
  rootId: string;
  _version: string;
}

/** An actor's state after an event. */
export interface SnapshotFrame {
  type: '@xstate.snapshot';
  snapshot: InspectedSnapshot;
  event: { type: string; [key: string]: unknown };
  sessionId: string;
  id: null;
  createdAt: string;
  rootId: string;
  _version: string;
}

/** Any frame of the Stately inspector's wire format. */
export type InspectionFrame = ActorFrame | EventFrame | SnapshotFrame;

let eventSequence = 0;

/** An `@xstate.actor` frame. */
export function actorFrame(actor: { name: string; sessionId: string; parentId?: string; definition?: string }, snapshot: InspectedSnapshot, at: number): ActorFrame {
  return {
    type: '@xstate.actor',
    name: actor.name,
    sessionId: actor.sessionId,
    createdAt: String(at),
    _version: STATELY_INSPECT_VERSION,
    rootId: actor.parentId ?? actor.sessionId,
    parentId: actor.parentId,
    id: null,
    definition: actor.definition,
    snapshot,
  };
}

/** An `@xstate.event` frame. */
export function eventFrame(sessionId: string, event: { type: string }, at: number, rootId = sessionId): EventFrame {
  return {
    type: '@xstate.event',
    sourceId: undefined,
    sessionId,
    event,
    id: `${sessionId}#${++eventSequence}`,
    createdAt: String(at),
    rootId,
    _version: STATELY_INSPECT_VERSION,
  };
}

/** An `@xstate.snapshot` frame. */
export function snapshotFrame(sessionId: string, snapshot: InspectedSnapshot, event: { type: string }, at: number, rootId = sessionId): SnapshotFrame {
  return { type: '@xstate.snapshot', snapshot, event, sessionId, id: null, createdAt: String(at), rootId, _version: STATELY_INSPECT_VERSION };
}
