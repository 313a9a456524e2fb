/** A simulated sensor as the fleet and the API see it, and the enumerations it carries. */

/** How a simulated sensor behaves (the GraphQL enum of the same name is registered from this). */
export const Scenario = { NORMAL: 'NORMAL', OVERHEAT: 'OVERHEAT', REPLAY: 'REPLAY' } as const;
export type Scenario = (typeof Scenario)[keyof typeof Scenario];

/** Shipped datasets of real sensor data a REPLAY sensor can replay (loaded by simulator/datasets.ts). */
export const Dataset = { NAB_MACHINE_TEMPERATURE: 'NAB_MACHINE_TEMPERATURE' } as const;
export type Dataset = (typeof Dataset)[keyof typeof Dataset];

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
  /** REPLAY sensors: which dataset, from which sample; one sample per tick. */
  readonly replay?: ReplaySpec | undefined;
}

export interface ReplaySpec {
  readonly dataset: Dataset;
  /** Original time divided by replay time (the interval is the dataset's spacing over it). */
  readonly speedup: number;
  /** Index of the first sample replayed. */
  readonly fromIndex: number;
}
