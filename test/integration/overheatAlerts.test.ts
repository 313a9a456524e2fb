/**
 * (a) Overheat alerts, end to end on the real services: a simulated OVERHEAT sensor spawned through
 * the API raises alerts that reach a graphql-ws subscriber; a subscriber filtered on another sensor gets none.
 * (d) The threshold is strict: 79.9 and 80.0 °C raise nothing, 80.1 °C raises exactly one alert.
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import fc from 'fast-check';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AlertHistoryDocument,
  AlertsCursorDocument,
  IngestReadingsDocument,
  OverheatAlertsDocument,
  PipelineRequestError,
  ReadingHistoryDocument,
  SpawnSensorsDocument,
  StopSensorsDocument,
} from '../../client/index.js';
import { collectAlerts } from '../support/alertCollector.js';
import { isolatedEnv, uniqueName } from '../support/env.js';
import { startReplica, type InProcessReplica } from '../support/pipeline.js';
import { eventually } from '../support/wait.js';

let replica: InProcessReplica;

beforeAll(async () => {
  replica = await startReplica(isolatedEnv('alerts'));
});
afterAll(async () => {
  await replica?.stop();
});

describe('overheatAlerts subscription', () => {
  it('delivers alerts from a spawned OVERHEAT sensor, and nothing to a subscriber filtered on another sensor', async () => {
    // Subscribed from "now" by cursor: nothing raised from here on can be missed, however long the
    // subscriptions take to start.
    const { alertsCursor } = await replica.client.request(AlertsCursorDocument, {});
    const otherSensor = uniqueName('other');
    const everything = collectAlerts(replica.client, { after: alertsCursor });
    const otherSensorOnly = collectAlerts(replica.client, { sensorIds: [otherSensor], after: alertsCursor });

    const { spawnSensors } = await replica.client.request(SpawnSensorsDocument, {
      input: { count: 1, scenario: 'OVERHEAT', intervalMs: 100, seed: 7 },
    });
    const sensorId = spawnSensors.sensors[0]!.id;

    await eventually(
      () => everything.alerts.filter((a) => a.sensorId === sensorId).length,
      (n) => n >= 5,
      { what: 'five alerts' },
    );
    await replica.client.request(StopSensorsDocument, { ids: [sensorId] });

    const received = everything.alerts.filter((a) => a.sensorId === sensorId);
    for (const alert of received) {
      expect(alert.temperature).toBeGreaterThan(80);
      expect(alert.threshold).toBe(80);
      expect(alert.cursor).toEqual(expect.any(String));
    }
    expect(new Set(received.map((a) => a.id)).size).toBe(received.length);
    expect(everything.errors).toEqual([]);

    // Every delivered alert is also stored (alerts surely new are delivered before they are stored).
    const storedIds = await eventually(
      async () => {
        const stored = await replica.client.request(AlertHistoryDocument, { sensorId, first: 1000 });
        return new Set(stored.alerts.nodes.map((a) => a.id));
      },
      (ids) => received.every((a) => ids.has(a.id)),
      { what: 'every delivered alert to be stored' },
    );
    for (const alert of received) expect(storedIds.has(alert.id)).toBe(true);

    // A critical reading of the other sensor, raised after the overheat ones: once the filtered
    // subscriber has it, it has had every chance to (wrongly) get the others; it got only this one.
    await replica.client.request(IngestReadingsDocument, {
      readings: [
        {
          sensorId: otherSensor,
          ts: new Date().toISOString(),
          temperature: 95,
          humidity: 40,
          location: { lat: 1, lon: 2 },
        },
      ],
    });
    await eventually(
      () => otherSensorOnly.alerts.length,
      (n) => n >= 1,
      { what: "the other sensor's alert" },
    );
    expect(otherSensorOnly.alerts.map((a) => a.sensorId)).toEqual([otherSensor]);
    expect(otherSensorOnly.errors).toEqual([]);
    everything.stop();
    otherSensorOnly.stop();
  });

  it('raises exactly one alert for 79.9, 80.0 and 80.1 °C: the threshold is strictly above 80', async () => {
    const sensorId = uniqueName('boundary');
    const { alertsCursor } = await replica.client.request(AlertsCursorDocument, {});
    const subscriber = collectAlerts(replica.client, { sensorIds: [sensorId], after: alertsCursor });
    const base = Date.now() - 10_000;
    // 90.0 last, same sensor (so same partition, in order): once it arrives, the three before it
    // have been judged.
    const readings = [79.9, 80.0, 80.1, 90.0].map((temperature, i) => ({
      sensorId,
      ts: new Date(base + i * 1000).toISOString(),
      temperature,
      humidity: 40,
      location: { lat: 52.5, lon: 13.4 },
    }));
    const { ingestReadings } = await replica.client.request(IngestReadingsDocument, { readings });
    expect(ingestReadings.accepted).toBe(4);

    await eventually(
      async () => (await replica.client.request(ReadingHistoryDocument, { sensorId, first: 10 })).readings.edges.length,
      (n) => n === 4,
      { what: 'four stored readings' },
    );
    await eventually(() => subscriber.alerts.some((a) => a.temperature === 90), Boolean, { what: 'the 90.0 alert' });

    expect(subscriber.alerts.map((a) => a.temperature)).toEqual([80.1, 90]);
    const stored = await replica.client.request(AlertHistoryDocument, { sensorId, first: 10 });
    expect(stored.alerts.nodes.map((a) => a.temperature).sort()).toEqual([80.1, 90]);
    subscriber.stop();
  });

  it('delivers the same alert whether the fast path or graphql-js executes the selection', async () => {
    const sensorId = uniqueName('paths');
    const { alertsCursor } = await replica.client.request(AlertsCursorDocument, {});
    const selection = '__typename id sensorId temperature threshold ts detectedAt cursor where: location { lat lon }';
    const fast = parse(
      `subscription ($ids: [ID!], $after: String) { hot: overheatAlerts(sensorIds: $ids, after: $after) { ${selection} } }`,
    );
    const regular = parse(
      `subscription ($ids: [ID!], $after: String) { hot: overheatAlerts(sensorIds: $ids, after: $after) { ...A } } fragment A on OverheatAlert { ${selection} }`,
    );
    const got: Record<string, unknown[]> = { fast: [], regular: [] };
    const stops = Object.entries({ fast, regular }).map(([name, doc]) =>
      replica.client.subscribe(
        doc as TypedDocumentNode<Record<string, unknown>, Record<string, unknown>>,
        { ids: [sensorId], after: alertsCursor },
        {
          next: (data) => got[name]!.push(data),
        },
      ),
    );
    await replica.client.request(IngestReadingsDocument, {
      readings: [
        {
          sensorId,
          ts: new Date(Date.now() - 100).toISOString(),
          temperature: 95.25,
          humidity: 12.5,
          location: { lat: -33.9, lon: 151.2 },
        },
      ],
    });
    await eventually(
      () => got.fast!.length + got.regular!.length,
      (n) => n === 2,
      { what: 'one alert on each path' },
    );
    expect(got.fast).toEqual(got.regular);
    expect(got.fast![0]).toMatchObject({
      hot: { __typename: 'OverheatAlert', sensorId, temperature: 95.25, where: { lat: -33.9, lon: 151.2 } },
    });
    for (const stop of stops) stop();
  });

  it('writes the same frames on the direct path as graphql-js, for random selections (order, aliases, cursor anywhere)', async () => {
    const fieldsArb = fc
      .shuffledSubarray(
        [
          '__typename',
          'id',
          'sensorId',
          'temperature',
          'threshold',
          'ts',
          'detectedAt',
          'cursor',
          'location { lat lon }',
          'location { lon }',
          'spot: location { __typename lat }',
          'c2: cursor',
          'deg: temperature',
        ],
        { minLength: 1 },
      )
      .filter((fs) => new Set(fs.map((f) => (f.includes(':') ? f.split(':')[0] : f.split(' ')[0]))).size === fs.length);
    const selections = fc.sample(fieldsArb, { numRuns: 6, seed: 42 }).map((fs) => fs.join(' '));
    for (const selection of selections) {
      const sensorId = uniqueName('sel');
      const { alertsCursor } = await replica.client.request(AlertsCursorDocument, {});
      const direct = parse(
        `subscription ($ids: [ID!], $after: String) { a: overheatAlerts(sensorIds: $ids, after: $after) { ${selection} } }`,
      );
      const regular = parse(
        `subscription ($ids: [ID!], $after: String) { a: overheatAlerts(sensorIds: $ids, after: $after) { ...F } } fragment F on OverheatAlert { ${selection} }`,
      );
      const got: Record<string, unknown[]> = { direct: [], regular: [] };
      const stops = Object.entries({ direct, regular }).map(([name, doc]) =>
        replica.client.subscribe(
          doc as TypedDocumentNode<Record<string, unknown>, Record<string, unknown>>,
          { ids: [sensorId], after: alertsCursor },
          { next: (data) => got[name]!.push(data) },
        ),
      );
      await replica.client.request(IngestReadingsDocument, {
        readings: [81, 82.5].map((t, i) => ({
          sensorId,
          ts: new Date(Date.now() - 100 + i).toISOString(),
          temperature: t,
          humidity: 40,
          location: { lat: 10.5, lon: -3.25 },
        })),
      });
      await eventually(
        () => got.direct!.length + got.regular!.length,
        (n) => n === 4,
        { what: `two alerts on each path for { ${selection} }` },
      );
      expect(JSON.stringify(got.direct), selection).toBe(JSON.stringify(got.regular));
      for (const stop of stops) stop();
    }
  });

  it('completes open subscriptions when the replica ends them (graphql-ws client sees complete)', async () => {
    const sensorId = uniqueName('complete');
    let received = 0;
    let completed = false;
    const stop = replica.client.subscribe(
      OverheatAlertsDocument,
      { sensorIds: [sensorId] },
      { next: () => received++, complete: () => (completed = true) },
    );
    // Once an alert arrived, the subscription is surely open on the server.
    await eventually(
      async () => {
        await replica.client.request(IngestReadingsDocument, {
          readings: [
            {
              sensorId,
              ts: new Date(Date.now() - received - 1).toISOString(),
              temperature: 90,
              humidity: 40,
              location: { lat: 1, lon: 2 },
            },
          ],
        });
        return received;
      },
      (n) => n > 0,
      { what: 'an alert on the new subscription' },
    );
    replica.parts.feed.closeAll();
    await eventually(
      () => completed,
      (c) => c,
      { what: 'complete received' },
    );
    stop();
  });

  it('refuses a subscription cursor it did not issue, with BAD_USER_INPUT', async () => {
    const subscriber = collectAlerts(replica.client, { after: 'not-a-cursor' });
    await eventually(
      () => subscriber.errors.length,
      (n) => n === 1,
      { what: 'the error' },
    );
    expect((subscriber.errors[0] as PipelineRequestError).code).toBe('BAD_USER_INPUT');
    subscriber.stop();
  });
});
