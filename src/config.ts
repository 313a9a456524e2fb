/**
 * Configuration: the only module that reads `process.env`.
 * Parsed once at start, every problem reported together, result frozen.
 */
import { parseApiKeys, ROLES, type AuthSettings, type Role } from './auth/credentials.js';
import type { OperationLimits } from './limits/operationLimits.js';
import type { RateBucket, RateLimit } from './limits/rateLimiter.js';

export interface Config {
  readonly nodeEnv: 'production' | 'development' | 'test';
  /** Unique id of this API replica (logs, sensor ownership). */
  readonly replicaId: string;
  readonly http: {
    readonly host: string;
    readonly port: number;
    /** Largest accepted GraphQL request body, in bytes. */
    readonly maxBodyBytes: number;
  };
  readonly kafka: {
    readonly brokers: readonly string[];
    readonly clientId: string;
    readonly readingsTopic: string;
    readonly deadLetterTopic: string;
    readonly groupId: string;
    /** Partitions used when the project creates its topics. */
    readonly partitions: number;
    readonly replicationFactor: number;
    /** Whether this replica runs the consumer (API-only replicas are allowed). */
    readonly consumerEnabled: boolean;
    /** How long the group waits for a silent replica before giving its partitions to others. */
    readonly sessionTimeoutMs: number;
    /** Readings buffered in memory while Kafka is slow or down; beyond it producers get backpressure. */
    readonly producerBufferLimit: number;
  };
  readonly mongo: {
    readonly url: string;
    readonly database: string;
    /** Alerts and stream progress (the alert path); default `<database>_alerts`. */
    readonly alertsDatabase: string;
    /** FerretDB's SQLite directory, when the store is FerretDB on SQLite: the `_id` indexes are kept there. */
    readonly ferretSqliteDir: string | undefined;
  };
  readonly history: {
    /** Readings older than this are removed, whole days at a time. */
    readonly retentionMs: number;
    /** How often each replica looks for expired days (and stopped sensors). */
    readonly retentionCheckMs: number;
    /** Stopped simulated sensors are removed this long after their stop. */
    readonly stoppedSensorsRetentionMs: number;
  };
  readonly redis: {
    readonly url: string;
    /** Prefix of every Redis channel, so several deployments can share one Redis. */
    readonly channelPrefix: string;
  };
  readonly alerts: {
    /** A reading strictly above this temperature raises an overheat alert. */
    readonly thresholdC: number;
    /** Alerts are kept this long (by detection time); older cursors get CURSOR_EXPIRED. */
    readonly retentionMs: number;
  };
  readonly readings: {
    readonly temperatureMinC: number;
    readonly temperatureMaxC: number;
    /** Readings older than this are refused (dead-lettered). */
    readonly maxAgeMs: number;
    /** Readings further in the future than this are refused (clock skew allowance). */
    readonly maxFutureMs: number;
    /** Largest Kafka message accepted, in bytes. */
    readonly maxMessageBytes: number;
  };
  readonly limits: {
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
  };
  readonly auth: AuthSettings;
  readonly security: {
    /** Stack traces and internal messages in client errors; only when DEV_MODE=true. */
    readonly devMode: boolean;
    readonly introspection: boolean;
    readonly graphiql: boolean;
    /** Origins allowed by CORS (exact match); none by default. */
    readonly corsOrigins: readonly string[];
    /** Dev mode only: this admin key is prefilled in GraphiQL's headers. */
    readonly devAdminKey: string | undefined;
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
  };
  readonly shutdownTimeoutMs: number;
  readonly logLevel: string;
  /** `json`, `pretty` (pino-pretty), or `auto`: pretty when stdout is a terminal. */
  readonly logFormat: 'auto' | 'json' | 'pretty';
}

export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** Collects problems while reading typed values, so one error lists them all. */
class EnvReader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  string(name: string, fallback: string, pattern?: RegExp): string {
    const raw = this.env[name];
    if (raw === undefined || raw === '') return fallback;
    if (pattern && !pattern.test(raw)) {
      this.problems.push(`${name}: "${raw}" does not match ${pattern}`);
      return fallback;
    }
    return raw;
  }

  number(name: string, fallback: number, opts: { min?: number; max?: number; integer?: boolean } = {}): number {
    const raw = this.env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    const { min = -Infinity, max = Infinity, integer = false } = opts;
    if (!Number.isFinite(value) || (integer && !Number.isInteger(value))) {
      this.problems.push(`${name}: "${raw}" is not ${integer ? 'an integer' : 'a number'}`);
      return fallback;
    }
    if (value < min || value > max) {
      this.problems.push(`${name}: ${value} is outside ${min}..${max}`);
      return fallback;
    }
    return value;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    return this.number(name, fallback, { min, max, integer: true });
  }

  boolean(name: string, fallback: boolean): boolean {
    const raw = this.env[name];
    if (raw === undefined || raw === '') return fallback;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    this.problems.push(`${name}: "${raw}" is not a boolean (true/false)`);
    return fallback;
  }

  url(name: string, fallback: string, protocols: readonly string[]): string {
    const raw = this.string(name, fallback);
    try {
      const parsed = new URL(raw);
      if (!protocols.includes(parsed.protocol)) {
        this.problems.push(`${name}: protocol must be one of ${protocols.join(', ')}, got "${parsed.protocol}"`);
      }
    } catch {
      this.problems.push(`${name}: "${raw}" is not a URL`);
    }
    return raw;
  }

  /** A duration such as `30d`, `12h`, `90m`, `45s` or `500ms`. */
  duration(name: string, fallback: number, min: number): number {
    const raw = this.env[name];
    if (raw === undefined || raw === '') return fallback;
    const m = /^(\d{1,9})(ms|s|m|h|d)$/.exec(raw.trim());
    if (!m) {
      this.problems.push(`${name}: "${raw}" is not a duration (e.g. 30d, 12h, 90m)`);
      return fallback;
    }
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
    const value = Number(m[1]) * unit;
    if (value < min) {
      this.problems.push(`${name}: ${raw} is shorter than the minimum of ${min} ms`);
      return fallback;
    }
    return value;
  }

  /** A rate such as `300/1m` (units per window). */
  rate(name: string, fallback: RateLimit): RateLimit {
    const raw = this.env[name];
    if (raw === undefined || raw === '') return fallback;
    const m = /^(\d{1,9})\/(\d{1,6})(ms|s|m|h)$/.exec(raw.trim());
    const unit = m ? { ms: 1, s: 1000, m: 60_000, h: 3600_000 }[m[3] as 'ms' | 's' | 'm' | 'h'] : 0;
    if (!m || Number(m[1]) < 1 || Number(m[2]) * unit < 100) {
      this.problems.push(
        `${name}: "${raw}" is not a rate such as 300/1m (at least 1 per window, windows of 100ms or more)`,
      );
      return fallback;
    }
    return { limit: Number(m[1]), windowMs: Number(m[2]) * unit };
  }

  list(name: string, fallback: readonly string[], itemPattern: RegExp): string[] {
    const raw = this.env[name];
    if (raw === undefined || raw === '') return [...fallback];
    const items = raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (items.length === 0) this.problems.push(`${name}: must list at least one entry`);
    for (const item of items) {
      if (!itemPattern.test(item)) this.problems.push(`${name}: "${item}" does not match ${itemPattern}`);
    }
    return items;
  }
}

const TOPIC = /^[a-zA-Z0-9._-]{1,249}$/;
const NAME = /^[a-zA-Z0-9._-]{1,100}$/;
const HOST_PORT = /^[a-zA-Z0-9.-]+:\d{1,5}$/;

/** Environment variables this module understands; anything else starting with these prefixes is refused. */
export const KNOWN_VARIABLES = [
  'NODE_ENV',
  'REPLICA_ID',
  'HOST',
  'PORT',
  'HTTP_MAX_BODY_BYTES',
  'KAFKA_BROKERS',
  'KAFKA_CLIENT_ID',
  'KAFKA_READINGS_TOPIC',
  'KAFKA_DLQ_TOPIC',
  'KAFKA_GROUP_ID',
  'KAFKA_PARTITIONS',
  'KAFKA_REPLICATION_FACTOR',
  'KAFKA_CONSUMER_ENABLED',
  'KAFKA_SESSION_TIMEOUT_MS',
  'KAFKA_PRODUCER_BUFFER_LIMIT',
  'MONGODB_URL',
  'MONGODB_DATABASE',
  'MONGODB_ALERTS_DATABASE',
  'MONGODB_FERRETDB_SQLITE_DIR',
  'READINGS_RETENTION',
  'READINGS_RETENTION_CHECK_MS',
  'SENSORS_STOPPED_RETENTION',
  'REDIS_URL',
  'REDIS_CHANNEL_PREFIX',
  'ALERT_THRESHOLD_C',
  'ALERTS_RETENTION',
  'READING_TEMPERATURE_MIN_C',
  'READING_TEMPERATURE_MAX_C',
  'READING_MAX_AGE_MS',
  'READING_MAX_FUTURE_MS',
  'READING_MAX_MESSAGE_BYTES',
  'LIMIT_MAX_SENSORS',
  'LIMIT_MAX_SPAWN',
  'LIMIT_MIN_INTERVAL_MS',
  'LIMIT_MAX_SIMULATED_RATE',
  'LIMIT_MAX_INGEST_BATCH',
  'LIMIT_HISTORY_MAX_PAGE',
  'LIMIT_STATS_MAX_POINTS',
  'LIMIT_SUBSCRIBER_MAX_PENDING',
  'LIMIT_SOCKET_BUDGET_BYTES',
  'LIMIT_SUBSCRIPTIONS_PER_SOCKET',
  'API_KEYS',
  'AUTH_JWT_SECRET',
  'AUTH_JWKS_FILE',
  'AUTH_JWT_ISSUER',
  'AUTH_JWT_AUDIENCE',
  'AUTH_ANONYMOUS_ROLE',
  'DEV_MODE',
  'DEV_ADMIN_KEY',
  'GRAPHQL_INTROSPECTION',
  'GRAPHIQL_ENABLED',
  'CORS_ORIGINS',
  'LIMIT_QUERY_DEPTH',
  'LIMIT_QUERY_ALIASES',
  'LIMIT_QUERY_DIRECTIVES',
  'LIMIT_QUERY_COST',
  'LIMIT_QUERY_TOKENS',
  'LIMIT_OPERATION_NAME_LENGTH',
  'LIMIT_VARIABLES_DEPTH',
  'RATE_LIMIT_MUTATIONS',
  'RATE_LIMIT_INGEST',
  'RATE_LIMIT_SUBSCRIPTIONS',
  'LIMIT_CONNECTIONS',
  'LIMIT_CONNECTIONS_PER_ADDRESS',
  'LIMIT_CONNECTIONS_PER_KEY',
  'LIMIT_SENSORS_PER_KEY',
  'LIMIT_SIMULATED_RATE_PER_KEY',
  'LIMIT_STORE_READS',
  'LIMIT_STORE_READ_QUEUE',
  'SHUTDOWN_TIMEOUT_MS',
  'LOG_LEVEL',
  'LOG_FORMAT',
] as const;

/** Prefixes owned by this project: a misspelt variable under them is an error, not silently ignored. */
const OWNED_PREFIXES = [
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
];

export function loadConfig(env: Env = process.env): Config {
  const r = new EnvReader(env);
  const known = new Set<string>(KNOWN_VARIABLES);
  for (const name of Object.keys(env)) {
    if (OWNED_PREFIXES.some((p) => name.startsWith(p)) && !known.has(name)) {
      r.problems.push(
        `${name}: unknown variable (known: ${KNOWN_VARIABLES.filter((k) => OWNED_PREFIXES.some((p) => k.startsWith(p))).join(', ')})`,
      );
    }
  }

  const nodeEnv = r.string('NODE_ENV', 'development', /^(production|development|test)$/) as Config['nodeEnv'];
  const port = r.int('PORT', 4000, 0, 65535);
  const database = r.string('MONGODB_DATABASE', 'iot', /^[a-zA-Z0-9_-]{1,56}$/);
  const temperatureMinC = r.number('READING_TEMPERATURE_MIN_C', -60);
  const temperatureMaxC = r.number('READING_TEMPERATURE_MAX_C', 200);
  if (temperatureMinC >= temperatureMaxC) {
    r.problems.push(
      `READING_TEMPERATURE_MIN_C (${temperatureMinC}) must be below READING_TEMPERATURE_MAX_C (${temperatureMaxC})`,
    );
  }

  const maxAgeMs = r.int('READING_MAX_AGE_MS', 7 * 24 * 3600_000, 1000, 365 * 24 * 3600_000);
  const retentionMs = r.duration('READINGS_RETENTION', 30 * 86_400_000, 3600_000);
  // Retention deletes whole days that no valid reading can reach any more: a reading may arrive up to
  // READING_MAX_AGE_MS late, and must never land in a day that is being deleted.
  if (retentionMs < maxAgeMs + 86_400_000) {
    r.problems.push(
      `READINGS_RETENTION (${retentionMs} ms) must be at least READING_MAX_AGE_MS + 1 day (${maxAgeMs + 86_400_000} ms)`,
    );
  }

  const production = nodeEnv === 'production';
  const devMode = r.boolean('DEV_MODE', false);
  const apiKeys = parseApiKeys(r.string('API_KEYS', ''));
  r.problems.push(...apiKeys.problems);
  const devAdminKey = r.string('DEV_ADMIN_KEY', '') || undefined;
  if (devAdminKey !== undefined) {
    if (!devMode) r.problems.push('DEV_ADMIN_KEY: only allowed with DEV_MODE=true');
    const dev = parseApiKeys(`admin:${devAdminKey}`);
    r.problems.push(...dev.problems.map((p) => p.replace('API_KEYS entry 1', 'DEV_ADMIN_KEY')));
    apiKeys.keys.push(...dev.keys);
  }
  const jwtSecret = r.string('AUTH_JWT_SECRET', '') || undefined;
  if (jwtSecret !== undefined && jwtSecret.length < 32)
    r.problems.push('AUTH_JWT_SECRET: must be at least 32 characters');
  const jwksFile = r.string('AUTH_JWKS_FILE', '') || undefined;
  if (jwtSecret && jwksFile) r.problems.push('AUTH_JWT_SECRET and AUTH_JWKS_FILE: set one, not both');
  const anonymousRole = (r.string('AUTH_ANONYMOUS_ROLE', '') || undefined) as Role | undefined;
  if (anonymousRole !== undefined && !ROLES.includes(anonymousRole))
    r.problems.push(`AUTH_ANONYMOUS_ROLE: must be one of ${ROLES.join(', ')}`);
  if (anonymousRole === 'device')
    r.problems.push('AUTH_ANONYMOUS_ROLE: device needs a sensor scope, which only keys and tokens carry');
  if (apiKeys.keys.length === 0 && !jwtSecret && !jwksFile && !anonymousRole) {
    r.problems.push(
      'no way to authenticate: set API_KEYS (role:secret,...), AUTH_JWT_SECRET or AUTH_JWKS_FILE; AUTH_ANONYMOUS_ROLE=<role> lets callers without credentials in (closed networks only); `npm run demo` sets up a local admin key',
    );
  }

  const config: Config = {
    nodeEnv,
    replicaId: r.string('REPLICA_ID', `replica-${port}-${process.pid}`, NAME),
    http: {
      host: r.string('HOST', '127.0.0.1'),
      port,
      maxBodyBytes: r.int('HTTP_MAX_BODY_BYTES', 1_048_576, 1024, 64 * 1_048_576),
    },
    kafka: {
      brokers: r.list('KAFKA_BROKERS', ['127.0.0.1:9092'], HOST_PORT),
      clientId: r.string('KAFKA_CLIENT_ID', 'iot-realtime-pipeline', NAME),
      readingsTopic: r.string('KAFKA_READINGS_TOPIC', 'sensor.readings', TOPIC),
      deadLetterTopic: r.string('KAFKA_DLQ_TOPIC', 'sensor.readings.dlq', TOPIC),
      groupId: r.string('KAFKA_GROUP_ID', 'iot-realtime-pipeline', NAME),
      partitions: r.int('KAFKA_PARTITIONS', 6, 1, 1000),
      replicationFactor: r.int('KAFKA_REPLICATION_FACTOR', 1, 1, 10),
      consumerEnabled: r.boolean('KAFKA_CONSUMER_ENABLED', true),
      sessionTimeoutMs: r.int('KAFKA_SESSION_TIMEOUT_MS', 10_000, 6000, 300_000),
      producerBufferLimit: r.int('KAFKA_PRODUCER_BUFFER_LIMIT', 50_000, 100, 10_000_000),
    },
    mongo: {
      url: r.url('MONGODB_URL', 'mongodb://127.0.0.1:27017', ['mongodb:', 'mongodb+srv:']),
      database,
      alertsDatabase: r.string('MONGODB_ALERTS_DATABASE', `${database}_alerts`, /^[a-zA-Z0-9_-]{1,63}$/),
      ferretSqliteDir: r.string('MONGODB_FERRETDB_SQLITE_DIR', '') || undefined,
    },
    history: {
      retentionMs,
      retentionCheckMs: r.int('READINGS_RETENTION_CHECK_MS', 10 * 60_000, 1000, 24 * 3600_000),
      stoppedSensorsRetentionMs: r.duration('SENSORS_STOPPED_RETENTION', 86_400_000, 0),
    },
    redis: {
      url: r.url('REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:']),
      channelPrefix: r.string('REDIS_CHANNEL_PREFIX', 'iot', NAME),
    },
    alerts: {
      thresholdC: r.number('ALERT_THRESHOLD_C', 80, { min: -273.15, max: 1000 }),
      retentionMs: r.duration('ALERTS_RETENTION', 30 * 86_400_000, 60_000),
    },
    readings: {
      temperatureMinC,
      temperatureMaxC,
      maxAgeMs,
      maxFutureMs: r.int('READING_MAX_FUTURE_MS', 5 * 60_000, 0, 24 * 3600_000),
      maxMessageBytes: r.int('READING_MAX_MESSAGE_BYTES', 4096, 256, 1_048_576),
    },
    limits: {
      maxSensors: r.int('LIMIT_MAX_SENSORS', 10_000, 1, 1_000_000),
      maxSpawnPerRequest: r.int('LIMIT_MAX_SPAWN', 200, 1, 100_000),
      minIntervalMs: r.int('LIMIT_MIN_INTERVAL_MS', 10, 1, 60_000),
      maxSimulatedRate: r.int('LIMIT_MAX_SIMULATED_RATE', 10_000, 1, 10_000_000),
      maxIngestBatch: r.int('LIMIT_MAX_INGEST_BATCH', 1000, 1, 100_000),
      historyMaxPage: r.int('LIMIT_HISTORY_MAX_PAGE', 1000, 1, 100_000),
      statsMaxPoints: r.int('LIMIT_STATS_MAX_POINTS', 1500, 1, 100_000),
      subscriberMaxPending: r.int('LIMIT_SUBSCRIBER_MAX_PENDING', 1000, 1, 1_000_000),
      socketBudgetBytes: r.int('LIMIT_SOCKET_BUDGET_BYTES', 2 * 1_048_576, 16 * 1024, 1024 * 1_048_576),
      subscriptionsPerSocket: r.int('LIMIT_SUBSCRIPTIONS_PER_SOCKET', 100, 1, 100_000),
    },
    auth: {
      apiKeys: apiKeys.keys,
      jwtSecret,
      jwksFile,
      jwtIssuer: r.string('AUTH_JWT_ISSUER', '') || undefined,
      jwtAudience: r.string('AUTH_JWT_AUDIENCE', '') || undefined,
      anonymousRole,
    },
    security: {
      devMode,
      introspection: r.boolean('GRAPHQL_INTROSPECTION', !production),
      graphiql: r.boolean('GRAPHIQL_ENABLED', !production),
      corsOrigins: r.list('CORS_ORIGINS', [], /^https?:\/\/[a-zA-Z0-9.-]+(:\d{1,5})?$/),
      devAdminKey,
      operations: {
        maxDepth: r.int('LIMIT_QUERY_DEPTH', 10, 2, 100),
        maxAliases: r.int('LIMIT_QUERY_ALIASES', 20, 0, 10_000),
        maxDirectives: r.int('LIMIT_QUERY_DIRECTIVES', 10, 0, 10_000),
        maxCost: r.int('LIMIT_QUERY_COST', 25_000, 10, 100_000_000),
        maxTokens: r.int('LIMIT_QUERY_TOKENS', 5_000, 100, 1_000_000),
        maxOperationNameLength: r.int('LIMIT_OPERATION_NAME_LENGTH', 100, 1, 10_000),
        maxVariablesDepth: r.int('LIMIT_VARIABLES_DEPTH', 8, 2, 1000),
        defaultListSize: 50,
      },
      rates: {
        mutations: r.rate('RATE_LIMIT_MUTATIONS', { limit: 300, windowMs: 60_000 }),
        ingest: r.rate('RATE_LIMIT_INGEST', { limit: 120_000, windowMs: 60_000 }),
        subscriptions: r.rate('RATE_LIMIT_SUBSCRIPTIONS', { limit: 300, windowMs: 60_000 }),
      },
      maxConnections: r.int('LIMIT_CONNECTIONS', 10_000, 1, 1_000_000),
      maxConnectionsPerAddress: r.int('LIMIT_CONNECTIONS_PER_ADDRESS', 200, 1, 1_000_000),
      maxConnectionsPerKey: r.int('LIMIT_CONNECTIONS_PER_KEY', 100, 1, 1_000_000),
      maxSensorsPerKey: r.int('LIMIT_SENSORS_PER_KEY', 500, 1, 1_000_000),
      maxSimulatedRatePerKey: r.int('LIMIT_SIMULATED_RATE_PER_KEY', 2000, 1, 10_000_000),
      storeReadConcurrency: r.int('LIMIT_STORE_READS', 8, 1, 1000),
      storeReadQueue: r.int('LIMIT_STORE_READ_QUEUE', 64, 0, 100_000),
    },
    shutdownTimeoutMs: r.int('SHUTDOWN_TIMEOUT_MS', 15_000, 100, 600_000),
    logLevel: r.string(
      'LOG_LEVEL',
      nodeEnv === 'test' ? 'silent' : 'info',
      /^(fatal|error|warn|info|debug|trace|silent)$/,
    ),
    logFormat: r.string('LOG_FORMAT', 'auto', /^(auto|json|pretty)$/) as Config['logFormat'],
  };

  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return deepFreeze(config);
}

/** For entry points: the configuration, or every problem on stderr and exit code 78 (EX_CONFIG). */
export function loadConfigOrExit(env: Env = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
}

function deepFreeze<T extends object>(value: T): T {
  for (const child of Object.values(value)) {
    if (child && typeof child === 'object' && !Object.isFrozen(child)) deepFreeze(child as object);
  }
  return Object.freeze(value);
}
