/**
 * OpenTelemetry tracing (observability/tracing.ts): the standard `OTEL_*` variables the API
 * honours, and the share of subscribers whose deliveries are traced. Off unless an endpoint is set.
 */
import { SAMPLERS, type TracingSettings } from '../observability/tracing.js';
import { num, oneOf, optionalText, text, type Declarations, type Parsed } from './values.js';

/** An OTLP/HTTP base or traces URL, when set. */
const endpoint = () => optionalText(/^https?:\/\/\S+$/);

export const TRACING_VARIABLES = {
  OTEL_EXPORTER_OTLP_ENDPOINT: {
    schema: endpoint(),
    doc: 'OTLP/HTTP base URL: traces go to <it>/v1/traces; tracing is off when neither endpoint is set',
  },
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: {
    schema: endpoint(),
    doc: 'OTLP/HTTP URL of traces, as is (wins over OTEL_EXPORTER_OTLP_ENDPOINT)',
  },
  OTEL_SERVICE_NAME: { schema: text('iot-realtime-pipeline'), doc: 'service.name of the spans' },
  OTEL_TRACES_SAMPLER: {
    schema: oneOf(SAMPLERS, 'parentbased_always_on'),
    doc: 'which traces are kept: a traceparent from the caller is followed with parentbased_*',
  },
  OTEL_TRACES_SAMPLER_ARG: { schema: num(1, 0, 1), doc: 'the ratio of the traceidratio samplers' },
  TRACING_SUBSCRIBER_RATIO: {
    schema: num(1, 0, 1),
    doc: 'share of overheatAlerts subscriptions whose deliveries get a span',
  },
} as const satisfies Declarations;

export function tracingSettings(e: Parsed<typeof TRACING_VARIABLES>): TracingSettings {
  const base = e.OTEL_EXPORTER_OTLP_ENDPOINT;
  return {
    tracesUrl:
      e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ??
      (base === undefined ? undefined : `${base.replace(/\/+$/, '')}/v1/traces`),
    serviceName: e.OTEL_SERVICE_NAME,
    sampler: e.OTEL_TRACES_SAMPLER,
    samplerRatio: e.OTEL_TRACES_SAMPLER_ARG,
    subscriberRatio: e.TRACING_SUBSCRIBER_RATIO,
  };
}
