/**
 * OpenTelemetry tracing, end to end on the real services: one critical reading ingested with a
 * W3C `traceparent` is followed, in that one trace, from the ingestion through Kafka, the judging,
 * the Redis publish and the delivery to a graphql-ws subscriber, each span the child of the one
 * before; the store write of its alert joins the trace too, and the alert's log line names the
 * trace. A simulated sensor's reading begins a trace of its own. The spans are received by an
 * OTLP/HTTP receiver in the test process; the replica's log lines by a stream of the test's.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startAppWithParts, type App } from '../../src/app.js';
import {
  AlertsCursorDocument,
  createPipelineClient,
  SpawnSensorsDocument,
  StopSensorsDocument,
  type PipelineClient,
} from '../../client/index.js';
import { collectAlerts } from '../support/alertCollector.js';
import { configFrom, isolatedEnv, uniqueName } from '../support/env.js';
import { startOtlpReceiver, traceTree, type OtlpReceiver, type ReceivedSpan } from '../support/otlpReceiver.js';
import { eventually } from '../support/wait.js';

let receiver: OtlpReceiver;
let app: App;
let client: PipelineClient;
/** What the replica logged at info and above, parsed. */
const logLines: Record<string, unknown>[] = [];

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  const config = configFrom(
    isolatedEnv('tracing', { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: 'iot-api-under-test' }),
  );
  const logs = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  ({ app } = await startAppWithParts(config, pino({ level: 'info' }, logs)));
  client = createPipelineClient(app.url(), { retryAttempts: 0 });
});
afterAll(async () => {
  await client?.dispose();
  await app?.stop('test finished');
  await receiver?.close();
});

const INGEST = `mutation Ingest($readings: [ReadingInput!]!) { ingestReadings(readings: $readings) { accepted } }`;

/** Ingests one reading over HTTP, with a `traceparent` header when given. */
async function ingestOne(sensorId: string, temperature: number, traceparent?: string): Promise<unknown> {
  const res = await fetch(app.url(), {
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
    const { alertsCursor } = await client.request(AlertsCursorDocument, {});
    const subscriber = collectAlerts(client, { sensorIds: [sensorId], after: alertsCursor });

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

    // The alert's log line names its trace.
    const line = logLines.find((l) => l.msg === 'overheat alert raised' && l.alertId === subscriber.alerts[1]!.id);
    expect(line).toMatchObject({ traceId, sensorId });
  });

  it('is begun by a simulated sensor, and followed to the subscriber', async () => {
    const { spawnSensors } = await client.request(SpawnSensorsDocument, {
      input: { count: 1, scenario: 'OVERHEAT', intervalMs: 200, seed: 11 },
    });
    const sensorId = spawnSensors.sensors[0]!.id;
    const subscriber = collectAlerts(client, { sensorIds: [sensorId] });
    try {
      // A trace that begins at the sensor and ends at the subscriber (the first alerts may come
      // from the store, as the subscription catches up: those have no delivery span).
      const delivered = (): string[] => {
        const simulated = new Set(
          receiver
            .spans()
            .filter((x) => x.name === 'simulate reading' && x.attributes['sensor.id'] === sensorId)
            .map((x) => x.traceId),
        );
        return receiver
          .spans()
          .filter((x) => x.name === 'deliver alert' && simulated.has(x.traceId))
          .map((x) => x.traceId);
      };
      const [traceId] = await eventually(delivered, (ids) => ids.length > 0, {
        what: 'a simulated reading traced to its subscriber',
      });
      const names = receiver.spans(traceId).map((x) => x.name);
      for (const name of ['simulate reading', 'produce readings', 'consume and judge', 'publish alert'])
        expect(names, traceTree(receiver.spans(traceId))).toContain(name);
      const root = receiver.spans(traceId).find((x) => x.name === 'simulate reading')!;
      expect(root.parentSpanId).toBeUndefined();
      expect(subscriber.errors).toEqual([]);
    } finally {
      subscriber.stop();
      await client.request(StopSensorsDocument, { ids: [sensorId] });
    }
  });
});
