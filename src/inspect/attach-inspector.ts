import type { Engine } from '../engine/engine.js';
import type { ActorFrame, InspectedSnapshot, InspectionFrame } from './frames.js';
import { InspectionFeed, type InspectionFeedOptions } from './inspection-feed.js';

/**
 * What `@statelyai/inspect`'s inspectors (`createWebSocketInspector`, `createSkyInspector`,
 * `createInspector`) offer; the engine uses nothing else of them.
 */
export interface StatelyInspectorLike {
  actor(actor: unknown, snapshot?: InspectedSnapshot, info?: unknown): void;
  event(actor: unknown, event: { type: string }, info?: unknown): void;
  snapshot(actor: unknown, snapshot: InspectedSnapshot, info?: { event?: { type: string } }): void;
}

/**
 * Sends every promise and workflow actor of `engine` to an `@statelyai/inspect` inspector, as
 * the hub sends them: what the database holds now (and after each `start()`), then every
 * transition. `createEngine({ inspect })` calls this for you.
 *
 * @example
 * ```ts
 * import { createWebSocketInspector } from '@statelyai/inspect';
 * const detach = attachInspector(engine, createWebSocketInspector({ url: 'ws://localhost:8080' }), { database: './promised.db' });
 * ```
 */
export function attachInspector(engine: Engine, inspector: StatelyInspectorLike, options: InspectionFeedOptions = {}): { feed: InspectionFeed; detach(): void } {
  if (!inspector || typeof inspector.actor !== 'function' || typeof inspector.event !== 'function' || typeof inspector.snapshot !== 'function') {
    throw new TypeError('inspect: expected an @statelyai/inspect inspector (with actor, event and snapshot methods)');
  }
  const feed = new InspectionFeed(engine, options);
  feed.subscribe((frame) => forward(inspector, frame));
  void feed.start();
  return { feed, detach: () => feed.close() };
}

function forward(inspector: StatelyInspectorLike, frame: InspectionFrame): void {
  if (frame.type === '@xstate.actor') inspector.actor(actorRefOf(frame), frame.snapshot);
  else if (frame.type === '@xstate.event') inspector.event(frame.sessionId, frame.event);
  else inspector.snapshot(frame.sessionId, frame.snapshot, { event: frame.event });
}

/**
 * The inspector reads an actor's name, parent and machine from an actor reference: this is the
 * smallest one that yields ours (`logic.config` becomes the `definition` it sends).
 */
function actorRefOf(frame: ActorFrame) {
  return {
    sessionId: frame.sessionId,
    id: frame.name,
    _parent: frame.parentId === undefined ? undefined : { sessionId: frame.parentId },
    logic: frame.definition === undefined ? undefined : { config: JSON.parse(frame.definition) as unknown },
  };
}
