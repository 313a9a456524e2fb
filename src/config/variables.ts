/**
 * Every variable the API reads, gathered from the declarations of each concern (http.ts, kafka.ts,
 * ...). A new variable is declared in its concern's file, never here; a new concern is one more line.
 * The order of the groups is the order problems are reported in.
 */
import { z } from 'zod';
import { ALERT_VARIABLES } from './alerts.js';
import { AUTH_VARIABLES } from './auth.js';
import { HISTORY_VARIABLES } from './history.js';
import { HTTP_VARIABLES } from './http.js';
import { KAFKA_VARIABLES } from './kafka.js';
import { LIMIT_VARIABLES } from './limits.js';
import { READING_VARIABLES } from './readings.js';
import { REDIS_VARIABLES } from './redis.js';
import { REQUEST_LIMIT_VARIABLES } from './requestLimits.js';
import { RUNTIME_VARIABLES } from './runtime.js';
import { STORE_VARIABLES } from './store.js';
import { TRACING_VARIABLES } from './tracing.js';
import type { Parsed } from './values.js';

/** Every variable the API reads, with its schema and what it is for. */
export const VARIABLES = {
  ...HTTP_VARIABLES,
  ...KAFKA_VARIABLES,
  ...STORE_VARIABLES,
  ...HISTORY_VARIABLES,
  ...REDIS_VARIABLES,
  ...ALERT_VARIABLES,
  ...READING_VARIABLES,
  ...LIMIT_VARIABLES,
  ...AUTH_VARIABLES,
  ...REQUEST_LIMIT_VARIABLES,
  ...RUNTIME_VARIABLES,
  ...TRACING_VARIABLES,
} as const;

export const KNOWN_VARIABLES = Object.keys(VARIABLES) as (keyof typeof VARIABLES)[];

/** The values of every variable, parsed. */
export type ParsedVariables = Parsed<typeof VARIABLES>;

type Shape = { [K in keyof typeof VARIABLES]: (typeof VARIABLES)[K]['schema'] };
export const ENV_SCHEMA = z.object(
  Object.fromEntries(Object.entries(VARIABLES).map(([k, v]) => [k, v.schema])) as Shape,
);

/** Prefixes owned by this project: a misspelt variable under them is an error, not silently ignored. */
export const OWNED_PREFIXES = [
  'KAFKA_',
  'MONGODB_',
  'REDIS_',
  'ALERT_',
  'READING_',
  'READINGS_',
  'ALERTS_',
  'SENSORS_',
  'LIMIT_',
  'SHUTDOWN_',
  'AUTH_',
  'RATE_LIMIT_',
  'DEV_',
  'GRAPHQL_',
  'GRAPHIQL_',
  'CORS_',
  'TRACING_',
];
