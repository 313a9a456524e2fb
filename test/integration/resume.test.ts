/**
 * Resuming from an old cursor: a subscriber 2,500 alerts behind (more than the 1,000 that may queue
 * for one subscriber) gets every missed alert, page by page, then live ones that arrived during its
 * replay: each exactly once, in order per sensor, with no SUBSCRIBER_TOO_SLOW. Replica in its own
 * process, with the real graphql-ws client. A cursor from before what retention kept is refused
 * with CURSOR_EXPIRED instead of a silent partial replay.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AlertsCursorDocument,
  IngestReadingsDocument,
  OverheatAlertsDocument,
  type OverheatAlertsSubscription,
} from '../../client/index.js';
import { createLogger } from '../../src/logger.js';
import { connectMongoStore } from '../../src/store/mongoStore.js';
import { isolatedEnv, storeOptionsFrom, uniqueName } from '../support/env.js';
import { spawnReplica, type ReplicaProcess } from '../support/pipeline.js';
import { sentinelReadings, untilSentinelsArrive, withoutSentinels } from '../support/sentinels.js';
import { eventually } from '../support/wait.js';

const env = isolatedEnv('resume');
const sensors = Array.from({ length: 5 }, (_, i) => uniqueName(`resume${i}`));
let replica: ReplicaProcess;
let sent = 0;

async function sendCritical(count: number): Promise<void> {
  const base = Date.now() - 120_000;
  for (let from = 0; from < count; from += 500) {
    const readings = Array.from({ length: Math.min(500, count - from) }, (_, i) => {
      const n = sent + from + i;
      return {
        sensorId: sensors[n % sensors.length]!,
        ts: new Date(base + n).toISOString(),
        temperature: 85 + (n % 10),
        humidity: 30,
        location: { lat: 1, lon: 2 },
      };
    });
    await replica.client.request(IngestReadingsDocument, { readings });
  }
  sent += count;
}

async function alertsRaised(): Promise<number> {
  const text = await (await fetch(replica.url.replace('/graphql', '/metrics'))).text();
  return Number(/^iot_alerts_raised_total (\d+)$/m.exec(text)?.[1] ?? 0);
}

beforeAll(async () => {
  replica = await spawnReplica(env);
});
afterAll(async () => {
  await replica?.stop();
});

describe('resuming far behind', () => {
  it('replays a backlog larger than the subscriber queue, then hands over to live alerts without gap or duplicate', async () => {
    const { alertsCursor } = await replica.client.request(AlertsCursorDocument, {});
    await sendCritical(2500);
    await eventually(alertsRaised, (n) => n >= 2500, { timeoutMs: 60_000, what: '2500 alerts stored' });

    const received: OverheatAlertsSubscription['overheatAlerts'][] = [];
    const errors: unknown[] = [];
    const stop = replica.client.subscribe(
      OverheatAlertsDocument,
      { after: alertsCursor },
      {
        next: (d) => received.push(d.overheatAlerts),
        error: (e) => errors.push(e),
      },
    );
    // Live alerts while the replay runs.
    await sendCritical(500);
    await eventually(
      () => received.length,
      (n) => n >= 3000,
      { timeoutMs: 60_000, what: 'all 3000 alerts' },
    );
    // A sentinel per sensor, after everything: a duplicate would arrive before it.
    const sentinels = sentinelReadings(sensors);
    await replica.client.request(IngestReadingsDocument, { readings: sentinels });
    sent += sentinels.length;
    await untilSentinelsArrive(() => received, sentinels, { timeoutMs: 60_000 });
    stop();
    const missed = withoutSentinels(received, sentinels);

    expect(errors).toEqual([]);
    expect(missed).toHaveLength(3000);
    expect(new Set(missed.map((a) => a.id)).size).toBe(3000);
    for (const sensorId of sensors) {
      const ts = missed.filter((a) => a.sensorId === sensorId).map((a) => Date.parse(a.ts));
      expect(ts).toEqual([...ts].sort((a, b) => a - b));
      expect(ts).toHaveLength(600);
    }
  });

  it('refuses a cursor older than the alerts kept with CURSOR_EXPIRED', async () => {
    const { alertsCursor: old } = await replica.client.request(AlertsCursorDocument, {});
    await sendCritical(50);
    await eventually(alertsRaised, (n) => n >= sent, { timeoutMs: 60_000, what: 'alerts stored' });
    const store = await connectMongoStore({ ...storeOptionsFrom(env), logger: createLogger('silent') });
    try {
      expect(await store.alerts.purgeBefore(env.KAFKA_READINGS_TOPIC!, new Date(Date.now() + 1000))).toBeGreaterThan(0);
    } finally {
      await store.dispose();
    }
    const outcome = await new Promise<unknown>((resolve) => {
      const stop = replica.client.subscribe(
        OverheatAlertsDocument,
        { after: old },
        {
          next: (d) => resolve(d),
          error: (e) => {
            stop();
            resolve(e);
          },
        },
      );
    });
    expect((outcome as { extensions?: { code?: string } }[])[0]?.extensions?.code).toBe('CURSOR_EXPIRED');
  });
});
