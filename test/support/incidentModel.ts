/** The incidents a sensor's readings give, by the pure lifecycle (domain/incident.ts): what suites compare the store with. */
import {
  IncidentChange,
  applyReading,
  type ClearingRule,
  type Incident,
  type SensorLimits,
} from '../../src/domain/incident.js';
import type { Reading } from '../../src/domain/reading.js';

/** Each incident in its final state, oldest first; readings are one sensor's, in stream order. */
export function lifecycleOf(readings: readonly Reading[], limits: SensorLimits, rule: ClearingRule): Incident[] {
  const out: Incident[] = [];
  let running: Incident | undefined;
  readings.forEach((reading, offset) => {
    const t = applyReading(running, reading, limits, rule, { partition: 0, offset });
    if (!t) return;
    if (t.change === IncidentChange.OPENED) out.push(t.incident);
    else out[out.length - 1] = t.incident;
    running = t.change === IncidentChange.CLEARED ? undefined : t.incident;
  });
  return out;
}
