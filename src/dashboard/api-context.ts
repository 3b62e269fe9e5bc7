import type { AnyStateMachine } from 'xstate';
import type { Engine } from '../engine/engine.js';
import type { InspectionFeed } from '../inspect/inspection-feed.js';

/** What the dashboard's API answers from: the engine, the hub's feed, and machines the engine does not register. */
export interface ApiContext {
  engine: Engine;
  feed: InspectionFeed;
  machines: Record<string, AnyStateMachine>;
}
