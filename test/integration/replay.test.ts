/**
 * The REPLAY scenario on the shipped NAB machine-temperature series (real failure data):
 *  - the dataset loads as documented (°F converted to °C, the four labelled failure windows);
 *  - a replayed sensor sends one sample per reading, in the file's order, from the chosen time;
 *  - with a per-sensor threshold of 38 °C, its incidents are exactly those the lifecycle gives for
 *    the samples sent, and they open in (or within a day before) the labelled failure windows of
 *    the stretch replayed;
 *  - bad replay input gets BAD_USER_INPUT naming the field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  IncidentsDocument,
  PipelineRequestError,
  SetThresholdDocument,
  SpawnSensorsDocument,
  StopSensorsDocument,
} from '../../client/index.js';
import { Dataset } from '../../src/domain/sensor.js';
import { loadDataset, sampleIndexAt } from '../../src/simulator/datasets.js';
import { isolatedEnv } from '../support/env.js';
import { lifecycleOf } from '../support/incidentModel.js';
import { startReplica, type InProcessReplica } from '../support/pipeline.js';
import { historyCaughtUp } from '../support/consumerLag.js';
import { eventually } from '../support/wait.js';

const series = loadDataset(Dataset.NAB_MACHINE_TEMPERATURE);
const DAY = 86_400_000;
const env = isolatedEnv('replay', { INCIDENT_REFRESH_INTERVAL: '0s', LIMIT_MIN_INTERVAL_MS: '10' });
let replica: InProcessReplica;

beforeAll(async () => {
  replica = await startReplica(env);
});
afterAll(async () => {
  await replica?.stop();
});

describe('the NAB machine-temperature dataset', () => {
  it('loads in °C with its four labelled failure windows', () => {
    expect(series.times).toHaveLength(22_695);
    expect(series.times[0]).toEqual(new Date('2013-12-02T21:15:00Z'));
    expect(Math.max(...series.temperaturesC)).toBeCloseTo(42.51, 1);
    expect(Math.min(...series.temperaturesC)).toBeCloseTo(-16.62, 1);
    expect(series.temperaturesC[0]).toBeCloseTo(((73.96732207 - 32) * 5) / 9, 2);
    expect(series.labelledWindows.map((w) => w.start.toISOString().slice(0, 10))).toEqual([
      '2013-12-10',
      '2013-12-15',
      '2014-01-27',
      '2014-02-07',
    ]);
  });
});

describe('a REPLAY sensor', () => {
  it('opens incidents where the machine failed, exactly as the lifecycle gives for what it sent', async () => {
    const from = new Date('2013-12-10T00:00:00Z');
    const fromIndex = sampleIndexAt(series, from);
    // 30,000 x: one 5-minute sample every 10 ms, eight days of the machine in about 25 s.
    const { spawnSensors } = await replica.client.request(SpawnSensorsDocument, {
      input: {
        count: 1,
        scenario: 'REPLAY',
        replay: { dataset: 'NAB_MACHINE_TEMPERATURE', speedup: 30_000, from: from.toISOString() },
      },
    });
    const sensor = spawnSensors.sensors[0]!;
    expect(sensor).toMatchObject({
      intervalMs: 10,
      replay: { dataset: 'NAB_MACHINE_TEMPERATURE', speedup: 30_000, from: from.toISOString() },
    });
    // The first sample above 38 °C is 340 samples in: the threshold is in force long before.
    await replica.client.request(SetThresholdDocument, { sensorIds: [sensor.id], thresholdC: 38, hysteresisC: 2 });

    const eightDays = (8 * DAY) / series.spacingMs;
    const stored = () => replica.parts.store.readings.count([sensor.id]);
    await eventually(stored, (n) => n >= eightDays, { timeoutMs: 120_000, what: 'eight days replayed' });
    await replica.client.request(StopSensorsDocument, { ids: [sensor.id] });
    // Everything sent is stored once the sensor runs no more, the producer has nothing left to
    // send, and the history group has committed all that is in the topic.
    await eventually(
      () => replica.parts.fleet.localCount() + replica.parts.producer.pending(),
      (n) => n === 0,
      { what: 'the sensor stopped, and its readings sent' },
    );
    await historyCaughtUp(env);
    const sent = await stored();

    // What the lifecycle gives for the samples sent (fromIndex .. fromIndex + sent - 1). Reading k is
    // stamped k ms, so an incident's opening reading maps back to its original time.
    const samples = Array.from({ length: sent }, (_, k) => ({
      sensorId: sensor.id,
      ts: new Date(k),
      temperature: series.temperaturesC[fromIndex + k]!,
      humidity: 45,
      location: { lat: 0, lon: 0 },
    }));
    const expected = lifecycleOf(
      samples,
      { thresholdC: 38, hysteresisC: 2 },
      { clearReadings: 3, clearAfterMs: 0 },
    ).map((i) => ({ ...i, openedAt: series.times[fromIndex + i.openedAt.getTime()]! }));
    const got = await eventually(
      async () =>
        (await replica.client.request(IncidentsDocument, { sensorId: sensor.id, first: 100 })).incidents.nodes,
      (list) => list.length === expected.length && list[0]?.criticalReadings === expected.at(-1)?.criticalReadings,
      { timeoutMs: 30_000, what: `${expected.length} incidents` },
    );
    const shape = (i: { status: string; peakC: number; criticalReadings: number }) => ({
      status: i.status,
      peakC: i.peakC,
      criticalReadings: i.criticalReadings,
    });
    expect([...got].reverse().map(shape)).toEqual(expected.map(shape));

    // The stretch replayed holds the first two labelled failures; an incident opens near each.
    for (const w of series.labelledWindows.slice(0, 2)) {
      const near = expected.filter((i) => i.openedAt >= new Date(w.start.getTime() - DAY) && i.openedAt <= w.end);
      expect(near.length, `an incident near the failure of ${w.start.toISOString()}`).toBeGreaterThan(0);
    }
  }, 180_000);

  it('refuses bad replay input with the field at fault', async () => {
    const spawn = async (input: Record<string, unknown>): Promise<unknown> => {
      try {
        await replica.client.request(SpawnSensorsDocument, { input: { count: 1, ...input } as never });
        return undefined;
      } catch (err) {
        return (err as PipelineRequestError).errors[0]?.extensions?.field;
      }
    };
    const replay = { dataset: 'NAB_MACHINE_TEMPERATURE', speedup: 100 };
    expect(await spawn({ scenario: 'REPLAY' })).toBe('input.replay');
    expect(await spawn({ scenario: 'NORMAL', replay })).toBe('input.replay');
    expect(await spawn({ scenario: 'REPLAY', replay, intervalMs: 50 })).toBe('input.intervalMs');
    expect(await spawn({ scenario: 'REPLAY', replay: { ...replay, speedup: 0 } })).toBe('input.replay.speedup');
    expect(await spawn({ scenario: 'REPLAY', replay: { ...replay, from: '2020-01-01T00:00:00Z' } })).toBe(
      'input.replay.from',
    );
  });
});
