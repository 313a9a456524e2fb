/** Test environment: unique names per test file, so files never see each other's data. */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type Config } from '../../src/config.js';

export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** FerretDB's SQLite directory as scripts/services.sh lays it out (the store keeps its `_id` indexes there). */
export function ferretSqliteDir(): string {
  const run = process.env.SERVICES_RUN_DIR ?? fileURLToPath(new URL('../../.services', import.meta.url));
  return join(run, 'ferretdb', 'data');
}

/** Options for connecting the store straight from a test, like a replica with `env` would. */
export function storeOptionsFrom(env: Record<string, string>): {
  url: string;
  database: string;
  alertPagesDatabase: string | undefined;
  incidentsDatabase: string | undefined;
  ferretSqliteDir: string;
} {
  return {
    // The store the replicas use: theirs comes from MONGODB_URL too (a suite run on services of its own).
    url: process.env.MONGODB_URL ?? 'mongodb://127.0.0.1:27017',
    database: env.MONGODB_DATABASE!,
    alertPagesDatabase: env.MONGODB_ALERT_PAGES_DATABASE,
    incidentsDatabase: env.MONGODB_INCIDENTS_DATABASE,
    ferretSqliteDir: env.MONGODB_FERRETDB_SQLITE_DIR ?? ferretSqliteDir(),
  };
}

/**
 * Limits and credentials for suites that are not about them: callers without credentials are
 * admins, and the per-credential limits are out of the way. The security suite
 * (test/integration/security.test.ts) sets API keys, JWTs and the production defaults instead.
 */
export const OPEN_ACCESS: Readonly<Record<string, string>> = {
  AUTH_ANONYMOUS_ROLE: 'admin',
  RATE_LIMIT_MUTATIONS: '1000000/1m',
  RATE_LIMIT_STOPS: '1000000/1m',
  RATE_LIMIT_INGEST: '100000000/1m',
  RATE_LIMIT_SUBSCRIPTIONS: '1000000/1m',
  LIMIT_CONNECTIONS_PER_ADDRESS: '100000',
  LIMIT_CONNECTIONS_PER_KEY: '100000',
  LIMIT_SENSORS_PER_KEY: '100000',
  LIMIT_SIMULATED_RATE_PER_KEY: '1000000',
};

/** Environment for an isolated pipeline: its own topics, group, database and Redis channels. */
export function isolatedEnv(label: string, overrides: Record<string, string> = {}): Record<string, string> {
  const id = uniqueName(label);
  const database = id.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 52);
  return {
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    KAFKA_READINGS_TOPIC: `${id}.readings`,
    KAFKA_DLQ_TOPIC: `${id}.readings.dlq`,
    KAFKA_GROUP_ID: `${id}-group`,
    KAFKA_PARTITIONS: '3',
    MONGODB_DATABASE: database,
    // The layout recommended on FerretDB/SQLite (docs/configuration.md): one file per part of the alert path.
    MONGODB_ALERT_PAGES_DATABASE: `${database}_pages`,
    MONGODB_INCIDENTS_DATABASE: `${database}_incidents`,
    MONGODB_FERRETDB_SQLITE_DIR: ferretSqliteDir(),
    REDIS_CHANNEL_PREFIX: id,
    // History written every 250 ms rather than the default 5 s: tests wait for stored readings
    // often. historyWrites.test.ts and the writer's unit tests cover the interval itself.
    HISTORY_WRITE_INTERVAL: '250ms',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...OPEN_ACCESS,
    ...overrides,
  };
}

export function configFrom(env: Record<string, string>): Config {
  return loadConfig(env);
}
