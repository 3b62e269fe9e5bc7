import { annotateOperation, traceOperation } from '../kernel/tracing.js';

// A workflow's transitions as spans (docs/tracing.md). A workflow keeps the trace context of its
// start, so a move caused by a timer or by an event sent from another trace still lands in the
// workflow's trace; a move caused by a step's outcome is a child of that step's attempt.

/** A workflow as its transition span needs it: a stored row, or (id null) one being started. */
export interface TracedWorkflow {
  id: number | null;
  name: string;
  /** The context stored when it started. */
  trace_context: string | null;
}

/** The transition span, as the code that starts a workflow sees it. */
export interface StartSpan {
  /** What the new workflow row stores: this span's context. */
  readonly traceContext: string | null;
  /** The row exists: moves of workflow `id` nested in this one join this span. */
  started(id: number): void;
}

const keyOf = (id: number) => `workflow:${id}`;

/**
 * Runs one move of a workflow (its start, a step's outcome, an event, a timer, a migration) in
 * an internal span `transition <name>`. Nested moves of the same workflow (a step's outcome that
 * ends it, a migration before an event) join the span instead of starting another.
 */
export function traceTransition<T>(workflow: TracedWorkflow, event: string, work: (span: StartSpan) => Promise<T>): Promise<T> {
  const attributes = { 'promised.workflow.name': workflow.name, 'promised.workflow.event': event, ...(workflow.id === null ? {} : { 'promised.workflow.id': String(workflow.id) }) };
  const key = workflow.id === null ? null : keyOf(workflow.id);
  return traceOperation(`transition ${workflow.name}`, attributes, { continues: workflow.trace_context, key }, (span) =>
    work({
      traceContext: span.traceContext,
      started: (id) => {
        span.set({ 'promised.workflow.id': String(id) });
        span.claim(keyOf(id));
      },
    }),
  );
}

/** Says on the active transition span of workflow `id` where the move led. */
export function noteTransition(id: number, facts: { seq: number; from: string | null; to: string; status: string }): void {
  annotateOperation(keyOf(id), {
    'promised.workflow.seq': facts.seq,
    'promised.workflow.to': facts.to,
    'promised.workflow.status': facts.status,
    ...(facts.from === null ? {} : { 'promised.workflow.from': facts.from }),
  });
}
