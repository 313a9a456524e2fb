/**
 * A MongoDB outage, on the real services, with a replica of its own: alerts are published before
 * they are stored, so a new alert still reaches a subscriber live while MongoDB is down, and is
 * stored once it is back. (Exactness through MongoDB restarts and replica kills: faults.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestReadingsDocument } from '../../client/index.js';
import { collectAlerts } from '../support/alertCollector.js';
import { isolatedEnv, uniqueName } from '../support/env.js';
import { startReplica, type InProcessReplica } from '../support/pipeline.js';
import { services } from '../support/services.js';
import { recentReading } from '../support/readings.js';
import { eventually } from '../support/wait.js';

let replica: InProcessReplica;

beforeAll(async () => {
  replica = await startReplica(isolatedEnv('storeoutage'));
});
afterAll(async () => {
  await services('start', 'ferretdb').catch(() => undefined);
  await replica?.stop();
});

describe('when MongoDB is down', () => {
  it('still delivers a new alert live at once, and stores it once MongoDB is back', async () => {
    const sensorId = uniqueName('store-outage');
    const subscriber = collectAlerts(replica.client, {});
    const store = replica.parts.store;
    // A first alert of the sensor: its partition's state is loaded and its alerts go out early.
    await replica.client.request(IngestReadingsDocument, { readings: [recentReading(sensorId, 85, -500)] });
    await eventually(
      () => store.alerts.count([sensorId]),
      (n) => n === 1,
      { what: 'the first alert stored' },
    );
    await eventually(
      () => subscriber.alerts.filter((a) => a.sensorId === sensorId).length,
      (n) => n === 1,
      { what: 'the first alert delivered' },
    );

    await services('stop', 'ferretdb');
    try {
      await replica.client.request(IngestReadingsDocument, { readings: [recentReading(sensorId, 91, 0)] });
      await eventually(
        () => subscriber.alerts.filter((a) => a.sensorId === sensorId).length,
        (n) => n === 2,
        { timeoutMs: 20_000, what: 'the alert delivered while MongoDB is down' },
      );
    } finally {
      await services('start', 'ferretdb');
    }
    expect(subscriber.alerts.filter((a) => a.sensorId === sensorId).map((a) => a.temperature)).toEqual([85, 91]);
    await eventually(
      () => store.alerts.count([sensorId]).catch(() => -1),
      (n) => n === 2,
      { timeoutMs: 90_000, intervalMs: 1000, what: 'the alert stored once MongoDB is back' },
    );
    expect(subscriber.errors).toEqual([]);
    subscriber.stop();
  }, 180_000);
});
