/** A simulated sensor as the fleet and the API see it, and the two enumerations it carries. */

/** How a simulated sensor behaves (the GraphQL enum of the same name is registered from this). */
export const Scenario = { NORMAL: 'NORMAL', OVERHEAT: 'OVERHEAT' } as const;
export type Scenario = (typeof Scenario)[keyof typeof Scenario];

export const SensorStatus = { RUNNING: 'RUNNING', STOPPED: 'STOPPED' } as const;
export type SensorStatus = (typeof SensorStatus)[keyof typeof SensorStatus];

export interface SimulatedSensor {
  readonly id: string;
  readonly scenario: Scenario;
  readonly intervalMs: number;
  readonly seed: number;
  /** Position in its spawn request: with the seed, it fixes the sensor's readings. */
  readonly index: number;
  readonly status: SensorStatus;
  /** Replica that spawned it; while that replica's lease lapses, its adopter runs the sensor. */
  readonly replicaId: string;
  readonly createdAt: Date;
  readonly stoppedAt: Date | null;
  /** Credential that spawned it (per-key caps count by it). */
  readonly owner?: string | undefined;
}
