/**
 * The incident lifecycle (domain/incident.ts) and the commands that travel with readings
 * (domain/sensorCommand.ts), as pure functions.
 */
import { describe, expect, it } from 'vitest';
import {
  IncidentChange,
  applyAcknowledgement,
  applyReading,
  type ClearingRule,
  type Incident,
  type SensorLimits,
} from '../../src/domain/incident.js';
import type { Reading } from '../../src/domain/reading.js';
import { decodeCommand, encodeCommand, type SensorCommand } from '../../src/domain/sensorCommand.js';

const LIMITS: SensorLimits = { thresholdC: 80, hysteresisC: 2 };
const RULE: ClearingRule = { clearReadings: 3, clearAfterMs: 0 };
const T0 = Date.parse('2026-11-28T10:00:00Z');

/** Runs a temperature series (one reading a second) through the lifecycle; returns every change. */
function run(
  temperatures: readonly number[],
  rule = RULE,
  limits = LIMITS,
): { changes: (string | undefined)[]; incidents: Incident[]; running: Incident | undefined } {
  let running: Incident | undefined;
  const changes: (string | undefined)[] = [];
  const incidents: Incident[] = [];
  temperatures.forEach((temperature, i) => {
    const reading: Reading = {
      sensorId: 's1',
      ts: new Date(T0 + i * 1000),
      temperature,
      humidity: 40,
      location: { lat: 1, lon: 2 },
    };
    const t = applyReading(running, reading, limits, rule, { partition: 0, offset: i });
    if (!t) return;
    if (t.change) changes.push(t.change);
    if (t.change === IncidentChange.OPENED) incidents.push(t.incident);
    else incidents[incidents.length - 1] = t.incident;
    running = t.change === IncidentChange.CLEARED ? undefined : t.incident;
  });
  return { changes, incidents, running };
}

describe('an incident', () => {
  it('opens on the first critical reading, and nothing happens before it', () => {
    const { changes, incidents } = run([70, 79.9, 80, 80.1]);
    expect(changes).toEqual(['OPENED']);
    expect(incidents[0]).toMatchObject({
      id: `s1|${T0 + 3000}`,
      status: 'OPEN',
      peakC: 80.1,
      criticalReadings: 1,
      thresholdC: 80,
      hysteresisC: 2,
    });
  });

  it('is updated while the sensor stays hot: peak, last temperature, count', () => {
    const { changes, incidents } = run([85, 92, 88]);
    expect(changes).toEqual(['OPENED', 'UPDATED', 'UPDATED']);
    expect(incidents).toHaveLength(1);
    expect(incidents[0]).toMatchObject({ peakC: 92, lastC: 88, criticalReadings: 3, status: 'OPEN' });
  });

  it('does not flap while the value hovers at the threshold: one incident, not one per crossing', () => {
    const hovering = [81, 79, 81, 79.5, 80.5, 79, 81, 78.5, 80.2];
    const { changes, incidents, running } = run(hovering);
    expect(incidents).toHaveLength(1);
    expect(changes.filter((c) => c === 'OPENED')).toHaveLength(1);
    expect(changes).not.toContain('CLEARED');
    expect(running?.criticalReadings).toBe(hovering.filter((t) => t > 80).length);
  });

  it('clears after enough consecutive readings at or below threshold - hysteresis', () => {
    const { changes, incidents, running } = run([85, 78, 77, 78]);
    expect(changes).toEqual(['OPENED', 'CLEARED']);
    expect(incidents[0]).toMatchObject({ status: 'CLEARED', clearedAt: new Date(T0 + 3000), lastC: 78 });
    expect(running).toBeUndefined();
  });

  it('restarts the clearing count on a reading between the two levels', () => {
    // 79 is below the threshold but above 78 (80 - 2): it restarts the count.
    const { changes } = run([85, 78, 78, 79, 78, 78]);
    expect(changes).toEqual(['OPENED']);
    expect(run([85, 78, 78, 79, 78, 78, 78]).changes).toEqual(['OPENED', 'CLEARED']);
  });

  it('needs the cool spell to last INCIDENT_CLEAR_AFTER as well as the reading count', () => {
    const rule = { clearReadings: 2, clearAfterMs: 5000 };
    expect(run([85, 70, 70, 70], rule).changes).toEqual(['OPENED']);
    expect(run([85, 70, 70, 70, 70, 70, 70], rule).changes).toEqual(['OPENED', 'CLEARED']);
  });

  it('opens a new incident on the next episode after clearing', () => {
    const { changes, incidents } = run([85, 70, 70, 70, 90]);
    expect(changes).toEqual(['OPENED', 'CLEARED', 'OPENED']);
    expect(incidents.map((i) => i.status)).toEqual(['CLEARED', 'OPEN']);
  });

  it('keeps the clearing level it opened with', () => {
    const { incidents } = run([85], RULE, { thresholdC: 80, hysteresisC: 5 });
    const later = applyReading(
      incidents[0],
      { sensorId: 's1', ts: new Date(T0 + 5000), temperature: 76, humidity: 40, location: { lat: 1, lon: 2 } },
      { thresholdC: 90, hysteresisC: 0 },
      { clearReadings: 1, clearAfterMs: 0 },
      { partition: 0, offset: 9 },
    );
    // 76 > 80 - 5: not cool enough by the incident's own level, although below the new one.
    expect(later?.change).toBeUndefined();
    expect(later?.incident.status).toBe('OPEN');
  });

  it('records the first acknowledgement only, and stays open until the temperature says otherwise', () => {
    const { running } = run([85]);
    const ack = { incidentId: running!.id, by: 'key:operator:abc', at: new Date(T0 + 2000), note: 'on my way' };
    const acked = applyAcknowledgement(running!, ack, { partition: 0, offset: 5 });
    expect(acked).toMatchObject({
      change: 'ACKNOWLEDGED',
      incident: { status: 'ACKNOWLEDGED', acknowledgedBy: 'key:operator:abc', note: 'on my way' },
    });
    expect(applyAcknowledgement(acked!.incident, { ...ack, by: 'someone-else' }, { partition: 0, offset: 6 })).toBe(
      undefined,
    );
    expect(applyAcknowledgement(running!, { ...ack, incidentId: 'other' }, { partition: 0, offset: 6 })).toBe(
      undefined,
    );
  });

  it('an acknowledged incident still clears, and a cleared one can be acknowledged without reopening', () => {
    const { incidents } = run([85, 70, 70, 70]);
    const cleared = incidents[0]!;
    const acked = applyAcknowledgement(
      cleared,
      { incidentId: cleared.id, by: 'op', at: new Date(), note: null },
      { partition: 0, offset: 9 },
    );
    expect(acked?.incident).toMatchObject({ status: 'CLEARED', acknowledgedBy: 'op' });
  });
});

describe('sensor commands', () => {
  const threshold: SensorCommand = {
    kind: 'threshold',
    sensorId: 'boiler-1',
    thresholdC: 42.5,
    hysteresisC: 1,
    issuedBy: 'key:admin:1',
    issuedAt: new Date(T0),
  };

  it('travel keyed by their sensor, named by a header, and decode to what was sent', () => {
    const wire = encodeCommand(threshold);
    expect(wire.key).toBe('boiler-1');
    expect(wire.headers).toEqual({ 'iot-command': 'threshold' });
    expect(decodeCommand('threshold', Buffer.from(wire.value), Buffer.from(wire.key))).toEqual({
      ok: true,
      command: threshold,
    });
  });

  it('are refused with the field at fault when malformed', () => {
    const bad = (kind: string, value: unknown, key = 'boiler-1') =>
      decodeCommand(kind, Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)), Buffer.from(key));
    const valid = JSON.parse(encodeCommand(threshold).value) as Record<string, unknown>;
    expect(bad('reboot', valid)).toMatchObject({ ok: false, field: 'iot-command' });
    expect(bad('threshold', '{oops')).toMatchObject({ ok: false, field: '' });
    expect(bad('threshold', { ...valid, thresholdC: 'hot' })).toMatchObject({ ok: false, field: 'thresholdC' });
    expect(bad('threshold', { ...valid, hysteresisC: -1 })).toMatchObject({ ok: false, field: 'hysteresisC' });
    expect(bad('threshold', valid, 'other-sensor')).toMatchObject({ ok: false, field: 'sensorId' });
    expect(bad('acknowledge', { ...valid, incidentId: '' })).toMatchObject({ ok: false, field: 'incidentId' });
    expect(bad('acknowledge', { ...valid, incidentId: 'x', note: 'n'.repeat(501) })).toMatchObject({
      ok: false,
      field: 'note',
    });
  });
});
