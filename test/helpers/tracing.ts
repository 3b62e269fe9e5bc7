import { context, propagation, trace, type Attributes } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

// The SDK a user would set up, with its in-memory exporter: the tests (and their child
// processes) read the finished spans as plain records.

/** A finished span, as plain JSON (what a child process writes for the test to read). */
export interface SpanRecord {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  /** Null for a root span. */
  parentSpanId: string | null;
  attributes: Attributes;
  /** SpanStatusCode: 0 unset, 1 ok, 2 error. */
  status: number;
  statusMessage: string | undefined;
  /** The names of the span's events (`exception` for a recorded error) with their attributes. */
  events: Array<{ name: string; attributes: Attributes }>;
  /** The span ids it links to. */
  links: string[];
}

/**
 * Registers a NodeTracerProvider (the AsyncLocalStorage context manager and the W3C propagators,
 * as `register()` sets them) that exports every span into memory as it ends.
 */
export function registerInMemoryTracing() {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  provider.register();
  return {
    /** Every span ended so far, oldest first. */
    spans(): SpanRecord[] {
      return exporter.getFinishedSpans().map((span) => ({
        name: span.name,
        kind: span.kind,
        traceId: span.spanContext().traceId,
        spanId: span.spanContext().spanId,
        parentSpanId: span.parentSpanContext?.spanId ?? null,
        attributes: span.attributes,
        status: span.status.code,
        statusMessage: span.status.message,
        events: span.events.map((event) => ({ name: event.name, attributes: event.attributes ?? {} })),
        links: span.links.map((link) => link.context.spanId),
      }));
    },
    reset: () => exporter.reset(),
    /** Unregisters everything: the API is back to its no-op tracer. */
    async shutdown(): Promise<void> {
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}
