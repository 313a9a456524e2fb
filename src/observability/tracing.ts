/**
 * OpenTelemetry tracing of the alert path: one reading's trace runs from its ingestion (or its
 * simulated sensor) through Kafka, the judging, the Redis fan-out and the delivery to subscribers.
 *
 * Off unless an OTLP endpoint is configured (config/tracing.ts): then every caller sees
 * `enabled === false` and does nothing else, so the alert path pays one check per batch. On, spans
 * go in batches to the endpoint as OTLP/HTTP JSON.
 *
 * The SDK is one instance per replica, never registered globally: several replicas in one process
 * (the tests) keep their own. Contexts travel explicitly as W3C `traceparent` strings (Kafka
 * headers, the alert's Redis payload), not through async context: the pipeline hands items from
 * batch to batch, and an ambient context would be the wrong one half of the time.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Link,
  type Span,
} from '@opentelemetry/api';
import { parseTraceParent } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
} from '@opentelemetry/sdk-trace';

export { SpanKind, type Span };

/** The samplers of OTEL_TRACES_SAMPLER this module knows (the specification's names). */
export const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
export type SamplerName = (typeof SAMPLERS)[number];

export interface TracingSettings {
  /** Where spans are posted (OTLP/HTTP, `.../v1/traces`); undefined: tracing is off. */
  readonly tracesUrl: string | undefined;
  readonly serviceName: string;
  readonly sampler: SamplerName;
  /** The ratio of the `traceidratio` samplers (OTEL_TRACES_SAMPLER_ARG). */
  readonly samplerRatio: number;
  /** The share of overheatAlerts subscriptions whose deliveries get a span (decided as each opens). */
  readonly subscriberRatio: number;
}

export interface SpanOptions {
  readonly kind?: SpanKind;
  readonly attributes?: Attributes;
  /** Other traces this span belongs to as well (`traceparent`s): a store write of many alerts. */
  readonly links?: readonly string[];
  /** Epoch milliseconds, when the span began before it could be started (a batch's fetch). */
  readonly startTime?: number;
}

export interface Tracing {
  /** False: no span is ever started; callers check this first and skip the rest. */
  readonly enabled: boolean;
  /** A span, child of `parent` (a `traceparent`), or a root span the sampler decides on. */
  start(name: string, parent: string | undefined, options?: SpanOptions): Span;
  /** Whether a new overheatAlerts subscription's deliveries get spans. */
  sampleSubscriber(): boolean;
  /** Exports what is buffered, then stops (the last step of the shutdown). */
  shutdown(): Promise<void>;
}

/** The `traceparent` of a span to carry on, or undefined when it is not sampled (nothing to join). */
export function traceparentOf(span: Span): string | undefined {
  const c = span.spanContext();
  if ((c.traceFlags & 1) === 0) return undefined;
  return `00-${c.traceId}-${c.spanId}-01`;
}

/** The trace id in a `traceparent` (`00-<trace id>-<span id>-<flags>`), for log lines. */
export function traceIdOf(traceparent: string): string {
  return traceparent.slice(3, 35);
}

/** Ends a span, marked failed when `err` is given. */
export function endSpan(span: Span, err?: unknown): void {
  if (err !== undefined) {
    const message = err instanceof Error ? err.message : typeof err === 'string' ? err : 'failed';
    span.recordException(err instanceof Error ? err : message);
    span.setStatus({ code: SpanStatusCode.ERROR, message });
  }
  span.end();
}

/**
 * The trace an item carries along the pipeline (an alert, from its judging to its delivery),
 * beside the item rather than in it: the domain types stay as they are stored and shown, and an
 * item without a trace costs nothing. Kept weakly: it goes with the item.
 */
const carried = new WeakMap<object, string>();

export function carryTrace(item: object, traceparent: string): void {
  carried.set(item, traceparent);
}

export function traceOf(item: object): string | undefined {
  return carried.get(item);
}

const off: Tracing = {
  enabled: false,
  start: () => trace.wrapSpanContext({ traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 0 }),
  sampleSubscriber: () => false,
  shutdown: () => Promise.resolve(),
};

/** The tracing of a replica, from its settings: the no-op one when no endpoint is set. */
export function createTracing(settings: TracingSettings): Tracing {
  if (settings.tracesUrl === undefined) return off;
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': settings.serviceName }),
    sampler: samplerOf(settings.sampler, settings.samplerRatio),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: settings.tracesUrl }) })],
  });
  const tracer = provider.getTracer('iot-realtime-pipeline');
  const linkOf = (traceparent: string): Link[] => {
    const context = parseTraceParent(traceparent);
    return context ? [{ context }] : [];
  };
  return {
    enabled: true,
    start(name, parent, options = {}) {
      const parentContext = parent === undefined ? null : parseTraceParent(parent);
      const context = parentContext ? trace.setSpanContext(ROOT_CONTEXT, parentContext) : ROOT_CONTEXT;
      return tracer.startSpan(
        name,
        {
          kind: options.kind ?? SpanKind.INTERNAL,
          attributes: options.attributes,
          links: options.links?.flatMap(linkOf),
          startTime: options.startTime,
        },
        context,
      );
    },
    sampleSubscriber: () => settings.subscriberRatio >= 1 || Math.random() < settings.subscriberRatio,
    shutdown: () => provider.shutdown(),
  };
}

function samplerOf(name: SamplerName, ratio: number): Sampler {
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }
}
