import { createRequire } from 'node:module';
import type * as Otel from '@opentelemetry/api';
import type { Attributes, Context, Link, Span, SpanContext } from '@opentelemetry/api';

// The one module that speaks @opentelemetry/api (docs/tracing.md): every other module calls
// these functions, so the API's rules are applied in one place. With no tracer provider
// registered the API hands out its no-op tracer: each span here is then a non-recording one with
// an invalid context, nothing is serialised, and the trace_context column stays null.
//
// The API keeps what an SDK registers (tracer provider, context manager, propagator) in one
// global per major version, and until something is registered it is all no-ops. So it is loaded
// the first time that global exists: an engine nobody traces never loads it (its 40-odd modules
// were ~20 ms of a command's start-up), and every function below is then the no-op it would be.
const REGISTRY = Symbol.for('opentelemetry.js.api.1');
let loaded: typeof Otel | undefined;

/** The API once an SDK registered something, else `undefined`: nothing to trace. */
function otel(): typeof Otel | undefined {
  if (loaded === undefined && (globalThis as Record<symbol, unknown>)[REGISTRY] !== undefined) {
    loaded = createRequire(import.meta.url)('@opentelemetry/api') as typeof Otel;
  }
  return loaded;
}

/** The name promised's tracer is registered under. */
const TRACER_NAME = 'promised';

/** An OpenTelemetry context, opaque to the modules that carry it (the context an attempt runs in). */
export type TraceScope = Context;

/** Span attributes: strings, numbers and booleans. */
export type TraceAttributes = Attributes;

const tracerOf = (api: typeof Otel) => api.trace.getTracer(TRACER_NAME);

const MESSAGING = { 'messaging.system': 'promised' } as const;

/** Runs `work` with `scope` active (as it is: no scope, no change). */
export function withTraceScope<T>(scope: TraceScope | undefined, work: () => T): T {
  const api = scope === undefined ? undefined : otel();
  return api === undefined ? work() : api.context.with(scope!, work);
}

/**
 * `work` bound to the root context: a timer or background loop armed while some caller's span
 * was active must not make that span the parent of everything it does later.
 */
export function detachedFromTrace<A extends unknown[], R>(work: (...args: A) => R): (...args: A) => R {
  const api = otel();
  return api === undefined ? work : api.context.bind(api.ROOT_CONTEXT, work);
}

/** The span context of `scope` when it is a real one (a provider made it, or it was propagated). */
function validSpanContext(api: typeof Otel, scope: Context): SpanContext | undefined {
  const spanContext = api.trace.getSpanContext(scope);
  return spanContext && api.isSpanContextValid(spanContext) ? spanContext : undefined;
}

/**
 * What the registered propagator writes for `scope` (W3C `traceparent` and `tracestate` by
 * default), as JSON text; null when no valid span is active or no propagator wrote anything.
 */
function serialiseTraceScope(api: typeof Otel, scope: TraceScope): string | null {
  if (validSpanContext(api, scope) === undefined) return null;
  const carrier: Record<string, string> = {};
  api.propagation.inject(scope, carrier);
  return Object.keys(carrier).length === 0 ? null : JSON.stringify(carrier);
}

/** The context a stored carrier describes, on top of `base`; `base` itself when there is none or it is unreadable. */
function restoreTraceScope(api: typeof Otel, text: string | null, base: TraceScope = api.ROOT_CONTEXT): TraceScope {
  if (text === null) return base;
  let carrier: unknown;
  try {
    carrier = JSON.parse(text);
  } catch {
    // A damaged carrier only costs the link to the producer's trace, never the promise.
    return base;
  }
  if (carrier === null || typeof carrier !== 'object' || Array.isArray(carrier)) return base;
  return api.propagation.extract(base, carrier as Record<string, unknown>, {
    get: (from, key) => {
      const value = (from as Record<string, unknown>)[key];
      return typeof value === 'string' ? value : undefined;
    },
    keys: (from) => Object.keys(from as object),
  });
}

/** Records a thrown value on `span` and marks it failed. */
function recordFailure(api: typeof Otel, span: Span, thrown: unknown, code?: string): void {
  const error = thrown instanceof Error ? thrown : new Error(String(thrown));
  span.recordException(error);
  span.setStatus({ code: api.SpanStatusCode.ERROR, message: code === undefined ? error.message : `${code}: ${error.message}` });
}

/** The enqueue span's view for the code that writes the row. */
export interface EnqueueTrace {
  /** The carrier to store with the row (the enqueue span's context), or null. */
  readonly traceContext: string | null;
  /** Says which row the enqueue wrote, or found under its idempotency key. */
  wrote(id: number, created: boolean): void;
}

const UNTRACED_ENQUEUE: EnqueueTrace = { traceContext: null, wrote: () => undefined };

/**
 * Runs the creation of one promise in a producer span `enqueue <type>`, a child of the active
 * span. The row stores the enqueue span's context, so its attempts are that span's children.
 */
export function traceEnqueue<T>(type: string, work: (span: EnqueueTrace) => Promise<T>): Promise<T> {
  const api = otel();
  if (api === undefined) return work(UNTRACED_ENQUEUE);
  const attributes = { ...MESSAGING, 'messaging.operation.type': 'send', 'messaging.operation.name': 'enqueue', 'messaging.destination.name': type, 'promised.type': type };
  return tracerOf(api).startActiveSpan(`enqueue ${type}`, { kind: api.SpanKind.PRODUCER, attributes }, async (span) => {
    const notes: EnqueueTrace = {
      traceContext: serialiseTraceScope(api, api.context.active()),
      wrote: (id, created) => span.setAttributes({ 'messaging.message.id': String(id), 'promised.promise.id': String(id), 'promised.deduplicated': !created }),
    };
    try {
      return await work(notes);
    } catch (error) {
      recordFailure(api, span, error);
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
  /** The context its handler runs in, and its outcome commits in: the attempt span active (none: not traced). */
  readonly scope: TraceScope | undefined;
  succeeded(): void;
  failed(thrown: unknown, code: string): void;
  /** Its outcome will not be committed: the claim was cancelled, taken over or released. */
  abandoned(): void;
  end(): void;
}

const UNTRACED_ATTEMPT: AttemptTrace = { scope: undefined, succeeded: () => undefined, failed: () => undefined, abandoned: () => undefined, end: () => undefined };

/**
 * Starts a consumer span `process <type>` for one attempt, a child of the enqueue span whose
 * context the row stored (a new trace when it stored none). The context the claiming code runs
 * in is not a parent: it is whichever write last woke the scheduler.
 */
export function startAttempt(claim: AttemptFacts, storedContext: string | null): AttemptTrace {
  const api = otel();
  if (api === undefined) return UNTRACED_ATTEMPT;
  const parent = restoreTraceScope(api, storedContext);
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
  const span = tracerOf(api).startSpan(`process ${claim.type}`, { kind: api.SpanKind.CONSUMER, attributes }, parent);
  let ended = false;
  return {
    scope: api.trace.setSpan(parent, span),
    succeeded: () => span.setAttribute('promised.outcome', 'succeeded'),
    failed: (thrown, code) => {
      span.setAttributes({ 'promised.outcome': 'failed', 'promised.error.code': code });
      recordFailure(api, span, thrown, code);
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

/** The operation span active in a context, and the key it answers to (a context key: `Symbol.for` of its name, as the API's own). */
const OPERATION = Symbol.for('promised.operation');

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

const UNTRACED_OPERATION: OperationTrace = { traceContext: null, set: () => undefined, claim: () => undefined };

/** Runs `work` in an internal span `name` (see {@link OperationOptions} for its parent). */
export function traceOperation<T>(name: string, attributes: TraceAttributes, options: OperationOptions, work: (span: OperationTrace) => Promise<T>): Promise<T> {
  const api = otel();
  if (api === undefined) return work(UNTRACED_OPERATION);
  const active = api.context.active();
  const running = active.getValue(OPERATION) as ActiveOperation | undefined;
  if (options.key !== null && running?.key === options.key) return work(running.trace);
  const { parent, links } = parentOf(api, active, options.continues);
  const span = tracerOf(api).startSpan(name, { kind: api.SpanKind.INTERNAL, attributes, links }, parent);
  const operation: ActiveOperation = { key: options.key, trace: undefined as unknown as OperationTrace };
  const scope = api.trace.setSpan(parent, span).setValue(OPERATION, operation);
  operation.trace = {
    traceContext: serialiseTraceScope(api, scope),
    set: (more) => span.setAttributes(more),
    claim: (key) => void (operation.key = key),
  };
  return api.context.with(scope, async () => {
    try {
      return await work(operation.trace);
    } catch (error) {
      recordFailure(api, span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Sets attributes on the operation span active under `key`, if there is one. */
export function annotateOperation(key: string, attributes: TraceAttributes): void {
  const running = otel()?.context.active().getValue(OPERATION) as ActiveOperation | undefined;
  if (running?.key === key) running.trace.set(attributes);
}

function parentOf(api: typeof Otel, active: Context, continues: string | null): { parent: Context; links: Link[] } {
  const stored = continues === null ? undefined : restoreTraceScope(api, continues, active);
  const storedSpan = stored === undefined ? undefined : validSpanContext(api, stored);
  if (stored === undefined || storedSpan === undefined) return { parent: active, links: [] };
  const activeSpan = validSpanContext(api, active);
  if (activeSpan === undefined) return { parent: stored, links: [] };
  if (activeSpan.traceId === storedSpan.traceId) return { parent: active, links: [] };
  return { parent: stored, links: [{ context: activeSpan }] };
}
