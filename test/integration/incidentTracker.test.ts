/**
 * The incident tracker against the real store: what a replica that takes a partition over sees.
 * A batch replayed after a crash (the consumer's offsets lag its stored state) changes nothing;
 * a threshold judges the readings after its command, on the replica that loads it too.
 */
import { MongoClient, type Db } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reading } from '../../src/domain/reading.js';
import { ensureSqliteIdIndexes } from '../../src/store/ferretSqlite.js';
import {
  INCIDENTS,
  INCIDENT_PARTITIONS,
  SENSOR_LIMITS,
  createIncidentStore,
  type IncidentStore,
} from '../../src/store/incidentStore.js';
import { createIncidentTracker, type BatchItem, type IncidentTracker } from '../../src/stream/incidentTracker.js';
import { ferretSqliteDir, uniqueName } from '../support/env.js';

let client: MongoClient;
let db: Db;
let store: IncidentStore;
const T0 = Date.parse('2026-11-28T08:00:00Z');

beforeAll(async () => {
  client = await new MongoClient('mongodb://127.0.0.1:27017').connect();
  db = client.db(uniqueName('tracker').replace(/-/g, '_'));
  await ensureSqliteIdIndexes(db, ferretSqliteDir(), [INCIDENTS, SENSOR_LIMITS, INCIDENT_PARTITIONS]);
  store = createIncidentStore(db);
});
afterAll(async () => {
  await db?.dropDatabase().catch(() => undefined);
  await client?.close();
});

const replica = (): IncidentTracker =>
  createIncidentTracker({
    store,
    topic: 't',
    defaults: { thresholdC: 80, hysteresisC: 2 },
    rule: { clearReadings: 3, clearAfterMs: 0 },
    refreshMs: 0,
  });

const reading = (sensorId: string, second: number, temperature: number): Reading => ({
  sensorId,
  ts: new Date(T0 + second * 1000),
  temperature,
  humidity: 50,
  location: { lat: 1, lon: 2 },
});

/** Offsets 0..n-1 of one partition: a hot spell of `hot` readings, then cool ones. */
const stream = (sensorId: string, hot: number, cool: number): BatchItem[] =>
  Array.from({ length: hot + cool }, (_, i) => ({ offset: i, reading: reading(sensorId, i, i < hot ? 85 + i : 60) }));

/** Each test its own partition: the stored state is per partition. */
let nextPartition = 0;

async function run(tracker: IncidentTracker, items: readonly BatchItem[], partition: number): Promise<void> {
  const batch = await tracker.process(partition, items, items.at(-1)!.offset);
  await batch.store();
  await batch.commit();
}

describe('the incident tracker', () => {
  it('counts each reading once when another replica replays part of what was applied', async () => {
    const sensorId = uniqueName('press');
    const items = stream(sensorId, 10, 5);
    const p = nextPartition++;
    await run(replica(), items.slice(0, 8), p); // applied and stored up to offset 7
    // The partition moves; the new owner resumes from an older committed offset (3) and goes on.
    const next = replica();
    await run(next, items.slice(3, 12), p);
    await run(next, items.slice(12), p);
    const [incident] = (await store.page({ sensorIds: [sensorId], first: 10 })).items;
    expect(incident).toMatchObject({ status: 'CLEARED', criticalReadings: 10, peakC: 94 });
    expect((await store.page({ sensorIds: [sensorId], first: 10 })).items).toHaveLength(1);
  });

  it('judges readings after a threshold command by it, and a replay by the same versions', async () => {
    const sensorId = uniqueName('oven');
    const items: BatchItem[] = [
      { offset: 0, reading: reading(sensorId, 0, 50) },
      {
        offset: 1,
        command: {
          kind: 'threshold',
          sensorId,
          thresholdC: 45,
          hysteresisC: 1,
          issuedBy: 'test',
          issuedAt: new Date(T0),
        },
      },
      { offset: 2, reading: reading(sensorId, 2, 50) },
    ];
    const p = nextPartition++;
    const first = await replica().process(p, items, 2);
    expect(first.judged.map((j) => j.limits.thresholdC)).toEqual([80, 45]);
    await first.store();
    await first.commit();
    // Another replica replays the whole batch from the stored state: the same judgement.
    const again = await replica().process(p, items, 2);
    expect(again.judged.map((j) => j.limits.thresholdC)).toEqual([80, 45]);
    expect(again.events).toEqual([]);
    expect((await store.limitsOf([sensorId])).get(sensorId)).toMatchObject({ thresholdC: 45, hysteresisC: 1 });
  });

  it('judges a batch by the one before it while that one is still being stored, and stores them as one', async () => {
    const sensorId = uniqueName('boiler');
    const p = nextPartition++;
    const items = stream(sensorId, 3, 0);
    const tracker = replica();
    const first = await tracker.process(p, items.slice(0, 1), 0);
    const second = await tracker.process(p, items.slice(1), 2); // the first is not stored yet
    expect(first.events.map((e) => e.change)).toEqual(['OPENED']);
    expect(second.events.map((e) => e.change)).toEqual(['UPDATED', 'UPDATED']);
    const both = tracker.combine([first, second]);
    await both.store();
    await both.commit();
    // Another replica takes over from what was stored: the incident as the second batch left it.
    const next = replica();
    const replayed = await next.process(p, items, 2);
    expect(replayed.events).toEqual([]);
    expect(next.running()).toBe(1);
    const { items: stored } = await store.page({ sensorIds: [sensorId], first: 10 });
    expect(stored).toMatchObject([{ criticalReadings: 3, peakC: 87 }]);
  });

  it('leaves nothing in the store for a batch given up before it was stored, and forgets it when told', async () => {
    const sensorId = uniqueName('boiler');
    const tracker = replica();
    const p = nextPartition++;
    await tracker.process(p, stream(sensorId, 2, 0), 1); // never persisted
    expect(tracker.running()).toBe(1); // what the next batch is judged by
    expect(await store.page({ sensorIds: [sensorId], first: 10 })).toMatchObject({ items: [] });
    tracker.forget([p]);
    expect(tracker.running()).toBe(0);
    // Taken up again from the store: the batch makes its changes again.
    const again = await tracker.process(p, stream(sensorId, 2, 0), 1);
    expect(again.events.map((e) => e.change)).toEqual(['OPENED', 'UPDATED']);
  });
});
