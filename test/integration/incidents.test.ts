/**
 * Incidents and per-sensor thresholds through the public API, on the real services:
 *  - a hot sensor opens one incident, updated while it stays hot, cleared with hysteresis;
 *  - acknowledging records who, when and the note, and does not clear it;
 *  - a threshold set with setThreshold judges every reading sent after the mutation returned,
 *    alerts included, and only that sensor's;
 *  - incidentUpdates delivers every change live, and a resume from a cursor gets exactly the
 *    changes after it, once each, then live ones;
 *  - bad input gets a clear error code.
 * (The fault suite checks that incidents stay exact under crashes and rebalances.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AcknowledgeIncidentDocument,
  AlertHistoryDocument,
  AlertsCursorDocument,
  IncidentUpdatesDocument,
  IncidentsDocument,
  type IncidentUpdatesSubscription,
  IngestReadingsDocument,
  PipelineRequestError,
  SensorThresholdsDocument,
  SetThresholdDocument,
  type IncidentsQuery,
} from '../../client/index.js';
import { isolatedEnv, uniqueName } from '../support/env.js';
import { startReplica, type InProcessReplica } from '../support/pipeline.js';
import { eventually } from '../support/wait.js';

let replica: InProcessReplica;
const start = Date.now() - 600_000;

function series(sensorId: string, temperatures: readonly number[], fromSecond = 0) {
  return temperatures.map((temperature, i) => ({
    sensorId,
    ts: new Date(start + (fromSecond + i) * 1000).toISOString(),
    temperature,
    humidity: 40,
    location: { lat: 48.1, lon: 11.6 },
  }));
}

async function incidentsOf(sensorId: string): Promise<IncidentsQuery['incidents']['nodes']> {
  return (await replica.client.request(IncidentsDocument, { sensorId, first: 100 })).incidents.nodes;
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    if (err instanceof PipelineRequestError) return err.errors[0]?.extensions?.code as string | undefined;
    throw err;
  }
  return undefined;
}

beforeAll(async () => {
  replica = await startReplica(isolatedEnv('incidents', { INCIDENT_REFRESH_INTERVAL: '0s' }));
});
afterAll(async () => {
  await replica?.stop();
});

describe('incidents', () => {
  it('open on the first critical reading, update while hot, and clear with hysteresis', async () => {
    const sensorId = uniqueName('furnace');
    await replica.client.request(IngestReadingsDocument, { readings: series(sensorId, [70, 85, 92, 88, 79]) });
    const [open] = await eventually(
      () => incidentsOf(sensorId),
      (list) => list.length === 1 && list[0]!.lastC === 79,
      { what: 'one running incident' },
    );
    expect(open).toMatchObject({
      status: 'OPEN',
      peakC: 92,
      criticalReadings: 3,
      thresholdC: 80,
      hysteresisC: 2,
      clearedAt: null,
      openedAt: new Date(start + 1000).toISOString(),
    });

    // 79 is in the hysteresis band: not cool enough. Three readings at or below 78 clear it.
    await replica.client.request(IngestReadingsDocument, { readings: series(sensorId, [78, 78, 77], 5) });
    const [cleared] = await eventually(
      () => incidentsOf(sensorId),
      (list) => list[0]?.status === 'CLEARED',
      { what: 'the incident cleared' },
    );
    expect(cleared).toMatchObject({ id: open!.id, clearedAt: new Date(start + 7000).toISOString(), peakC: 92 });

    // The next episode is a new incident, listed first.
    await replica.client.request(IngestReadingsDocument, { readings: series(sensorId, [95], 8) });
    const both = await eventually(
      () => incidentsOf(sensorId),
      (list) => list.length === 2,
      { what: 'a second incident' },
    );
    expect(both.map((i) => i.status)).toEqual(['OPEN', 'CLEARED']);
    const open2 = await replica.client.request(IncidentsDocument, { status: 'OPEN', sensorId });
    expect(open2.incidents.nodes.map((i) => i.id)).toEqual([both[0]!.id]);
  });

  it('acknowledging records who, when and the note, once, and leaves the incident running', async () => {
    const sensorId = uniqueName('kiln');
    await replica.client.request(IngestReadingsDocument, { readings: series(sensorId, [90, 91]) });
    const [incident] = await eventually(
      () => incidentsOf(sensorId),
      (list) => list.length === 1,
      { what: 'an incident' },
    );
    const { acknowledgeIncident: acked } = await replica.client.request(AcknowledgeIncidentDocument, {
      id: incident!.id,
      note: 'fan replaced',
    });
    expect(acked).toMatchObject({ status: 'ACKNOWLEDGED', note: 'fan replaced' });
    expect(acked.acknowledgedBy).toBeTruthy();
    expect(Date.parse(acked.acknowledgedAt!)).toBeGreaterThan(Date.now() - 60_000);

    const again = await replica.client.request(AcknowledgeIncidentDocument, { id: incident!.id, note: 'other' });
    expect(again.acknowledgeIncident.note).toBe('fan replaced');

    await replica.client.request(IngestReadingsDocument, { readings: series(sensorId, [70, 70, 70], 2) });
    const [cleared] = await eventually(
      () => incidentsOf(sensorId),
      (list) => list[0]?.status === 'CLEARED',
      { what: 'the acknowledged incident cleared' },
    );
    expect(cleared).toMatchObject({ note: 'fan replaced', acknowledgedBy: acked.acknowledgedBy });
  });

  it('refuses to acknowledge what does not exist, or with a note too long', async () => {
    expect(await codeOf(replica.client.request(AcknowledgeIncidentDocument, { id: 'nope|1' }))).toBe('NOT_FOUND');
    expect(
      await codeOf(replica.client.request(AcknowledgeIncidentDocument, { id: 'nope|1', note: 'x'.repeat(501) })),
    ).toBe('BAD_USER_INPUT');
  });
});

describe('incidentUpdates', () => {
  type Update = IncidentUpdatesSubscription['incidentUpdates'];
  const collect = (sensorIds: string[], after?: string): { got: Update[]; stop: () => void } => {
    const got: Update[] = [];
    const stop = replica.client.subscribe(
      IncidentUpdatesDocument,
      { sensorIds, after },
      {
        next: (d) => got.push(d.incidentUpdates),
      },
    );
    return { got, stop };
  };

  it('delivers each change live, and a resume from a cursor gets exactly the rest, once each', async () => {
    const sensorId = uniqueName('reactor');
    const { alertsCursor } = await replica.client.request(AlertsCursorDocument, {});
    const live = collect([sensorId], alertsCursor);
    await replica.client.request(IngestReadingsDocument, { readings: series(sensorId, [90, 95, 70, 70, 70, 99]) });
    await eventually(
      () => live.got.length,
      (n) => n >= 4,
      { what: 'four updates live' },
    );
    expect(live.got.map((u) => u.change)).toEqual(['OPENED', 'UPDATED', 'CLEARED', 'OPENED']);
    live.stop();

    // A client that had only seen the first update resumes with its cursor.
    const resumed = collect([sensorId], live.got[0]!.cursor);
    await eventually(
      () => resumed.got.length,
      (n) => n >= 3,
      { what: 'the missed updates replayed' },
    );
    const [second] = await incidentsOf(sensorId);
    await replica.client.request(AcknowledgeIncidentDocument, { id: second!.id });
    await eventually(
      () => resumed.got.length,
      (n) => n >= 4,
      { what: 'the acknowledgement live after the replay' },
    );
    // A sentinel: one more hot reading updates the incident after the acknowledgement. The sensor's
    // updates arrive in order, so once it is in, a duplicate of anything before it would be too.
    await replica.client.request(IngestReadingsDocument, { readings: series(sensorId, [99], 6) });
    await eventually(
      () => resumed.got.some((u) => u.change === 'UPDATED' && u.incident.id === second!.id),
      (arrived) => arrived,
      { what: 'the sentinel update' },
    );
    expect(resumed.got.map((u) => u.change)).toEqual(['UPDATED', 'CLEARED', 'OPENED', 'ACKNOWLEDGED', 'UPDATED']);
    expect(resumed.got[3]!.incident).toMatchObject({ id: second!.id, status: 'ACKNOWLEDGED' });
    expect(resumed.got[4]!.incident).toMatchObject({ id: second!.id, criticalReadings: 2 });
    expect(resumed.got[1]!.incident).toMatchObject({ status: 'CLEARED', peakC: 95, criticalReadings: 2 });
    resumed.stop();
  });
});

describe('thresholds per sensor', () => {
  it('judge every reading sent after setThreshold returned, for that sensor only', async () => {
    const tuned = uniqueName('cpu');
    const other = uniqueName('cpu');
    const set = await replica.client.request(SetThresholdDocument, {
      sensorIds: [tuned],
      thresholdC: 40,
      hysteresisC: 1,
    });
    expect(set.setThreshold).toEqual([{ sensorId: tuned, thresholdC: 40, hysteresisC: 1, custom: true }]);
    // Sent right after the mutation: no waiting, the threshold travels ahead of them in the stream.
    await replica.client.request(IngestReadingsDocument, {
      readings: [...series(tuned, [45, 39.5, 38.9, 38, 37]), ...series(other, [45])],
    });
    const [incident] = await eventually(
      () => incidentsOf(tuned),
      (list) => list[0]?.status === 'CLEARED',
      { what: 'an incident at 40 °C, cleared below 39' },
    );
    expect(incident).toMatchObject({ thresholdC: 40, hysteresisC: 1, peakC: 45, criticalReadings: 1 });
    const alerts = await eventually(
      () => replica.client.request(AlertHistoryDocument, { sensorId: tuned }),
      (r) => r.alerts.nodes.length === 1,
      { what: 'the alert at the tuned threshold' },
    );
    expect(alerts.alerts.nodes[0]).toMatchObject({ temperature: 45, threshold: 40 });

    expect(await incidentsOf(other)).toEqual([]);
    const limits = await eventually(
      () => replica.client.request(SensorThresholdsDocument, { sensorIds: [tuned, other] }),
      (r) => r.sensorThresholds[0]!.custom,
      { what: 'the stored limits' },
    );
    expect(limits.sensorThresholds).toMatchObject([
      { sensorId: tuned, thresholdC: 40, hysteresisC: 1, custom: true },
      { sensorId: other, thresholdC: 80, hysteresisC: 2, custom: false, setBy: null },
    ]);
  });

  it('refuse bad limits with BAD_USER_INPUT naming the field', async () => {
    const s = uniqueName('x');
    const cases: [{ sensorIds: string[]; thresholdC: number; hysteresisC?: number }, string][] = [
      [{ sensorIds: [], thresholdC: 50 }, 'sensorIds'],
      [{ sensorIds: ['bad id!'], thresholdC: 50 }, 'sensorIds[0]'],
      [{ sensorIds: [s], thresholdC: 5000 }, 'thresholdC'],
      [{ sensorIds: [s], thresholdC: 50, hysteresisC: -1 }, 'hysteresisC'],
    ];
    for (const [vars, field] of cases) {
      try {
        await replica.client.request(SetThresholdDocument, vars);
        expect.unreachable(`accepted ${JSON.stringify(vars)}`);
      } catch (err) {
        expect(err).toBeInstanceOf(PipelineRequestError);
        expect((err as PipelineRequestError).errors[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
      }
    }
  });
});
