/**
 * Tracing (observability/tracing.ts, config/tracing.ts): off unless an endpoint is set, the OTEL_*
 * variables as the specification reads them, the sampler followed, and a trace carried by an alert
 * across the Redis payload.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type ConfigError } from '../../src/config.js';
import type { OverheatAlert } from '../../src/domain/alert.js';
import { deserializeAlert, serializeAlert } from '../../src/fanout/alertFanout.js';
import {
  createTracing,
  traceIdOf,
  traceOf,
  traceparentOf,
  type TracingSettings,
} from '../../src/observability/tracing.js';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlpReceiver.js';

let receiver: OtlpReceiver;
beforeAll(async () => {
  receiver = await startOtlpReceiver();
});
afterAll(() => receiver.close());

/** Callers without credentials get in: the configuration needs a way to authenticate. */
const OPEN = { AUTH_ANONYMOUS_ROLE: 'admin' };
const settings = (over: Partial<TracingSettings> = {}): TracingSettings => ({
  tracesUrl: `${receiver.url}/v1/traces`,
  serviceName: 'test',
  sampler: 'parentbased_always_on',
  samplerRatio: 1,
  subscriberRatio: 1,
  ...over,
});
const PARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

describe('tracing settings', () => {
  it('are off when no OTLP endpoint is set', () => {
    const config = loadConfig(OPEN);
    expect(config.tracing.tracesUrl).toBeUndefined();
    expect(createTracing(config.tracing).enabled).toBe(false);
  });

  it('send traces to <OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces, or to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is', () => {
    expect(loadConfig({ ...OPEN, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }).tracing.tracesUrl).toBe(
      'http://collector:4318/v1/traces',
    );
    expect(
      loadConfig({
        ...OPEN,
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://other:9999/traces',
      }).tracing.tracesUrl,
    ).toBe('http://other:9999/traces');
  });

  it('refuse an unknown sampler, a ratio outside 0..1 and a misspelt TRACING_ variable, together', () => {
    let problems = '';
    try {
      loadConfig({ ...OPEN, OTEL_TRACES_SAMPLER: 'sometimes', OTEL_TRACES_SAMPLER_ARG: '2', TRACING_SUBSCRIBERS: '1' });
    } catch (err) {
      problems = (err as ConfigError).problems.join('\n');
    }
    expect(problems).toMatch(/TRACING_SUBSCRIBERS: unknown variable/);
    expect(problems).toMatch(/OTEL_TRACES_SAMPLER: /);
    expect(problems).toMatch(/OTEL_TRACES_SAMPLER_ARG: /);
  });
});

describe('a tracing', () => {
  it('makes a span the child of the caller’s traceparent, and carries its own on', async () => {
    const tracing = createTracing(settings());
    const span = tracing.start('ingest readings', PARENT);
    const carried = traceparentOf(span)!;
    expect(traceIdOf(carried)).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(carried).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    expect(carried).not.toBe(PARENT);
    span.end();
    // Exported at shutdown, to the receiver: the child of the caller's span, under its service.
    await tracing.shutdown();
    const [received] = receiver.spans('0af7651916cd43dd8448eb211c80319c').filter((x) => x.name === 'ingest readings');
    expect(received).toMatchObject({ service: 'test', parentSpanId: 'b7ad6b7169203331' });
    expect(carried).toContain(received!.spanId);
  });

  it('carries nothing on for a trace the sampler drops', async () => {
    const tracing = createTracing(settings({ sampler: 'parentbased_always_off' }));
    const root = tracing.start('simulate reading', undefined);
    expect(traceparentOf(root)).toBeUndefined();
    // A sampled caller is still followed.
    expect(traceparentOf(tracing.start('ingest readings', PARENT))).toBeDefined();
    await tracing.shutdown();
  });

  it('follows the ratio for root spans', async () => {
    const none = createTracing(settings({ sampler: 'traceidratio', samplerRatio: 0 }));
    const all = createTracing(settings({ sampler: 'traceidratio', samplerRatio: 1 }));
    for (let i = 0; i < 20; i++) {
      expect(traceparentOf(none.start('simulate reading', undefined))).toBeUndefined();
      expect(traceparentOf(all.start('simulate reading', undefined))).toBeDefined();
    }
    await Promise.all([none.shutdown(), all.shutdown()]);
  });
});

describe('an alert’s trace on Redis', () => {
  const alert: OverheatAlert = {
    id: 's-1:2026-01-01T00:00:00.000Z',
    sensorId: 's-1',
    temperature: 90,
    threshold: 80,
    ts: new Date('2026-01-01T00:00:00Z'),
    location: { lat: 1, lon: 2 },
    detectedAt: new Date('2026-01-01T00:00:01Z'),
    position: { partition: 0, offset: 7 },
  };

  it('travels with the payload and comes out beside the alert, not in it', () => {
    const received = deserializeAlert(serializeAlert(alert, PARENT));
    expect(traceOf(received)).toBe(PARENT);
    expect(received).toEqual(alert);
  });

  it('is absent from the payload of an alert not traced', () => {
    const text = serializeAlert(alert);
    expect(JSON.parse(text)).not.toHaveProperty('trace');
    expect(traceOf(deserializeAlert(text))).toBeUndefined();
  });
});
