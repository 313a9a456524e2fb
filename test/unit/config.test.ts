import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { ConfigError, KNOWN_VARIABLES, loadConfig, VARIABLES } from '../../src/config.js';
import { ErrorCode } from '../../src/errors.js';

/** A credential: configuration refuses a server nobody could authenticate to. */
const KEYS = { API_KEYS: 'admin:0123456789abcdef0123' } as const;

describe('configuration', () => {
  it('defaults to the local services on loopback', () => {
    const c = loadConfig(KEYS);
    expect(c.http).toMatchObject({ host: '127.0.0.1', port: 4000 });
    expect(c.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(c.kafka.readingsTopic).toBe('sensor.readings');
    expect(c.kafka.deadLetterTopic).toBe('sensor.readings.dlq');
    expect(c.mongo.url).toBe('mongodb://127.0.0.1:27017');
    expect(c.redis.url).toBe('redis://127.0.0.1:6379');
    expect(c.alerts.thresholdC).toBe(80);
  });

  it('reads every variable once and freezes the result', () => {
    const c = loadConfig({ ...KEYS, PORT: '4100', ALERT_THRESHOLD_C: '75.5', KAFKA_BROKERS: 'k1:9092, k2:9092' });
    expect(c.http.port).toBe(4100);
    expect(c.alerts.thresholdC).toBe(75.5);
    expect(c.kafka.brokers).toEqual(['k1:9092', 'k2:9092']);
    expect(Object.isFrozen(c.kafka)).toBe(true);
  });

  it('keeps the alert path in the alerts database unless its parts are given their own', () => {
    const shared = loadConfig({ ...KEYS, MONGODB_DATABASE: 'plant' });
    expect(shared.mongo).toMatchObject({
      database: 'plant',
      alertsDatabase: 'plant_alerts',
      alertPagesDatabase: 'plant_alerts',
      incidentsDatabase: 'plant_alerts',
    });
    const spread = loadConfig({
      ...KEYS,
      MONGODB_ALERTS_DATABASE: 'a',
      MONGODB_ALERT_PAGES_DATABASE: 'a_pages',
      MONGODB_INCIDENTS_DATABASE: 'a_incidents',
    });
    expect(spread.mongo).toMatchObject({
      alertsDatabase: 'a',
      alertPagesDatabase: 'a_pages',
      incidentsDatabase: 'a_incidents',
    });
    expect(() => loadConfig({ ...KEYS, MONGODB_INCIDENTS_DATABASE: '../etc' })).toThrow(/MONGODB_INCIDENTS_DATABASE/);
  });

  it('reports every problem in one error', () => {
    let error: unknown;
    try {
      loadConfig({
        ...KEYS,
        PORT: 'eighty',
        ALERT_THRESHOLD_C: 'hot',
        MONGODB_URL: 'http://x',
        KAFKA_BROKRS: 'typo:1',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/PORT/);
    expect(problems).toMatch(/ALERT_THRESHOLD_C/);
    expect(problems).toMatch(/MONGODB_URL/);
    expect(problems).toMatch(/KAFKA_BROKRS: unknown variable/);
    expect((error as ConfigError).problems).toHaveLength(4);
  });

  it('joins both consumer groups by default, one of them or none when told, and refuses any other', () => {
    expect(loadConfig(KEYS).kafka.consumers).toEqual({ alerts: true, history: true });
    expect(loadConfig({ ...KEYS, KAFKA_CONSUMERS: 'alerts' }).kafka.consumers).toEqual({
      alerts: true,
      history: false,
    });
    expect(loadConfig({ ...KEYS, KAFKA_CONSUMERS: 'history' }).kafka.consumers).toEqual({
      alerts: false,
      history: true,
    });
    expect(loadConfig({ ...KEYS, KAFKA_CONSUMERS: 'none' }).kafka.consumers).toEqual({ alerts: false, history: false });
    // The older switch still makes an API-only replica.
    expect(loadConfig({ ...KEYS, KAFKA_CONSUMER_ENABLED: 'false' }).kafka.consumers).toEqual({
      alerts: false,
      history: false,
    });
    expect(() => loadConfig({ ...KEYS, KAFKA_CONSUMERS: 'alerts,history' })).toThrow(/KAFKA_CONSUMERS/);
  });

  it('refuses an impossible temperature range', () => {
    expect(() => loadConfig({ ...KEYS, READING_TEMPERATURE_MIN_C: '50', READING_TEMPERATURE_MAX_C: '10' })).toThrow(
      /must be below/,
    );
  });
});

describe('history configuration', () => {
  it('reads READINGS_RETENTION as a duration, 30 days by default', () => {
    expect(loadConfig(KEYS).history.retentionMs).toBe(30 * 86_400_000);
    expect(loadConfig({ ...KEYS, READINGS_RETENTION: '12d' }).history.retentionMs).toBe(12 * 86_400_000);
    expect(() => loadConfig({ ...KEYS, READINGS_RETENTION: 'a month' })).toThrow(
      /READINGS_RETENTION: "a month" is not a duration/,
    );
  });

  it('refuses a retention that could delete a day a valid late reading may still reach', () => {
    expect(() => loadConfig({ ...KEYS, READINGS_RETENTION: '7d' })).toThrow(
      /READINGS_RETENTION .* must be at least READING_MAX_AGE_MS \+ 1 day/,
    );
    expect(loadConfig({ ...KEYS, READINGS_RETENTION: '2d', READING_MAX_AGE_MS: '3600000' }).history.retentionMs).toBe(
      2 * 86_400_000,
    );
  });

  it('refuses misspelt READINGS_ variables', () => {
    expect(() => loadConfig({ ...KEYS, READINGS_RETENTON: '30d' })).toThrow(/READINGS_RETENTON: unknown variable/);
  });

  it('refuses to start with no way to authenticate, and names the ways', () => {
    expect(() => loadConfig({})).toThrow(/no way to authenticate: set API_KEYS/);
  });

  it('parses API keys with roles and sensor scopes, never echoing a secret', () => {
    const c = loadConfig({ API_KEYS: 'viewer:viewer-secret-000001,device:device-secret-0000001:s1|s2' });
    expect(c.auth.apiKeys.map((k) => [k.role, k.sensors])).toEqual([
      ['viewer', undefined],
      ['device', ['s1', 's2']],
    ]);
    let problems: readonly string[] = [];
    try {
      loadConfig({ API_KEYS: 'root:short,device:device-secret-0000001' });
    } catch (err) {
      problems = (err as ConfigError).problems;
    }
    expect(problems.join('\n')).toMatch(/entry 1: role must be one of viewer, operator, device, admin/);
    expect(problems.join('\n')).toMatch(/entry 2: a device key must name its sensors/);
    expect(problems.join('\n')).not.toMatch(/short|device-secret/);
  });

  it('is safe by default: no stack traces, and in production no introspection or GraphiQL', () => {
    const dev = loadConfig(KEYS);
    expect(dev.security.devMode).toBe(false);
    const prod = loadConfig({ ...KEYS, NODE_ENV: 'production' });
    expect(prod.security).toMatchObject({ devMode: false, introspection: false, graphiql: false, corsOrigins: [] });
    expect(() => loadConfig({ ...KEYS, DEV_ADMIN_KEY: 'a-dev-admin-key-0001' })).toThrow(
      /DEV_ADMIN_KEY: only allowed with DEV_MODE=true/,
    );
  });

  it('reads rate limits as units per window', () => {
    expect(loadConfig({ ...KEYS, RATE_LIMIT_MUTATIONS: '10/1s' }).security.rates.mutations).toEqual({
      limit: 10,
      windowMs: 1000,
    });
    expect(() => loadConfig({ ...KEYS, RATE_LIMIT_INGEST: 'lots' })).toThrow(/RATE_LIMIT_INGEST: "lots" is not a rate/);
  });
});

describe('the configuration table (docs/configuration.md)', () => {
  const page = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  /** Rows whose first cell is one variable: `| \`NAME\` | default | what it does |`. */
  const rows = [...page.matchAll(/^\| `([A-Z][A-Z0-9_]{2,})` +\| ([^|]+?) +\|/gm)].map((m) => ({
    name: m[1]!,
    cell: m[2]!,
  }));

  it('has one row for every variable the API reads, and none for another', () => {
    const documented = rows.map((r) => r.name);
    expect(documented.filter((v, i) => documented.indexOf(v) !== i)).toEqual([]);
    expect([...KNOWN_VARIABLES].sort()).toEqual([...documented].sort());
  });

  it('gives each variable the default VARIABLES declares', () => {
    const units = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
    const duration = (text: string): number | undefined => {
      const m = /^(\d+)(ms|s|m|h|d)$/.exec(text);
      return m ? Number(m[1]) * units[m[2] as keyof typeof units] : undefined;
    };
    /** The default as the page writes it: `unset`, a number, a `literal`, or `derived` (computed at start). */
    const written = (name: string, cell: string, declared: unknown): unknown => {
      if (cell === 'unset')
        return Array.isArray(declared) && declared.length === 0 ? declared : declared === '' ? '' : undefined;
      if (cell === 'derived') return undefined;
      if (/^-?\d+$/.test(cell)) return Number(cell);
      const literal = /^`([^`]+)`$/.exec(cell)?.[1];
      if (literal === undefined)
        throw new Error(`${name}: default "${cell}" is not unset, derived, a number or a literal`);
      if (typeof declared === 'number') return duration(literal) ?? Number(literal);
      if (typeof declared === 'boolean') return literal === 'true' ? true : literal === 'false' ? false : literal;
      if (Array.isArray(declared)) return literal.split(',');
      if (declared && typeof declared === 'object') {
        const [limit, window] = literal.split('/');
        return { limit: Number(limit), windowMs: duration(window ?? '') };
      }
      return literal;
    };
    const wrong = rows.flatMap(({ name, cell }) => {
      const variable = VARIABLES[name as keyof typeof VARIABLES];
      if (!variable) return [];
      const declared: unknown = variable.schema.parse(undefined);
      return JSON.stringify(written(name, cell, declared)) === JSON.stringify(declared)
        ? []
        : [`${name}: the page says ${cell}, VARIABLES declares ${JSON.stringify(declared)}`];
    });
    expect(wrong).toEqual([]);
  });
});

describe('the docs', () => {
  const pages = [
    'README.md',
    ...readdirSync(new URL('../../docs/', import.meta.url))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  const text = pages.map((p) => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8')).join('\n');

  it('name no variable the API does not read', () => {
    const named = new Set([...text.matchAll(/`([A-Z][A-Z0-9_]+[A-Z0-9])`/g)].map((m) => m[1]!));
    const ours =
      /^(KAFKA|MONGODB|REDIS|ALERT|ALERTS|INCIDENT|INCIDENTS|READING|READINGS|SENSORS|LIMIT|SHUTDOWN|AUTH|RATE_LIMIT|DEV|GRAPHQL|GRAPHIQL|DASHBOARD|CORS|API|LOG|HTTP|HISTORY|WS)_/;
    // Error codes are named too: ours, and those graphql-js errors carry over HTTP and WebSocket alike.
    const codes = new Set<string>([...Object.values(ErrorCode), 'GRAPHQL_VALIDATION_FAILED', 'GRAPHQL_PARSE_FAILED']);
    const known = new Set<string>(KNOWN_VARIABLES);
    expect([...named].filter((v) => ours.test(v) && !codes.has(v) && !known.has(v))).toEqual([]);
  });
});
