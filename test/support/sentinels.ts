/**
 * Proving an absence ("no duplicate arrives") without the clock. After the point, each sensor of the
 * test sends one more critical reading, a sentinel, and the test waits until the subscriber has
 * every sentinel's alert. A sensor's readings share a partition, and its alerts reach a subscriber
 * in order: once a sensor's sentinel is in, nothing of that sensor from before it can still be on
 * its way, so what was received before it is all there will be.
 */
import { readingKey } from '../../src/domain/reading.js';
import type { ReceivedAlert } from './alertCollector.js';
import { eventually } from './wait.js';

export interface SentinelReading {
  sensorId: string;
  ts: string;
  temperature: number;
  humidity: number;
  location: { lat: number; lon: number };
}

/** One critical reading per sensor, stamped `at`: later than anything the test sent for them. */
export function sentinelReadings(sensorIds: readonly string[], at = new Date()): SentinelReading[] {
  return sensorIds.map((sensorId) => ({
    sensorId,
    ts: at.toISOString(),
    temperature: 99,
    humidity: 40,
    location: { lat: 1, lon: 2 },
  }));
}

/** The id of the alert a critical reading raises (its reading key). */
export function alertIdOf(reading: { sensorId: string; ts: string }): string {
  return readingKey(reading.sensorId, new Date(reading.ts));
}

/** Waits until `alerts()` holds the alert of every sentinel; fails naming those still missing. */
export async function untilSentinelsArrive(
  alerts: () => readonly ReceivedAlert[],
  sentinels: readonly SentinelReading[],
  { what = 'the sentinels', timeoutMs = 30_000 }: { what?: string; timeoutMs?: number } = {},
): Promise<void> {
  const missing = (): string[] => {
    const got = new Set(alerts().map((a) => a.id));
    return sentinels.map(alertIdOf).filter((id) => !got.has(id));
  };
  await eventually(missing, (ids) => ids.length === 0, { what, timeoutMs });
}

/** The alerts received, without the sentinels'. */
export function withoutSentinels<A extends { id: string }>(
  alerts: readonly A[],
  sentinels: readonly SentinelReading[],
): A[] {
  const ids = new Set(sentinels.map(alertIdOf));
  return alerts.filter((a) => !ids.has(a.id));
}
