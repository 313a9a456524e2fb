/**
 * OpenTelemetry tracing, end to end on the real services: one critical reading ingested with a
 * W3C `traceparent` is followed, in that one trace, from the ingestion through Kafka, the judging,
 * the Redis publish and the delivery to a graphql-ws subscriber, each span the child of the one
 * before; the store write of its alert joins the trace too. The spans are received by an OTLP/HTTP
 * receiver in the test process.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertsCursorDocument } from '../../client/index.js';
import { collectAlerts } from '../support/alertCollector.js';
import { isolatedEnv, uniqueName } from '../support/env.js';
import { startOtlpReceiver, traceTree, type OtlpReceiver, type ReceivedSpan } from '../support/otlpReceiver.js';
import { startReplica, type InProcessReplica } from '../support/pipeline.js';
import { eventually } from '../support/wait.js';

let receiver: OtlpReceiver;
let replica: InProcessReplica;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  replica = await startReplica(
    isolatedEnv('tracing', { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: 'iot-api-under-test' }),
  );
});
afterAll(async () => {
  await replica?.stop();
  await receiver?.close();
});

const INGEST = `mutation Ingest($readings: [ReadingInput!]!) { ingestReadings(readings: $readings) { accepted } }`;

/** Ingests one reading over HTTP, with a `traceparent` header when given. */
async function ingestOne(sensorId: string, temperature: number, traceparent?: string): Promise<unknown> {
  const res = await fetch(replica.app.url(), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(traceparent ? { traceparent } : {}) },
    body: JSON.stringify({
      query: INGEST,
      variables: {
        readings: [{ sensorId, ts: new Date().toISOString(), temperature, humidity: 40, location: { lat: 1, lon: 2 } }],
      },
    }),
  });
  return res.json();
}

describe('a traced reading', () => {
  it('is followed in one trace from ingestion to the subscriber: ingest, produce, judge, publish, deliver', async () => {
    const sensorId = uniqueName('traced');
    const { alertsCursor } = await replica.client.request(AlertsCursorDocument, {});
    const subscriber = collectAlerts(replica.client, { sensorIds: [sensorId], after: alertsCursor });

    // A first alert of the sensor, not traced by the caller: once the subscriber has it, the
    // subscription is live on its chain, and the next alert comes straight from Redis (one caught
    // up on from the store carries no trace: the stored alert has none).
    const warmUp = await ingestOne(sensorId, 91);
    expect(warmUp).toEqual({ data: { ingestReadings: { accepted: 1 } } });
    await eventually(
      () => subscriber.alerts.length,
      (n) => n === 1,
      { what: 'the first alert at the subscriber' },
    );

    const traceId = randomBytes(16).toString('hex');
    const callerSpanId = randomBytes(8).toString('hex');
    const traced = await ingestOne(sensorId, 93.5, `00-${traceId}-${callerSpanId}-01`);
    expect(traced).toEqual({ data: { ingestReadings: { accepted: 1 } } });
    await eventually(
      () => subscriber.alerts.length,
      (n) => n === 2,
      { what: 'the traced alert at the subscriber' },
    );
    subscriber.stop();

    // Spans leave in batches: wait until the last ones of the path have arrived.
    await eventually(
      () => receiver.spans(traceId).map((x) => x.name),
      (names) => names.includes('deliver alert') && names.includes('store alerts'),
      { what: 'the spans of the whole path', timeoutMs: 30_000 },
    );
    const spans = receiver.spans(traceId);
    if (process.env.TEST_PRINT_TRACE) process.stdout.write(`\n${traceTree(spans)}\n`);

    const one = (name: string): ReceivedSpan => {
      const found = spans.filter((s) => s.name === name);
      expect(found, `${name} in\n${traceTree(spans)}`).toHaveLength(1);
      return found[0]!;
    };
    const ingest = one('ingest readings');
    const produce = one('produce readings');
    const judge = one('consume and judge');
    const publish = one('publish alert');
    const deliver = one('deliver alert');
    const store = one('store alerts');
    expect(ingest.parentSpanId).toBe(callerSpanId);
    expect(produce.parentSpanId).toBe(ingest.spanId);
    expect(judge.parentSpanId).toBe(produce.spanId);
    expect(publish.parentSpanId).toBe(judge.spanId);
    expect(deliver.parentSpanId).toBe(publish.spanId);
    expect(store.parentSpanId).toBe(judge.spanId);
    for (const s of spans) expect(s.service).toBe('iot-api-under-test');
    // Kinds: SERVER 2, PRODUCER 4, CONSUMER 5 (OTLP's numbering).
    expect([ingest.kind, produce.kind, judge.kind, publish.kind, deliver.kind]).toEqual([2, 4, 5, 4, 5]);
    expect(judge.attributes['alert.id']).toBe(subscriber.alerts[1]!.id);
    // Each begins once the one before it did.
    const chain = [ingest, produce, judge, publish, deliver];
    for (let i = 1; i < chain.length; i++) expect(chain[i]!.startNs >= chain[i - 1]!.startNs).toBe(true);
    expect(receiver.refused).toEqual([]);
  });
});
