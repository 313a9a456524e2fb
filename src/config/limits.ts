/**
 * The limits of the fleet and of the streams, per replica: simulated sensors, ingest batches, pages,
 * and what one subscriber or WebSocket may hold. (What one caller may ask: requestLimits.ts.)
 */
import { int, type Declarations, type Parsed } from './values.js';

export const LIMIT_VARIABLES = {
  LIMIT_MAX_SENSORS: { schema: int(10_000, 1, 1_000_000), doc: 'sensors running at once, fleet-wide' },
  LIMIT_MAX_SPAWN: { schema: int(200, 1, 100_000), doc: 'sensors per spawnSensors request' },
  LIMIT_MIN_INTERVAL_MS: { schema: int(10, 1, 60_000), doc: 'fastest simulated sensor' },
  LIMIT_MAX_SIMULATED_RATE: { schema: int(10_000, 1, 10_000_000), doc: 'simulated readings/s per replica' },
  LIMIT_MAX_INGEST_BATCH: { schema: int(1000, 1, 100_000), doc: 'readings per ingestReadings request' },
  LIMIT_HISTORY_MAX_PAGE: { schema: int(1000, 1, 100_000), doc: 'largest page of a history query' },
  LIMIT_STATS_MAX_POINTS: { schema: int(1500, 1, 100_000), doc: 'points per readingStats call' },
  LIMIT_SUBSCRIBER_MAX_PENDING: {
    schema: int(1000, 1, 1_000_000),
    doc: 'live alerts kept aside per subscriber (past it, read from the store)',
  },
  LIMIT_SOCKET_BUDGET_BYTES: {
    schema: int(2 * 1_048_576, 16 * 1024, 1024 * 1_048_576),
    doc: 'queued alert bytes per WebSocket (close 4008)',
  },
  LIMIT_SUBSCRIPTIONS_PER_SOCKET: { schema: int(100, 1, 100_000), doc: 'subscriptions per WebSocket' },
} as const satisfies Declarations;

export interface LimitSettings {
  readonly maxSensors: number;
  readonly maxSpawnPerRequest: number;
  readonly minIntervalMs: number;
  /** Readings per second all simulated sensors of one replica may produce together. */
  readonly maxSimulatedRate: number;
  readonly maxIngestBatch: number;
  readonly historyMaxPage: number;
  /** Points one readingStats call may return. */
  readonly statsMaxPoints: number;
  /** Alerts queued for one subscriber before its connection is closed (it resumes with its cursor). */
  readonly subscriberMaxPending: number;
  /** Bytes of queued alerts one WebSocket may hold across its subscriptions before it is closed (4008). */
  readonly socketBudgetBytes: number;
  /** Subscriptions one WebSocket may hold at once. */
  readonly subscriptionsPerSocket: number;
}

export function limitSettings(e: Parsed<typeof LIMIT_VARIABLES>): LimitSettings {
  return {
    maxSensors: e.LIMIT_MAX_SENSORS,
    maxSpawnPerRequest: e.LIMIT_MAX_SPAWN,
    minIntervalMs: e.LIMIT_MIN_INTERVAL_MS,
    maxSimulatedRate: e.LIMIT_MAX_SIMULATED_RATE,
    maxIngestBatch: e.LIMIT_MAX_INGEST_BATCH,
    historyMaxPage: e.LIMIT_HISTORY_MAX_PAGE,
    statsMaxPoints: e.LIMIT_STATS_MAX_POINTS,
    subscriberMaxPending: e.LIMIT_SUBSCRIBER_MAX_PENDING,
    socketBudgetBytes: e.LIMIT_SOCKET_BUDGET_BYTES,
    subscriptionsPerSocket: e.LIMIT_SUBSCRIPTIONS_PER_SOCKET,
  };
}
