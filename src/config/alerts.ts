/** Overheat alerts and incidents: the fleet defaults of their rules, how they are stored and kept. */
import { DAY, duration, int, num, type Declarations, type Parsed } from './values.js';

export const ALERT_VARIABLES = {
  ALERT_THRESHOLD_C: { schema: num(80, -273.15, 1000), doc: 'alert when temperature is strictly above' },
  ALERTS_RETENTION: { schema: duration(30 * DAY, 60_000), doc: 'alerts kept; older cursors get CURSOR_EXPIRED' },
  ALERT_STORE_INTERVAL: {
    schema: duration(250, 0, 10_000),
    doc: 'the alert path stores a partition at most this often (alerts surely new are published before)',
  },
  INCIDENT_HYSTERESIS_C: { schema: num(2, 0, 1000), doc: 'an incident clears at or below threshold minus this' },
  INCIDENT_CLEAR_READINGS: { schema: int(3, 1, 10_000), doc: 'consecutive readings at the clearing level to clear' },
  INCIDENT_CLEAR_AFTER: { schema: duration(0, 0), doc: '...spanning at least this long' },
  INCIDENT_REFRESH_INTERVAL: {
    schema: duration(5000, 0),
    doc: 'an incident document is rewritten for updates at most this often',
  },
  INCIDENTS_RETENTION: { schema: duration(90 * DAY, 60_000), doc: 'cleared incidents kept' },
} as const satisfies Declarations;

export interface AlertSettings {
  /** A reading strictly above this temperature raises an overheat alert. */
  readonly thresholdC: number;
  /** Alerts are kept this long (by detection time); older cursors get CURSOR_EXPIRED. */
  readonly retentionMs: number;
  /**
   * A partition's judged batches are stored at most this often (stream/storeBacklog.ts): fewer,
   * larger store writes. Alerts surely new go out before; what waits for storage waits this more.
   */
  readonly storeIntervalMs: number;
}

/** Incidents (domain/incident.ts): the fleet default of per-sensor limits, and how they clear. */
export interface IncidentSettings {
  readonly hysteresisC: number;
  readonly clearReadings: number;
  readonly clearAfterMs: number;
  readonly refreshMs: number;
  readonly retentionMs: number;
}

export function alertSettings(e: Parsed<typeof ALERT_VARIABLES>): AlertSettings {
  return {
    thresholdC: e.ALERT_THRESHOLD_C,
    retentionMs: e.ALERTS_RETENTION,
    storeIntervalMs: e.ALERT_STORE_INTERVAL,
  };
}

export function incidentSettings(e: Parsed<typeof ALERT_VARIABLES>): IncidentSettings {
  return {
    hysteresisC: e.INCIDENT_HYSTERESIS_C,
    clearReadings: e.INCIDENT_CLEAR_READINGS,
    clearAfterMs: e.INCIDENT_CLEAR_AFTER,
    refreshMs: e.INCIDENT_REFRESH_INTERVAL,
    retentionMs: e.INCIDENTS_RETENTION,
  };
}
