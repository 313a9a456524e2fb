/** Test environment: unique names per test file, so files never see each other's data. */
import { randomBytes } from 'node:crypto';
import { loadConfig, type Config } from '../../src/config.js';

export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** Environment for an isolated pipeline: its own topics, group, database and Redis channels. */
export function isolatedEnv(label: string, overrides: Record<string, string> = {}): Record<string, string> {
  const id = uniqueName(label);
  return {
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    KAFKA_READINGS_TOPIC: `${id}.readings`,
    KAFKA_DLQ_TOPIC: `${id}.readings.dlq`,
    KAFKA_GROUP_ID: `${id}-group`,
    KAFKA_PARTITIONS: '3',
    MONGODB_DATABASE: id.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 60),
    REDIS_CHANNEL_PREFIX: id,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...overrides,
  };
}

export function configFrom(env: Record<string, string>): Config {
  return loadConfig(env);
}
