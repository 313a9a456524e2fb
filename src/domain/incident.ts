/**
 * Incidents: one operator-facing problem per overheating episode of a sensor, instead of one alert
 * per critical reading.
 *
 * Lifecycle, per sensor, driven by its readings in stream order:
 * - a reading above the sensor's threshold with no incident running OPENS one;
 * - while it runs, critical readings UPDATE it (peak, last, count);
 * - it CLEARS once the temperature has stayed at or below `threshold - hysteresis` for
 *   `clearReadings` consecutive readings spanning at least `clearAfterMs`. A reading in between the
 *   two levels restarts that count, so a value hovering at the threshold does not flap;
 * - a person may ACKNOWLEDGE it (who, when, a note) at any time; acknowledging does not clear it.
 *
 * Pure functions of (state, event): replaying the same readings and commands gives the same result,
 * which is what makes incidents exact under crashes and rebalances (see stream/incidentTracker.ts).
 */
import type { StreamPosition } from './alert.js';
import { readingKey, type Location, type Reading } from './reading.js';

export const IncidentStatus = { OPEN: 'OPEN', ACKNOWLEDGED: 'ACKNOWLEDGED', CLEARED: 'CLEARED' } as const;
export type IncidentStatus = (typeof IncidentStatus)[keyof typeof IncidentStatus];

/** What happened to an incident; every change an `incidentUpdates` subscriber sees carries one. */
export const IncidentChange = {
  OPENED: 'OPENED',
  UPDATED: 'UPDATED',
  ACKNOWLEDGED: 'ACKNOWLEDGED',
  CLEARED: 'CLEARED',
} as const;
export type IncidentChange = (typeof IncidentChange)[keyof typeof IncidentChange];

/** The limits a sensor's readings are judged by. */
export interface SensorLimits {
  readonly thresholdC: number;
  readonly hysteresisC: number;
}

export interface ClearingRule {
  /** Consecutive readings at or below `threshold - hysteresis` needed to clear. */
  readonly clearReadings: number;
  /** ...spanning at least this long (reading time). */
  readonly clearAfterMs: number;
}

export interface Incident {
  /** The key of the reading that opened it (sensor and millisecond): one opening, one incident. */
  readonly id: string;
  readonly sensorId: string;
  readonly status: IncidentStatus;
  readonly openedAt: Date;
  /** Time of the last reading (or acknowledgement) applied. */
  readonly updatedAt: Date;
  readonly clearedAt: Date | null;
  readonly thresholdC: number;
  readonly hysteresisC: number;
  readonly peakC: number;
  readonly lastC: number;
  /** Readings above the threshold while it ran. */
  readonly criticalReadings: number;
  readonly location: Location;
  readonly acknowledgedBy: string | null;
  readonly acknowledgedAt: Date | null;
  readonly note: string | null;
  /** Consecutive readings at or below the clearing level, and the time of the first of them. */
  readonly coolReadings: number;
  readonly coolSince: Date | null;
  /** Where in the stream the last change came from. */
  readonly position: StreamPosition;
}

/** One change of an incident, at the stream position that caused it: what `incidentUpdates` delivers. */
export interface IncidentUpdate {
  readonly sensorId: string;
  readonly position: StreamPosition;
  readonly change: IncidentChange;
  readonly incident: Incident;
}

export interface Transition {
  /** The incident after the event (a cleared one is returned once, then the sensor has none). */
  readonly incident: Incident;
  readonly change: IncidentChange | undefined;
}

const isRunning = (i: Incident | undefined): i is Incident => i !== undefined && i.status !== IncidentStatus.CLEARED;

/**
 * Applies one reading of the incident's sensor. `current` is the sensor's running incident, if any.
 * Returns undefined when nothing changed (no incident, and the reading is not critical).
 * `change` is undefined for a change that is only bookkeeping (a reading between the two levels).
 */
export function applyReading(
  current: Incident | undefined,
  reading: Reading,
  limits: SensorLimits,
  rule: ClearingRule,
  position: StreamPosition,
): Transition | undefined {
  const t = reading.temperature;
  const critical = t > limits.thresholdC;
  if (!isRunning(current)) {
    if (!critical) return undefined;
    return {
      change: IncidentChange.OPENED,
      incident: {
        id: readingKey(reading.sensorId, reading.ts),
        sensorId: reading.sensorId,
        status: IncidentStatus.OPEN,
        openedAt: reading.ts,
        updatedAt: reading.ts,
        clearedAt: null,
        thresholdC: limits.thresholdC,
        hysteresisC: limits.hysteresisC,
        peakC: t,
        lastC: t,
        criticalReadings: 1,
        location: reading.location,
        acknowledgedBy: null,
        acknowledgedAt: null,
        note: null,
        coolReadings: 0,
        coolSince: null,
        position,
      },
    };
  }
  const base = { ...current, updatedAt: reading.ts, lastC: t, location: reading.location, position };
  if (critical) {
    return {
      change: IncidentChange.UPDATED,
      incident: {
        ...base,
        peakC: Math.max(current.peakC, t),
        criticalReadings: current.criticalReadings + 1,
        coolReadings: 0,
        coolSince: null,
      },
    };
  }
  // The clearing level is the one in force when the incident opened: a threshold raised meanwhile
  // does not clear it early.
  if (t <= current.thresholdC - current.hysteresisC) {
    const coolReadings = current.coolReadings + 1;
    const coolSince = current.coolSince ?? reading.ts;
    if (coolReadings >= rule.clearReadings && reading.ts.getTime() - coolSince.getTime() >= rule.clearAfterMs) {
      return {
        change: IncidentChange.CLEARED,
        incident: { ...base, status: IncidentStatus.CLEARED, clearedAt: reading.ts, coolReadings, coolSince },
      };
    }
    return { change: undefined, incident: { ...base, coolReadings, coolSince } };
  }
  return { change: undefined, incident: { ...base, coolReadings: 0, coolSince: null } };
}

export interface Acknowledgement {
  readonly incidentId: string;
  readonly by: string;
  readonly at: Date;
  readonly note: string | null;
}

/**
 * Applies an acknowledgement to the incident it names. The first one wins: acknowledging again
 * changes nothing. A cleared incident keeps its status and records who acknowledged it.
 */
export function applyAcknowledgement(
  incident: Incident,
  ack: Acknowledgement,
  position: StreamPosition,
): Transition | undefined {
  if (incident.id !== ack.incidentId || incident.acknowledgedBy !== null) return undefined;
  return {
    change: IncidentChange.ACKNOWLEDGED,
    incident: {
      ...incident,
      status: incident.status === IncidentStatus.CLEARED ? IncidentStatus.CLEARED : IncidentStatus.ACKNOWLEDGED,
      acknowledgedBy: ack.by,
      acknowledgedAt: ack.at,
      note: ack.note,
      position,
    },
  };
}
