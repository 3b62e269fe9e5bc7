/**
 * promised/testing: an engine for your tests, on an in-memory database and a virtual clock.
 * Every public name is listed here.
 */
export { createTestEngine, TestEngine } from './test-engine.js';
export type { TestEngineOptions } from './test-engine.js';
export { VirtualClock } from './virtual-clock.js';
export { workflowPaths, PATH_STEP_ERROR } from './workflow-paths.js';
export type { WorkflowPath, WorkflowPathMove, WorkflowPathsOptions } from './workflow-paths.js';
