/** Readings and alerts as the tests write them. */
import type { OverheatAlert } from '../../src/domain/alert.js';

/** A reading taken a second ago (shifted by `offsetMs`), at a fixed place. */
export function recentReading(sensorId: string, temperature: number, offsetMs = 0) {
  return {
    sensorId,
    ts: new Date(Date.now() - 1000 + offsetMs).toISOString(),
    temperature,
    humidity: 50,
    location: { lat: 0, lon: 0 },
  };
}

/** The alert of a reading of `sensorId` taken at `tsMs`, at a position in the readings stream. */
export function alertAt(sensorId: string, tsMs: number, offset: number, partition = 0): OverheatAlert {
  return {
    id: `${sensorId}|${tsMs}`,
    sensorId,
    temperature: 91,
    threshold: 80,
    ts: new Date(tsMs),
    location: { lat: 1, lon: 2 },
    detectedAt: new Date(),
    position: { partition, offset },
  };
}
