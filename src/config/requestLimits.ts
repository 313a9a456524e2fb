/**
 * What one caller may ask of a replica: the shape of a GraphQL document, rates per credential,
 * connections, simulated sensors per credential, and history reads at once.
 */
import type { OperationLimits } from '../limits/operationLimits.js';
import type { RateBucket, RateLimit } from '../limits/rateLimiter.js';
import { int, rate, type Declarations, type Parsed } from './values.js';

export const REQUEST_LIMIT_VARIABLES = {
  LIMIT_QUERY_DEPTH: { schema: int(10, 2, 100), doc: 'selection depth' },
  LIMIT_QUERY_ALIASES: { schema: int(20, 0, 10_000), doc: 'aliases per document' },
  LIMIT_QUERY_DIRECTIVES: { schema: int(10, 0, 10_000), doc: 'directives per document' },
  LIMIT_QUERY_COST: { schema: int(25_000, 10, 100_000_000), doc: 'fields times list sizes' },
  LIMIT_QUERY_TOKENS: { schema: int(5_000, 100, 1_000_000), doc: 'tokens per document' },
  LIMIT_OPERATION_NAME_LENGTH: { schema: int(100, 1, 10_000), doc: 'operation name length' },
  LIMIT_VARIABLES_DEPTH: { schema: int(8, 2, 1000), doc: 'nesting of the variables JSON' },
  RATE_LIMIT_MUTATIONS: { schema: rate({ limit: 300, windowMs: 60_000 }), doc: 'mutations per credential' },
  RATE_LIMIT_STOPS: { schema: rate({ limit: 300, windowMs: 60_000 }), doc: 'stopSensors calls per credential' },
  RATE_LIMIT_INGEST: { schema: rate({ limit: 120_000, windowMs: 60_000 }), doc: 'ingested readings per credential' },
  RATE_LIMIT_SUBSCRIPTIONS: {
    schema: rate({ limit: 300, windowMs: 60_000 }),
    doc: 'subscription starts per credential',
  },
  LIMIT_CONNECTIONS: { schema: int(10_000, 1, 1_000_000), doc: 'WebSockets per replica' },
  LIMIT_CONNECTIONS_PER_ADDRESS: { schema: int(200, 1, 1_000_000), doc: 'WebSockets per client address' },
  LIMIT_CONNECTIONS_PER_KEY: { schema: int(100, 1, 1_000_000), doc: 'WebSockets per credential per replica' },
  LIMIT_SENSORS_PER_KEY: { schema: int(500, 1, 1_000_000), doc: 'running simulated sensors per credential' },
  LIMIT_SIMULATED_RATE_PER_KEY: { schema: int(2000, 1, 10_000_000), doc: 'simulated readings/s per credential' },
  LIMIT_STORE_READS: { schema: int(8, 1, 1000), doc: 'history reads at once per replica' },
  LIMIT_STORE_READ_QUEUE: { schema: int(64, 0, 100_000), doc: 'history reads waiting per replica' },
} as const satisfies Declarations;

export interface RequestLimitSettings {
  readonly operations: OperationLimits;
  readonly rates: Readonly<Record<RateBucket, RateLimit>>;
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
  readonly maxConnectionsPerKey: number;
  /** Running simulated sensors one credential may own. */
  readonly maxSensorsPerKey: number;
  /** Readings/s the simulated sensors of one credential may produce together. */
  readonly maxSimulatedRatePerKey: number;
  /** History reads running at once on one replica, and waiting beyond those. */
  readonly storeReadConcurrency: number;
  readonly storeReadQueue: number;
}

export function requestLimitSettings(e: Parsed<typeof REQUEST_LIMIT_VARIABLES>): RequestLimitSettings {
  return {
    operations: {
      maxDepth: e.LIMIT_QUERY_DEPTH,
      maxAliases: e.LIMIT_QUERY_ALIASES,
      maxDirectives: e.LIMIT_QUERY_DIRECTIVES,
      maxCost: e.LIMIT_QUERY_COST,
      maxTokens: e.LIMIT_QUERY_TOKENS,
      maxOperationNameLength: e.LIMIT_OPERATION_NAME_LENGTH,
      maxVariablesDepth: e.LIMIT_VARIABLES_DEPTH,
      defaultListSize: 50,
    },
    rates: {
      mutations: e.RATE_LIMIT_MUTATIONS,
      stops: e.RATE_LIMIT_STOPS,
      ingest: e.RATE_LIMIT_INGEST,
      subscriptions: e.RATE_LIMIT_SUBSCRIPTIONS,
    },
    maxConnections: e.LIMIT_CONNECTIONS,
    maxConnectionsPerAddress: e.LIMIT_CONNECTIONS_PER_ADDRESS,
    maxConnectionsPerKey: e.LIMIT_CONNECTIONS_PER_KEY,
    maxSensorsPerKey: e.LIMIT_SENSORS_PER_KEY,
    maxSimulatedRatePerKey: e.LIMIT_SIMULATED_RATE_PER_KEY,
    storeReadConcurrency: e.LIMIT_STORE_READS,
    storeReadQueue: e.LIMIT_STORE_READ_QUEUE,
  };
}
