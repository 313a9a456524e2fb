/**
 * The configuration as the rest of the API sees it (Config), and its parser: every variable read
 * once, every problem reported together, the result frozen. The sections come from each concern's
 * file; here are only what involves several concerns and the values at the top.
 */
import type { AuthSettings } from '../auth/credentials.js';
import type { TracingSettings } from '../observability/tracing.js';
import { alertSettings, incidentSettings, type AlertSettings, type IncidentSettings } from './alerts.js';
import { authSettings, exposureSettings, type ExposureSettings } from './auth.js';
import { historySettings, type HistorySettings } from './history.js';
import { httpSettings, type HttpSettings } from './http.js';
import { kafkaSettings, type KafkaSettings } from './kafka.js';
import { limitSettings, type LimitSettings } from './limits.js';
import { readingSettings, type ReadingSettings } from './readings.js';
import { redisSettings, type RedisSettings } from './redis.js';
import { requestLimitSettings, type RequestLimitSettings } from './requestLimits.js';
import { storeSettings, type StoreSettings } from './store.js';
import { tracingSettings } from './tracing.js';
import { DAY } from './values.js';
import { ENV_SCHEMA, KNOWN_VARIABLES, OWNED_PREFIXES } from './variables.js';

export interface Config {
  readonly nodeEnv: 'production' | 'development' | 'test';
  /** Unique id of this API replica (logs, sensor ownership). */
  readonly replicaId: string;
  readonly http: HttpSettings;
  readonly kafka: KafkaSettings;
  readonly mongo: StoreSettings;
  readonly history: HistorySettings;
  readonly redis: RedisSettings;
  readonly alerts: AlertSettings;
  readonly incidents: IncidentSettings;
  readonly readings: ReadingSettings;
  readonly limits: LimitSettings;
  readonly auth: AuthSettings;
  readonly security: ExposureSettings & RequestLimitSettings;
  /** OpenTelemetry tracing (OTEL_*): off when no endpoint is set. */
  readonly tracing: TracingSettings;
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
  const auth = authSettings(e, problems);
  if (problems.length > 0) throw new ConfigError(problems);

  const config: Config = {
    nodeEnv: e.NODE_ENV,
    replicaId: e.REPLICA_ID ?? `replica-${e.PORT}-${process.pid}`,
    http: httpSettings(e),
    kafka: kafkaSettings(e),
    mongo: storeSettings(e),
    history: historySettings(e),
    redis: redisSettings(e),
    alerts: alertSettings(e),
    incidents: incidentSettings(e),
    readings: readingSettings(e),
    limits: limitSettings(e),
    auth,
    security: { ...exposureSettings(e, e.NODE_ENV === 'production'), ...requestLimitSettings(e) },
    tracing: tracingSettings(e),
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
