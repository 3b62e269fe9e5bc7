import {
  context,
  createContextKey,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type SpanContext,
} from '@opentelemetry/api';

// The one module that speaks @opentelemetry/api (docs/tracing.md): every other module calls
// these functions, so the API's rules are applied in one place. With no tracer provider
// registered the API hands out its no-op tracer: each span here is then a non-recording one with
// an invalid context, nothing is serialised, and the trace_context column stays null.

/** The name promised's tracer is registered under. */
const TRACER_NAME = 'promised';

/** An OpenTelemetry context, opaque to the modules that carry it (the context an attempt runs in). */
export type TraceScope = Context;

/** Span attributes: strings, numbers and booleans. */
export type TraceAttributes = Attributes;

const tracer = () => trace.getTracer(TRACER_NAME);

const MESSAGING = { 'messaging.system': 'promised' } as const;

/** Runs `work` with `scope` active (as it is: no scope, no change). */
export function withTraceScope<T>(scope: TraceScope | undefined, work: () => T): T {
  return scope === undefined ? work() : context.with(scope, work);
}

/**
 * `work` bound to the root context: a timer or background loop armed while some caller's span
 * was active must not make that span the parent of everything it does later.
 */
export function detachedFromTrace<A extends unknown[], R>(work: (...args: A) => R): (...args: A) => R {
  return context.bind(ROOT_CONTEXT, work);
}

/** The span context of `scope` when it is a real one (a provider made it, or it was propagated). */
function validSpanContext(scope: Context): SpanContext | undefined {
  const spanContext = trace.getSpanContext(scope);
  return spanContext && isSpanContextValid(spanContext) ? spanContext : undefined;
}

/**
 * What the registered propagator writes for `scope` (W3C `traceparent` and `tracestate` by
 * default), as JSON text; null when no valid span is active or no propagator wrote anything.
 */
export function serialiseTraceScope(scope: TraceScope): string | null {
  if (validSpanContext(scope) === undefined) return null;
  const carrier: Record<string, string> = {};
  propagation.inject(scope, carrier);
  return Object.keys(carrier).length === 0 ? null : JSON.stringify(carrier);
}

/** The context a stored carrier describes, on top of `base`; `base` itself when there is none or it is unreadable. */
export function restoreTraceScope(text: string | null, base: TraceScope = ROOT_CONTEXT): TraceScope {
  if (text === null) return base;
  let carrier: unknown;
  try {
    carrier = JSON.parse(text);
  } catch {
    // A damaged carrier only costs the link to the producer's trace, never the promise.
    return base;
  }
  if (carrier === null || typeof carrier !== 'object' || Array.isArray(carrier)) return base;
  return propagation.extract(base, carrier as Record<string, unknown>, {
    get: (from, key) => {
      const value = (from as Record<string, unknown>)[key];
      return typeof value === 'string' ? value : undefined;
    },
    keys: (from) => Object.keys(from as object),
  });
}

/** Records a thrown value on `span` and marks it failed. */
function recordFailure(span: Span, thrown: unknown, code?: string): void {
  const error = thrown instanceof Error ? thrown : new Error(String(thrown));
  span.recordException(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: code === undefined ? error.message : `${code}: ${error.message}` });
}

/** The enqueue span's view for the code that writes the row. */
export interface EnqueueTrace {
  /** The carrier to store with the row (the enqueue span's context), or null. */
  readonly traceContext: string | null;
  /** Says which row the enqueue wrote, or found under its idempotency key. */
  wrote(id: number, created: boolean): void;
}

/**
 * Runs the creation of one promise in a producer span `enqueue <type>`, a child of the active
 * span. The row stores the enqueue span's context, so its attempts are that span's children.
 */
export function traceEnqueue<T>(type: string, work: (span: EnqueueTrace) => Promise<T>): Promise<T> {
  const attributes = { ...MESSAGING, 'messaging.operation.type': 'send', 'messaging.operation.name': 'enqueue', 'messaging.destination.name': type, 'promised.type': type };
  return tracer().startActiveSpan(`enqueue ${type}`, { kind: SpanKind.PRODUCER, attributes }, async (span) => {
    const notes: EnqueueTrace = {
      traceContext: serialiseTraceScope(context.active()),
      wrote: (id, created) => span.setAttributes({ 'messaging.message.id': String(id), 'promised.promise.id': String(id), 'promised.deduplicated': !created }),
    };
    try {
      return await work(notes);
    } catch (error) {
      recordFailure(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** What an attempt span is told about the claim it runs. */
export interface AttemptFacts {
  id: number;
  type: string;
  attempts: number;
  maxAttempts: number;
  step?: { workflowId: number; invokeId: string } | undefined;
}

/** One attempt's span, from its claim to the commit (or refusal) of its outcome. */
export interface AttemptTrace {
  /** The context its handler runs in, and its outcome commits in: the attempt span active. */
  readonly scope: TraceScope;
  succeeded(): void;
  failed(thrown: unknown, code: string): void;
  /** Its outcome will not be committed: the claim was cancelled, taken over or released. */
  abandoned(): void;
  end(): void;
}

/**
 * Starts a consumer span `process <type>` for one attempt, a child of the enqueue span whose
 * context the row stored (a new trace when it stored none). The context the claiming code runs
 * in is not a parent: it is whichever write last woke the scheduler.
 */
export function startAttempt(claim: AttemptFacts, storedContext: string | null): AttemptTrace {
  const parent = restoreTraceScope(storedContext);
  const attributes: Attributes = {
    ...MESSAGING,
    'messaging.operation.type': 'process',
    'messaging.operation.name': 'process',
    'messaging.destination.name': claim.type,
    'messaging.message.id': String(claim.id),
    'promised.type': claim.type,
    'promised.promise.id': String(claim.id),
    'promised.attempt': claim.attempts,
    'promised.max_attempts': claim.maxAttempts,
  };
  if (claim.step) Object.assign(attributes, { 'promised.workflow.id': String(claim.step.workflowId), 'promised.workflow.invoke_id': claim.step.invokeId });
  const span = tracer().startSpan(`process ${claim.type}`, { kind: SpanKind.CONSUMER, attributes }, parent);
  let ended = false;
  return {
    scope: trace.setSpan(parent, span),
    succeeded: () => span.setAttribute('promised.outcome', 'succeeded'),
    failed: (thrown, code) => {
      span.setAttributes({ 'promised.outcome': 'failed', 'promised.error.code': code });
      recordFailure(span, thrown, code);
    },
    abandoned: () => span.setAttribute('promised.outcome', 'abandoned'),
    end: () => {
      // A claim is finished once, but a fenced-off one may be told twice (refused, then finished).
      if (ended) return;
      ended = true;
      span.end();
    },
  };
}

/** An internal span's view for the code it wraps. */
export interface OperationTrace {
  /** The carrier of the operation span's context, to store with what it creates, or null. */
  readonly traceContext: string | null;
  set(attributes: TraceAttributes): void;
  /** From now on, an operation asked for under `key` inside this one joins this span. */
  claim(key: string): void;
}

/** The operation span active in a context, and the key it answers to. */
const OPERATION = createContextKey('promised.operation');

interface ActiveOperation {
  key: string | null;
  trace: OperationTrace;
}

export interface OperationOptions {
  /**
   * The stored context of what this operation moves on (a workflow's, taken when it started).
   * The span's parent is the active span when that is of the same trace, else the stored
   * context, with a link to the active span when there is one (an event sent from elsewhere).
   */
  continues: string | null;
  /** An operation under the same key already active (a nested call) joins its span instead of starting another. */
  key: string | null;
}

/** Runs `work` in an internal span `name` (see {@link OperationOptions} for its parent). */
export function traceOperation<T>(name: string, attributes: TraceAttributes, options: OperationOptions, work: (span: OperationTrace) => Promise<T>): Promise<T> {
  const active = context.active();
  const running = active.getValue(OPERATION) as ActiveOperation | undefined;
  if (options.key !== null && running?.key === options.key) return work(running.trace);
  const { parent, links } = parentOf(active, options.continues);
  const span = tracer().startSpan(name, { kind: SpanKind.INTERNAL, attributes, links }, parent);
  const operation: ActiveOperation = { key: options.key, trace: undefined as unknown as OperationTrace };
  const scope = trace.setSpan(parent, span).setValue(OPERATION, operation);
  operation.trace = {
    traceContext: serialiseTraceScope(scope),
    set: (more) => span.setAttributes(more),
    claim: (key) => void (operation.key = key),
  };
  return context.with(scope, async () => {
    try {
      return await work(operation.trace);
    } catch (error) {
      recordFailure(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Sets attributes on the operation span active under `key`, if there is one. */
export function annotateOperation(key: string, attributes: TraceAttributes): void {
  const running = context.active().getValue(OPERATION) as ActiveOperation | undefined;
  if (running?.key === key) running.trace.set(attributes);
}

function parentOf(active: Context, continues: string | null): { parent: Context; links: Link[] } {
  const stored = continues === null ? undefined : restoreTraceScope(continues, active);
  const storedSpan = stored === undefined ? undefined : validSpanContext(stored);
  if (stored === undefined || storedSpan === undefined) return { parent: active, links: [] };
  const activeSpan = validSpanContext(active);
  if (activeSpan === undefined) return { parent: stored, links: [] };
  if (activeSpan.traceId === storedSpan.traceId) return { parent: active, links: [] };
  return { parent: stored, links: [{ context: activeSpan }] };
}
