/**
 * Configuration: the only module that reads `process.env`. Parsed once at start, every problem
 * reported together, result frozen.
 *
 * Every variable is declared once, in VARIABLES: its zod schema (type, bounds, default) and what it
 * is for. The set of known variables, the "unknown variable" check for the project's prefixes and
 * the check of docs/configuration.md (test/unit/config.test.ts) all come from it; `loadConfig` only
 * arranges the parsed values into the nested Config and checks what involves several variables.
 */
import { z } from 'zod';
import { parseApiKeys, ROLES, type AuthSettings, type Role } from './auth/credentials.js';
import type { OperationLimits } from './limits/operationLimits.js';
import type { RateBucket, RateLimit } from './limits/rateLimiter.js';
import { localFerretSqliteDir } from './localFerretDb.js';

export interface Config {
  readonly nodeEnv: 'production' | 'development' | 'test';
  /** Unique id of this API replica (logs, sensor ownership). */
  readonly replicaId: string;
  readonly http: {
    readonly host: string;
    readonly port: number;
    /** Largest accepted GraphQL request body, in bytes. */
    readonly maxBodyBytes: number;
    /** A WebSocket that answers no ping within this is terminated. */
    readonly wsKeepAliveMs: number;
    /** Time a new WebSocket has to send connection_init (close 4408). */
    readonly wsInitTimeoutMs: number;
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
    /**
     * The consumer groups this replica joins: the alert path, reading history, both, or neither (an
     * API-only replica). History apart keeps its store writes and their memory out of the processes
     * that publish alerts and serve subscriptions.
     */
    readonly consumers: { readonly alerts: boolean; readonly history: boolean };
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
    /** The alerts' replay pages; default the alerts database. */
    readonly alertPagesDatabase: string;
    /** Incidents, their updates, sensor limits and the incident tracker's state; default the alerts database. */
    readonly incidentsDatabase: string;
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
    /**
     * Each partition's readings are written to history at most this often (stream/readingWriter.ts):
     * the store's work follows the fleet and this interval, not the reading rate.
     */
    readonly writeIntervalMs: number;
  };
  readonly redis: {
    readonly url: string;
    /** `host:port` of some Redis Cluster nodes (sharded pub/sub); empty: the single instance at `url`. */
    readonly clusterNodes: readonly string[];
    /** Prefix of every Redis channel, so several deployments can share one Redis. */
    readonly channelPrefix: string;
  };
  readonly alerts: {
    /** A reading strictly above this temperature raises an overheat alert. */
    readonly thresholdC: number;
    /** Alerts are kept this long (by detection time); older cursors get CURSOR_EXPIRED. */
    readonly retentionMs: number;
    /**
     * A partition's judged batches are stored at most this often (stream/storeBacklog.ts): fewer,
     * larger store writes. Alerts surely new go out before; what waits for storage waits this more.
     */
    readonly storeIntervalMs: number;
  };
  /** Incidents (domain/incident.ts): the fleet default of per-sensor limits, and how they clear. */
  readonly incidents: {
    readonly hysteresisC: number;
    readonly clearReadings: number;
    readonly clearAfterMs: number;
    readonly refreshMs: number;
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
    /** Serve the dashboard at /dashboard (a static page; its data goes through the API and its credentials). */
    readonly dashboard: boolean;
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

// --- value types: each reads a string (empty = unset) and says in plain words what is wrong.

const raw = z.preprocess((v) => (v === '' ? undefined : v), z.string().optional());
type Ctx = { addIssue(issue: { code: 'custom'; message: string }): void };
const fail = (ctx: Ctx, message: string): never => {
  ctx.addIssue({ code: 'custom', message });
  return z.NEVER;
};

function num(fallback: number, min = -Infinity, max = Infinity, integer = false) {
  return raw.transform((s, ctx) => {
    if (s === undefined) return fallback;
    const n = Number(s);
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n)))
      return fail(ctx, `"${s}" is not ${integer ? 'an integer' : 'a number'}`);
    if (n < min || n > max) return fail(ctx, `${n} is outside ${min}..${max}`);
    return n;
  });
}
const int = (fallback: number, min: number, max: number) => num(fallback, min, max, true);

function text(fallback: string, pattern?: RegExp) {
  return raw.transform((s, ctx) => {
    if (s === undefined) return fallback;
    if (pattern && !pattern.test(s)) return fail(ctx, `"${s}" does not match ${String(pattern)}`);
    return s;
  });
}
/** A string with no default: undefined when unset. */
function optionalText(pattern?: RegExp) {
  return raw.transform((s, ctx) => {
    if (s === undefined) return undefined;
    if (pattern && !pattern.test(s)) return fail(ctx, `"${s}" does not match ${String(pattern)}`);
    return s;
  });
}
function oneOf<T extends string>(values: readonly T[], fallback: T) {
  return raw.transform((s, ctx): T => {
    if (s === undefined) return fallback;
    if (!values.includes(s as T)) return fail(ctx, `"${s}" is not one of ${values.join(', ')}`);
    return s as T;
  });
}
function bool(fallback: boolean | undefined) {
  return raw.transform((s, ctx) => {
    if (s === undefined) return fallback;
    if (/^(1|true|yes|on)$/i.test(s)) return true;
    if (/^(0|false|no|off)$/i.test(s)) return false;
    return fail(ctx, `"${s}" is not a boolean (true/false)`);
  });
}
function url(fallback: string, protocols: readonly string[]) {
  return raw.transform((s, ctx) => {
    const value = s ?? fallback;
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      return fail(ctx, `"${value}" is not a URL`);
    }
    if (!protocols.includes(parsed.protocol))
      return fail(ctx, `protocol must be one of ${protocols.join(', ')}, got "${parsed.protocol}"`);
    return value;
  });
}
/** A duration such as `30d`, `12h`, `90m`, `45s` or `500ms`. */
function duration(fallback: number, min: number, max = Infinity) {
  return raw.transform((s, ctx) => {
    if (s === undefined) return fallback;
    const m = /^(\d{1,9})(ms|s|m|h|d)$/.exec(s.trim());
    if (!m) return fail(ctx, `"${s}" is not a duration (e.g. 30d, 12h, 90m)`);
    const value =
      Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
    if (value < min) return fail(ctx, `${s} is shorter than the minimum of ${min} ms`);
    if (value > max) return fail(ctx, `${s} is longer than the maximum of ${max} ms`);
    return value;
  });
}
/** A rate such as `300/1m` (units per window). */
function rate(fallback: RateLimit) {
  return raw.transform((s, ctx): RateLimit => {
    if (s === undefined) return fallback;
    const m = /^(\d{1,9})\/(\d{1,6})(ms|s|m|h)$/.exec(s.trim());
    const unit = m ? { ms: 1, s: 1000, m: 60_000, h: 3600_000 }[m[3] as 'ms' | 's' | 'm' | 'h'] : 0;
    if (!m || Number(m[1]) < 1 || Number(m[2]) * unit < 100) {
      return fail(ctx, `"${s}" is not a rate such as 300/1m (at least 1 per window, windows of 100ms or more)`);
    }
    return { limit: Number(m[1]), windowMs: Number(m[2]) * unit };
  });
}
function list(fallback: readonly string[], itemPattern: RegExp) {
  return raw.transform((s, ctx) => {
    if (s === undefined) return [...fallback];
    const items = s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
    if (items.length === 0) return fail(ctx, 'must list at least one entry');
    const bad = items.filter((x) => !itemPattern.test(x));
    if (bad.length > 0)
      return fail(ctx, `${bad.map((x) => `"${x}"`).join(', ')} do(es) not match ${String(itemPattern)}`);
    return items;
  });
}

const TOPIC = /^[a-zA-Z0-9._-]{1,249}$/;
const NAME = /^[a-zA-Z0-9._-]{1,100}$/;
const HOST_PORT = /^[a-zA-Z0-9.-]+:\d{1,5}$/;
const DAY = 86_400_000;

/** Every variable the API reads, with its schema and what it is for. */
export const VARIABLES = {
  NODE_ENV: {
    schema: oneOf(['production', 'development', 'test'] as const, 'development'),
    doc: 'production switches off introspection and GraphiQL by default',
  },
  REPLICA_ID: {
    schema: optionalText(NAME),
    doc: 'names the replica in logs and sensor ownership (default replica-<port>-<pid>)',
  },
  HOST: { schema: text('127.0.0.1'), doc: 'listener address' },
  PORT: { schema: int(4000, 0, 65535), doc: 'HTTP + WebSocket listener' },
  HTTP_MAX_BODY_BYTES: {
    schema: int(1_048_576, 1024, 64 * 1_048_576),
    doc: 'largest request body and WebSocket message',
  },
  WS_KEEPALIVE_MS: {
    schema: int(12_000, 100, 600_000),
    doc: 'ping interval; a WebSocket that answers no ping within it is terminated',
  },
  WS_INIT_TIMEOUT_MS: { schema: int(3000, 100, 60_000), doc: 'time a WebSocket has to send connection_init (4408)' },
  KAFKA_BROKERS: { schema: list(['127.0.0.1:9092'], HOST_PORT), doc: 'comma-separated host:port' },
  KAFKA_CLIENT_ID: { schema: text('iot-realtime-pipeline', NAME), doc: 'Kafka client id prefix' },
  KAFKA_READINGS_TOPIC: { schema: text('sensor.readings', TOPIC), doc: 'readings topic' },
  KAFKA_DLQ_TOPIC: { schema: text('sensor.readings.dlq', TOPIC), doc: 'dead-letter topic' },
  KAFKA_GROUP_ID: { schema: text('iot-realtime-pipeline', NAME), doc: 'alert-path consumer group' },
  KAFKA_PARTITIONS: { schema: int(6, 1, 1000), doc: 'partitions when the API creates the topics' },
  KAFKA_REPLICATION_FACTOR: { schema: int(1, 1, 10), doc: 'replication factor when the API creates the topics' },
  KAFKA_CONSUMER_ENABLED: { schema: bool(true), doc: 'false for API-only replicas (as KAFKA_CONSUMERS=none)' },
  KAFKA_CONSUMERS: {
    schema: oneOf(['all', 'alerts', 'history', 'none'] as const, 'all'),
    doc: 'consumer groups this replica joins: the alert path, reading history, both (all) or none',
  },
  KAFKA_SESSION_TIMEOUT_MS: {
    schema: int(10_000, 6000, 300_000),
    doc: 'how long the group waits for a silent replica',
  },
  KAFKA_PRODUCER_BUFFER_LIMIT: {
    schema: int(50_000, 100, 10_000_000),
    doc: 'readings queued while Kafka is slow or down',
  },
  MONGODB_URL: { schema: url('mongodb://127.0.0.1:27017', ['mongodb:', 'mongodb+srv:']), doc: 'the store' },
  MONGODB_DATABASE: { schema: text('iot', /^[a-zA-Z0-9_-]{1,56}$/), doc: 'readings and sensors' },
  MONGODB_ALERTS_DATABASE: {
    schema: optionalText(/^[a-zA-Z0-9_-]{1,63}$/),
    doc: 'alerts and stream progress (default <MONGODB_DATABASE>_alerts)',
  },
  MONGODB_ALERT_PAGES_DATABASE: {
    schema: optionalText(/^[a-zA-Z0-9_-]{1,63}$/),
    doc: "the alerts' replay pages (default: the alerts database); on FerretDB/SQLite give it its own",
  },
  MONGODB_INCIDENTS_DATABASE: {
    schema: optionalText(/^[a-zA-Z0-9_-]{1,63}$/),
    doc: 'incidents, sensor limits and tracker state (default: the alerts database); on FerretDB/SQLite give it its own',
  },
  MONGODB_FERRETDB_SQLITE_DIR: {
    schema: optionalText(),
    doc: 'FerretDB on SQLite only: where the API keeps its _id indexes (found by itself for the FerretDB scripts/services.sh runs)',
  },
  READINGS_RETENTION: { schema: duration(30 * DAY, 3600_000), doc: 'history kept' },
  READINGS_RETENTION_CHECK_MS: {
    schema: int(10 * 60_000, 1000, 24 * 3600_000),
    doc: 'how often each replica purges expired days',
  },
  HISTORY_WRITE_INTERVAL: {
    schema: duration(5000, 0, 60_000),
    doc: "each partition's readings are written to history at most this often (visible up to 1.5 × later)",
  },
  SENSORS_STOPPED_RETENTION: { schema: duration(DAY, 0), doc: 'stopped simulated sensors are removed after this' },
  REDIS_URL: { schema: url('redis://127.0.0.1:6379', ['redis:', 'rediss:']), doc: 'fan-out and rate limits' },
  REDIS_CHANNEL_PREFIX: { schema: text('iot', NAME), doc: 'prefix of every Redis channel and key' },
  REDIS_CLUSTER_NODES: {
    schema: list([], HOST_PORT),
    doc: 'comma-separated host:port of some Redis Cluster nodes: sharded pub/sub, REDIS_URL unused',
  },
  ALERT_THRESHOLD_C: { schema: num(80, -273.15, 1000), doc: 'alert when temperature is strictly above' },
  ALERTS_RETENTION: { schema: duration(30 * DAY, 60_000), doc: 'alerts kept; older cursors get CURSOR_EXPIRED' },
  ALERT_STORE_INTERVAL: {
    schema: duration(250, 0, 10_000),
    doc: 'the alert path stores a partition at most this often (alerts surely new are published before)',
  },
  INCIDENT_HYSTERESIS_C: { schema: num(2, 0, 1000), doc: 'an incident clears at or below threshold minus this' },
  INCIDENT_CLEAR_READINGS: { schema: int(3, 1, 10_000), doc: 'consecutive readings at the clearing level to clear' },
  INCIDENT_CLEAR_AFTER: { schema: duration(0, 0), doc: '...spanning at least this long' },
  INCIDENT_REFRESH_INTERVAL: {
    schema: duration(5000, 0),
    doc: 'an incident document is rewritten for updates at most this often',
  },
  INCIDENTS_RETENTION: { schema: duration(90 * DAY, 60_000), doc: 'cleared incidents kept' },
  READING_TEMPERATURE_MIN_C: { schema: num(-60), doc: 'lowest valid temperature' },
  READING_TEMPERATURE_MAX_C: { schema: num(200), doc: 'highest valid temperature' },
  READING_MAX_AGE_MS: { schema: int(7 * DAY, 1000, 365 * DAY), doc: 'older readings are refused' },
  READING_MAX_FUTURE_MS: { schema: int(5 * 60_000, 0, DAY), doc: 'clock skew allowance' },
  READING_MAX_MESSAGE_BYTES: { schema: int(4096, 256, 1_048_576), doc: 'largest Kafka message accepted' },
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
  API_KEYS: { schema: text(''), doc: 'role:secret[:sensorA|sensorB], comma-separated' },
  AUTH_JWT_SECRET: { schema: optionalText(), doc: 'HMAC secret for JWTs' },
  AUTH_JWKS_FILE: { schema: optionalText(), doc: 'JWKS file of public keys for JWTs' },
  AUTH_JWT_ISSUER: { schema: optionalText(), doc: 'required iss' },
  AUTH_JWT_AUDIENCE: { schema: optionalText(), doc: 'required aud' },
  AUTH_ANONYMOUS_ROLE: { schema: optionalText(), doc: 'role of callers without credentials (closed networks only)' },
  DEV_MODE: { schema: bool(false), doc: 'detailed errors to clients' },
  DEV_ADMIN_KEY: { schema: optionalText(), doc: 'dev mode only: an admin key prefilled in GraphiQL' },
  GRAPHQL_INTROSPECTION: { schema: bool(undefined), doc: 'default: on unless NODE_ENV=production' },
  GRAPHIQL_ENABLED: { schema: bool(undefined), doc: 'default: on unless NODE_ENV=production' },
  DASHBOARD_ENABLED: { schema: bool(true), doc: 'the operator dashboard at /dashboard (its data needs a credential)' },
  CORS_ORIGINS: { schema: list([], /^https?:\/\/[a-zA-Z0-9.-]+(:\d{1,5})?$/), doc: 'allowed origins, exact' },
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
  SHUTDOWN_TIMEOUT_MS: { schema: int(15_000, 100, 600_000), doc: 'deadline of the graceful shutdown' },
  LOG_LEVEL: {
    schema: optionalText(/^(fatal|error|warn|info|debug|trace|silent)$/),
    doc: 'default info (silent in tests)',
  },
  LOG_FORMAT: {
    schema: oneOf(['auto', 'json', 'pretty'] as const, 'auto'),
    doc: 'auto: pretty at a terminal, JSON otherwise',
  },
} as const;

export const KNOWN_VARIABLES = Object.keys(VARIABLES) as (keyof typeof VARIABLES)[];

type Shape = { [K in keyof typeof VARIABLES]: (typeof VARIABLES)[K]['schema'] };
const ENV_SCHEMA = z.object(Object.fromEntries(Object.entries(VARIABLES).map(([k, v]) => [k, v.schema])) as Shape);

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
  const problems: string[] = [];
  const known = new Set<string>(KNOWN_VARIABLES);
  for (const name of Object.keys(env)) {
    if (OWNED_PREFIXES.some((p) => name.startsWith(p)) && !known.has(name)) {
      problems.push(
        `${name}: unknown variable (known: ${KNOWN_VARIABLES.filter((k) => OWNED_PREFIXES.some((p) => k.startsWith(p))).join(', ')})`,
      );
    }
  }
  const given: Record<string, string | undefined> = Object.fromEntries(KNOWN_VARIABLES.map((k) => [k, env[k]]));
  let parsed = ENV_SCHEMA.safeParse(given);
  if (!parsed.success) {
    // Report them, then go on with the defaults in their place, so that the checks across
    // variables below still run: one error lists every problem.
    for (const issue of parsed.error.issues) {
      problems.push(`${issue.path.join('.')}: ${issue.message}`);
      delete given[String(issue.path[0])];
    }
    parsed = ENV_SCHEMA.safeParse(given);
    if (!parsed.success) throw new ConfigError(problems);
  }
  const e = parsed.data;

  // What involves several variables.
  if (e.READING_TEMPERATURE_MIN_C >= e.READING_TEMPERATURE_MAX_C) {
    problems.push(
      `READING_TEMPERATURE_MIN_C (${e.READING_TEMPERATURE_MIN_C}) must be below READING_TEMPERATURE_MAX_C (${e.READING_TEMPERATURE_MAX_C})`,
    );
  }
  // Retention deletes whole days that no valid reading can reach any more: a reading may arrive up to
  // READING_MAX_AGE_MS late, and must never land in a day that is being deleted.
  if (e.READINGS_RETENTION < e.READING_MAX_AGE_MS + DAY) {
    problems.push(
      `READINGS_RETENTION (${e.READINGS_RETENTION} ms) must be at least READING_MAX_AGE_MS + 1 day (${e.READING_MAX_AGE_MS + DAY} ms)`,
    );
  }
  const apiKeys = parseApiKeys(e.API_KEYS);
  problems.push(...apiKeys.problems);
  if (e.DEV_ADMIN_KEY !== undefined) {
    if (!e.DEV_MODE) problems.push('DEV_ADMIN_KEY: only allowed with DEV_MODE=true');
    const dev = parseApiKeys(`admin:${e.DEV_ADMIN_KEY}`);
    problems.push(...dev.problems.map((p) => p.replace('API_KEYS entry 1', 'DEV_ADMIN_KEY')));
    apiKeys.keys.push(...dev.keys);
  }
  if (e.AUTH_JWT_SECRET !== undefined && e.AUTH_JWT_SECRET.length < 32)
    problems.push('AUTH_JWT_SECRET: must be at least 32 characters');
  if (e.AUTH_JWT_SECRET && e.AUTH_JWKS_FILE) problems.push('AUTH_JWT_SECRET and AUTH_JWKS_FILE: set one, not both');
  const anonymousRole = e.AUTH_ANONYMOUS_ROLE as Role | undefined;
  if (anonymousRole !== undefined && !ROLES.includes(anonymousRole))
    problems.push(`AUTH_ANONYMOUS_ROLE: must be one of ${ROLES.join(', ')}`);
  if (anonymousRole === 'device')
    problems.push('AUTH_ANONYMOUS_ROLE: device needs a sensor scope, which only keys and tokens carry');
  if (apiKeys.keys.length === 0 && !e.AUTH_JWT_SECRET && !e.AUTH_JWKS_FILE && !anonymousRole) {
    problems.push(
      'no way to authenticate: set API_KEYS (role:secret,...), AUTH_JWT_SECRET or AUTH_JWKS_FILE; AUTH_ANONYMOUS_ROLE=<role> lets callers without credentials in (closed networks only); `npm run demo` sets up a local admin key',
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const alertsDatabase = e.MONGODB_ALERTS_DATABASE ?? `${e.MONGODB_DATABASE}_alerts`;

  const production = e.NODE_ENV === 'production';
  const config: Config = {
    nodeEnv: e.NODE_ENV,
    replicaId: e.REPLICA_ID ?? `replica-${e.PORT}-${process.pid}`,
    http: {
      host: e.HOST,
      port: e.PORT,
      maxBodyBytes: e.HTTP_MAX_BODY_BYTES,
      wsKeepAliveMs: e.WS_KEEPALIVE_MS,
      wsInitTimeoutMs: e.WS_INIT_TIMEOUT_MS,
    },
    kafka: {
      brokers: e.KAFKA_BROKERS,
      clientId: e.KAFKA_CLIENT_ID,
      readingsTopic: e.KAFKA_READINGS_TOPIC,
      deadLetterTopic: e.KAFKA_DLQ_TOPIC,
      groupId: e.KAFKA_GROUP_ID,
      partitions: e.KAFKA_PARTITIONS,
      replicationFactor: e.KAFKA_REPLICATION_FACTOR,
      consumers: {
        alerts: e.KAFKA_CONSUMER_ENABLED !== false && ['all', 'alerts'].includes(e.KAFKA_CONSUMERS),
        history: e.KAFKA_CONSUMER_ENABLED !== false && ['all', 'history'].includes(e.KAFKA_CONSUMERS),
      },
      sessionTimeoutMs: e.KAFKA_SESSION_TIMEOUT_MS,
      producerBufferLimit: e.KAFKA_PRODUCER_BUFFER_LIMIT,
    },
    mongo: {
      url: e.MONGODB_URL,
      database: e.MONGODB_DATABASE,
      alertsDatabase,
      alertPagesDatabase: e.MONGODB_ALERT_PAGES_DATABASE ?? alertsDatabase,
      incidentsDatabase: e.MONGODB_INCIDENTS_DATABASE ?? alertsDatabase,
      // Unset: found by itself when the store is the FerretDB scripts/services.sh runs (localFerretDb.ts).
      ferretSqliteDir: e.MONGODB_FERRETDB_SQLITE_DIR ?? localFerretSqliteDir(e.MONGODB_URL),
    },
    history: {
      retentionMs: e.READINGS_RETENTION,
      retentionCheckMs: e.READINGS_RETENTION_CHECK_MS,
      stoppedSensorsRetentionMs: e.SENSORS_STOPPED_RETENTION,
      writeIntervalMs: e.HISTORY_WRITE_INTERVAL,
    },
    redis: { url: e.REDIS_URL, channelPrefix: e.REDIS_CHANNEL_PREFIX, clusterNodes: e.REDIS_CLUSTER_NODES },
    alerts: {
      thresholdC: e.ALERT_THRESHOLD_C,
      retentionMs: e.ALERTS_RETENTION,
      storeIntervalMs: e.ALERT_STORE_INTERVAL,
    },
    incidents: {
      hysteresisC: e.INCIDENT_HYSTERESIS_C,
      clearReadings: e.INCIDENT_CLEAR_READINGS,
      clearAfterMs: e.INCIDENT_CLEAR_AFTER,
      refreshMs: e.INCIDENT_REFRESH_INTERVAL,
      retentionMs: e.INCIDENTS_RETENTION,
    },
    readings: {
      temperatureMinC: e.READING_TEMPERATURE_MIN_C,
      temperatureMaxC: e.READING_TEMPERATURE_MAX_C,
      maxAgeMs: e.READING_MAX_AGE_MS,
      maxFutureMs: e.READING_MAX_FUTURE_MS,
      maxMessageBytes: e.READING_MAX_MESSAGE_BYTES,
    },
    limits: {
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
    },
    auth: {
      apiKeys: apiKeys.keys,
      jwtSecret: e.AUTH_JWT_SECRET,
      jwksFile: e.AUTH_JWKS_FILE,
      jwtIssuer: e.AUTH_JWT_ISSUER,
      jwtAudience: e.AUTH_JWT_AUDIENCE,
      anonymousRole,
    },
    security: {
      devMode: e.DEV_MODE ?? false,
      introspection: e.GRAPHQL_INTROSPECTION ?? !production,
      graphiql: e.GRAPHIQL_ENABLED ?? !production,
      dashboard: e.DASHBOARD_ENABLED !== false,
      corsOrigins: e.CORS_ORIGINS,
      devAdminKey: e.DEV_ADMIN_KEY,
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
    },
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL ?? (e.NODE_ENV === 'test' ? 'silent' : 'info'),
    logFormat: e.LOG_FORMAT,
  };
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
