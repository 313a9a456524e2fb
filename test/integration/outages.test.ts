/**
 * Outages of Kafka and Redis, on the real services: the API stays up, answers with clear,
 * retryable errors, reports readiness truthfully, and recovers by itself when the service returns.
 * (MongoDB: storeOutage.test.ts; exactness through MongoDB restarts and replica kills: faults.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertsCursorDocument, IngestReadingsDocument, PipelineRequestError } from '../../client/index.js';
import { collectAlerts } from '../support/alertCollector.js';
import { isolatedEnv, uniqueName } from '../support/env.js';
import { startReplica, type InProcessReplica } from '../support/pipeline.js';
import { services } from '../support/services.js';
import { recentReading } from '../support/readings.js';
import { eventually } from '../support/wait.js';

let replica: InProcessReplica;
const readyz = async (): Promise<{ status: number; body: { checks: Record<string, string> } }> => {
  const res = await fetch(replica.app.url().replace('/graphql', '/readyz'));
  return { status: res.status, body: (await res.json()) as { checks: Record<string, string> } };
};

beforeAll(async () => {
  replica = await startReplica(isolatedEnv('outage'));
});
afterAll(async () => {
  await services('start', 'kafka').catch(() => undefined);
  await services('start', 'redis').catch(() => undefined);
  await replica?.stop();
});

describe('when Kafka is down', () => {
  it('ingestReadings fails fast with a retryable KAFKA_UNAVAILABLE, readiness drops, and a retry succeeds once Kafka is back', async () => {
    const sensorId = uniqueName('kafka-outage');
    const hot = recentReading(sensorId, 90);
    await services('stop', 'kafka');
    const error = await replica.client.request(IngestReadingsDocument, { readings: [hot] }).then(
      () => undefined,
      (e: unknown) => e as PipelineRequestError,
    );
    expect(error?.code).toBe('KAFKA_UNAVAILABLE');
    expect(error?.errors[0]?.extensions?.retryable).toBe(true);
    expect((await readyz()).status).toBe(503);
    expect((await fetch(replica.app.url().replace('/graphql', '/healthz'))).status).toBe(200);

    await services('start', 'kafka');
    // The client retries as told; the reading may already be queued: it is stored once all the same.
    await eventually(
      () =>
        replica.client.request(IngestReadingsDocument, { readings: [hot] }).then(
          () => true,
          () => false,
        ),
      Boolean,
      { timeoutMs: 60_000, intervalMs: 1000, what: 'ingest to succeed again' },
    );
    const store = replica.parts.store;
    await eventually(
      () => store.readings.count([sensorId]),
      (n) => n >= 1,
      { timeoutMs: 60_000, what: 'the reading stored' },
    );
    await eventually(
      async () => (await readyz()).status,
      (s) => s === 200,
      { timeoutMs: 30_000, what: 'ready again' },
    );
    // The alert path is its own consumer group: it catches up on its own schedule.
    await eventually(
      () => store.alerts.count([sensorId]),
      (n) => n >= 1,
      { timeoutMs: 60_000, what: 'the alert stored' },
    );
    expect(await store.readings.count([sensorId])).toBe(1);
    expect(await store.alerts.count([sensorId])).toBe(1);
  }, 180_000);
});

describe('when Redis is down', () => {
  it('keeps storing alerts, stays ready, and the subscriber gets what it missed once Redis is back', async () => {
    const sensorId = uniqueName('redis-outage');
    const { alertsCursor } = await replica.client.request(AlertsCursorDocument, {});
    const subscriber = collectAlerts(replica.client, { sensorIds: [sensorId], after: alertsCursor });
    await services('stop', 'redis');

    await replica.client.request(IngestReadingsDocument, {
      readings: [recentReading(sensorId, 85, 0), recentReading(sensorId, 86, 1)],
    });
    const store = replica.parts.store;
    await eventually(
      () => store.alerts.count([sensorId]),
      (n) => n === 2,
      { what: 'alerts stored while Redis is down' },
    );
    const during = await readyz();
    expect(during.status).toBe(200);
    expect(during.body.checks.redis).toBe('degraded');

    await services('start', 'redis');
    await eventually(
      () => subscriber.alerts.length,
      (n) => n >= 2,
      { timeoutMs: 30_000, what: 'missed alerts delivered' },
    );
    expect(subscriber.alerts.map((a) => a.temperature)).toEqual([85, 86]);
    expect(subscriber.errors).toEqual([]);
    subscriber.stop();
  }, 120_000);
});
