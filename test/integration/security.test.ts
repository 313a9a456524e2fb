/**
 * Who may do what, and what no one may do: two replica processes in production mode with API keys
 * and JWTs, against the real services. Every role × every operation over HTTP and WebSocket; bad
 * credentials; device and viewer scopes; a token expiring mid-subscription, then a loss-free
 * resume; a corpus of abusive documents refused before execution; a rate limit shared by the two
 * replicas; connection limits; and no internals in any error.
 */
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isolatedEnv, uniqueName } from '../support/env.js';
import { codesOf, postGraphQL, wsGraphQL, type HttpOutcome, type WireError } from '../support/graphqlCalls.js';
import { spawnReplica, type ReplicaProcess } from '../support/pipeline.js';
import { eventually } from '../support/wait.js';

const KEY = {
  admin: 'admin-secret-0000000001',
  operator: 'operator-secret-000001',
  viewer: 'viewer-secret-00000001',
  device: 'device-secret-00000001',
  scopedViewer: 'scoped-viewer-secret-01',
  rate: 'rate-operator-secret-01',
  connections: 'conn-admin-secret-00001',
  ingestDevice: 'ingest-device-secret-001',
} as const;
const ALLOWED_ORIGIN = 'https://ops.example.com';
const JWT_SECRET = 'jwt-secret-for-the-security-suite-0123456789';
const devA = uniqueName('devA');
const devB = uniqueName('devB');
const devC = uniqueName('devC');

const env = isolatedEnv('security', {
  NODE_ENV: 'production',
  // The production defaults, not the open access of the other suites (empty = default)...
  AUTH_ANONYMOUS_ROLE: '',
  CORS_ORIGINS: ALLOWED_ORIGIN,
  RATE_LIMIT_SUBSCRIPTIONS: '',
  LIMIT_CONNECTIONS_PER_ADDRESS: '',
  LIMIT_SIMULATED_RATE_PER_KEY: '',
  // ...except a few set low enough to reach here.
  RATE_LIMIT_MUTATIONS: '30/1m',
  RATE_LIMIT_INGEST: '60/1m',
  LIMIT_CONNECTIONS_PER_KEY: '3',
  LIMIT_SENSORS_PER_KEY: '4',
  API_KEYS: [
    `admin:${KEY.admin}`,
    `operator:${KEY.operator}`,
    `viewer:${KEY.viewer}`,
    `device:${KEY.device}:${devA}`,
    `viewer:${KEY.scopedViewer}:${devA}`,
    `operator:${KEY.rate}`,
    `admin:${KEY.connections}`,
    `device:${KEY.ingestDevice}:${devC}`,
  ].join(','),
  AUTH_JWT_SECRET: JWT_SECRET,
});

let a: ReplicaProcess;
let b: ReplicaProcess;
/** Every error body seen in this file: scanned for leaks at the end. */
const seenErrors: WireError[] = [];

const bearer = (secret: string): string => `Bearer ${secret}`;
const nest = (levels: number): unknown => {
  let v: unknown = 0;
  for (let i = 0; i < levels; i++) v = [v];
  return v;
};
async function jwt(
  claims: Record<string, unknown>,
  expiresInS: number,
  secret = JWT_SECRET,
  subject = 'tester',
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(subject)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + expiresInS)
    .sign(new TextEncoder().encode(secret));
}

async function http(
  url: string,
  body: unknown,
  credential?: string,
  headers: Record<string, string> = {},
): Promise<HttpOutcome> {
  const out = await postGraphQL(url, body, credential, headers);
  seenErrors.push(...(out.errors ?? []));
  return out;
}
async function ws(...args: Parameters<typeof wsGraphQL>): ReturnType<typeof wsGraphQL> {
  const out = await wsGraphQL(...args);
  seenErrors.push(...(out.errors ?? []), ...out.results.flatMap((r) => r.errors ?? []));
  return out;
}

function criticalReading(sensorId: string, offsetMs: number, temperature = 95): Record<string, unknown> {
  return {
    sensorId,
    ts: new Date(Date.now() - 60_000 + offsetMs).toISOString(),
    temperature,
    humidity: 40,
    location: { lat: 52.5, lon: 13.4 },
  };
}
const INGEST = 'mutation Ingest($readings: [ReadingInput!]!) { ingestReadings(readings: $readings) { accepted } }';
async function ingestAsAdmin(readings: Record<string, unknown>[]): Promise<void> {
  const out = await http(a.url, { query: INGEST, variables: { readings } }, bearer(KEY.admin));
  expect(out.errors).toBeUndefined();
}
async function alertIdsOf(sensorId: string): Promise<string[]> {
  const out = await http(
    a.url,
    { query: `{ alerts(sensorId: "${sensorId}", first: 100) { nodes { id } } }` },
    bearer(KEY.admin),
  );
  return ((out.data?.alerts as { nodes: { id: string }[] } | undefined)?.nodes ?? []).map((n) => n.id);
}
async function cursorNow(): Promise<string> {
  return (await http(a.url, { query: '{ alertsCursor }' }, bearer(KEY.admin))).data!.alertsCursor as string;
}

/** The operations of the schema, each as a document a role may or may not run. */
const now = Date.now();
const OPERATIONS: Record<string, { query: string; variables?: Record<string, unknown> }> = {
  readings: { query: `{ readings(sensorId: "${devA}", first: 1) { nodes { ts } } }` },
  readingStats: {
    query: `{ readingStats(sensorId: "${devA}", from: "${new Date(now - 3600_000).toISOString()}", to: "${new Date(now).toISOString()}", every: HOUR) { count } }`,
  },
  alerts: { query: `{ alerts(sensorId: "${devA}", first: 1) { nodes { id } } }` },
  alertsCursor: { query: '{ alertsCursor }' },
  sensors: { query: '{ sensors(first: 1) { nodes { id } } }' },
  spawnSensors: { query: 'mutation { spawnSensors(input: { count: 1, intervalMs: 60000 }) { sensors { id } } }' },
  stopSensors: { query: 'mutation { stopSensors(ids: ["no-such-sensor"]) }' },
  stopAllSensors: { query: 'mutation { stopSensors }' },
  ingestReadings: { query: INGEST, variables: { readings: [{ ...criticalReading(devA, 0, 20) }] } },
  introspection: { query: '{ __schema { queryType { name } } }' },
};
type Operation = string;
const READ: Operation[] = ['readings', 'readingStats', 'alerts', 'alertsCursor', 'sensors', 'overheatAlerts'];
const ALLOWED: Record<'viewer' | 'operator' | 'device' | 'admin', Operation[]> = {
  viewer: READ,
  operator: [...READ, 'spawnSensors', 'stopSensors'],
  device: ['ingestReadings'],
  // Introspection is off in production, for everyone (the schema is published as schema.graphql).
  admin: [...READ, 'spawnSensors', 'stopSensors', 'stopAllSensors', 'ingestReadings'],
};

let cursorBeforeHot: string;

beforeAll(async () => {
  [a, b] = await Promise.all([spawnReplica(env), spawnReplica(env)]);
  cursorBeforeHot = await cursorNow();
  await ingestAsAdmin([criticalReading(devA, 1)]);
  await eventually(
    () => alertIdsOf(devA),
    (ids) => ids.length === 1,
    { what: 'the first devA alert' },
  );
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

describe('authentication', () => {
  it('refuses a missing, malformed, unknown, expired or wrongly signed credential over HTTP with UNAUTHENTICATED (401)', async () => {
    const query = { query: '{ alertsCursor }' };
    const cases: [string, string | undefined, RegExp][] = [
      ['absent', undefined, /credential required/],
      ['not Bearer', `Basic ${KEY.viewer}`, /malformed/],
      ['empty Bearer', 'Bearer ', /malformed/],
      ['unknown key', bearer('not-a-key-of-this-server'), /invalid credential/],
      ['expired token', bearer(await jwt({ role: 'viewer' }, -10)), /token expired/],
      [
        'wrongly signed token',
        bearer(await jwt({ role: 'admin' }, 600, 'another-secret-of-32-characters-or-more')),
        /invalid token/,
      ],
      [
        'unsigned token (alg none)',
        `Bearer ${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ role: 'admin', exp: 9e9 })).toString('base64url')}.`,
        /invalid/,
      ],
      ['token without role', bearer(await jwt({}, 600)), /role claim/],
      ['device token without sensors', bearer(await jwt({ role: 'device' }, 600)), /sensors claim/],
    ];
    for (const [what, credential, reason] of cases) {
      const out = await http(a.url, query, credential);
      expect({ what, status: out.status, codes: codesOf(out), data: out.data }).toEqual({
        what,
        status: 401,
        codes: ['UNAUTHENTICATED'],
        data: undefined,
      });
      expect(out.errors![0]!.message, what).toMatch(reason);
      expect(out.headers.get('www-authenticate')).toBe('Bearer');
    }
  });

  it('closes a WebSocket with 4403 when connection_init carries no valid credential', async () => {
    const payload = { query: '{ alertsCursor }' };
    for (const params of [
      undefined,
      {},
      { authorization: 'nope' },
      { authorization: bearer('unknown-key-000000000') },
      { authorization: bearer(await jwt({ role: 'viewer' }, -5)) },
    ]) {
      const out = await ws(a.url, payload, params);
      expect({ params, close: out.closeCode, results: out.results }).toEqual({ params, close: 4403, results: [] });
    }
  });

  it('accepts a valid token over HTTP and WebSocket', async () => {
    const token = bearer(await jwt({ role: 'viewer' }, 600));
    expect((await http(b.url, { query: '{ alertsCursor }' }, token)).data?.alertsCursor).toEqual(expect.any(String));
    const out = await ws(b.url, { query: '{ alertsCursor }' }, { authorization: token });
    expect(out.results[0]?.data?.alertsCursor).toEqual(expect.any(String));
  });
});

describe('roles, on every operation, over HTTP and WebSocket alike', () => {
  for (const role of ['viewer', 'operator', 'device', 'admin'] as const) {
    const credential = (): string => bearer(role === 'device' ? KEY.device : KEY[role]);
    const expected = (transport: 'http' | 'ws'): Record<string, 'allowed' | 'denied'> =>
      Object.fromEntries(
        [...Object.keys(OPERATIONS), ...(transport === 'ws' ? ['overheatAlerts'] : [])].map((op) => [
          op,
          ALLOWED[role].includes(op) ? 'allowed' : 'denied',
        ]),
      );
    const verdict = (codes: string[], hasData: boolean): string =>
      codes.includes('FORBIDDEN')
        ? 'denied'
        : codes.length === 0 && hasData
          ? 'allowed'
          : `unexpected: ${codes.join(',') || 'no data'}`;

    it(`${role} over HTTP`, async () => {
      const actual: Record<string, string> = {};
      for (const [op, body] of Object.entries(OPERATIONS)) {
        const out = await http(op === 'readings' ? b.url : a.url, body, credential());
        actual[op] = verdict(codesOf(out), out.data !== undefined && out.data !== null);
        if (actual[op] === 'denied') expect(out.status, op).toBe(403);
      }
      expect(actual).toEqual(expected('http'));
    });

    it(`${role} over WebSocket`, async () => {
      const actual: Record<string, string> = {};
      for (const [op, body] of Object.entries(OPERATIONS)) {
        const out = await ws(b.url, body, { authorization: credential() }, (o) => o.results.length > 0);
        actual[op] = verdict(
          codesOf(out),
          out.results.some((r) => r.data),
        );
      }
      // A subscription is allowed when it delivers: the stored devA alert, replayed from the cursor.
      const sub = await ws(
        a.url,
        {
          query:
            'subscription ($s: [ID!], $after: String) { overheatAlerts(sensorIds: $s, after: $after) { id sensorId } }',
          variables: { s: [devA], after: cursorBeforeHot },
        },
        { authorization: credential() },
        (o) => o.results.length > 0,
      );
      actual.overheatAlerts = verdict(
        codesOf(sub),
        sub.results.some((r) => (r.data?.overheatAlerts as { sensorId?: string } | undefined)?.sensorId === devA),
      );
      expect(actual).toEqual(expected('ws'));
    });
  }

  it('lets an operator stop listed sensors but not every sensor at once (admin only)', async () => {
    const out = await http(a.url, OPERATIONS.stopAllSensors, bearer(KEY.operator));
    expect(codesOf(out)).toEqual(['FORBIDDEN']);
    expect(out.errors![0]!.message).toMatch(/admin role only/);
  });
});

describe('sensor scopes', () => {
  it('lets a device write only its own sensors, refusing the whole batch otherwise', async () => {
    const own = await http(
      a.url,
      { query: INGEST, variables: { readings: [criticalReading(devA, 10, 20)] } },
      bearer(KEY.device),
    );
    expect(own.data?.ingestReadings).toEqual({ accepted: 1 });
    const mixed = await http(
      a.url,
      { query: INGEST, variables: { readings: [criticalReading(devA, 11, 20), criticalReading(devB, 12, 20)] } },
      bearer(KEY.device),
    );
    expect(codesOf(mixed)).toEqual(['FORBIDDEN']);
    expect(mixed.errors![0]!.message).toContain(devB);
    expect(mixed.data).toBeNull();
    const token = bearer(await jwt({ role: 'device', sensors: [devB] }, 600));
    expect(
      codesOf(await http(b.url, { query: INGEST, variables: { readings: [criticalReading(devA, 13, 20)] } }, token)),
    ).toEqual(['FORBIDDEN']);
  });

  it("never reveals a sensor outside a scoped viewer's scope", async () => {
    const key = bearer(KEY.scopedViewer);
    expect(
      codesOf(await http(a.url, { query: `{ readings(sensorId: "${devB}", first: 1) { nodes { ts } } }` }, key)),
    ).toEqual(['FORBIDDEN']);
    expect(codesOf(await http(a.url, { query: '{ alerts(first: 1) { nodes { id } } }' }, key))).toEqual(['FORBIDDEN']);
    expect(codesOf(await http(a.url, { query: '{ sensors(first: 1) { nodes { id } } }' }, key))).toEqual(['FORBIDDEN']);
    const named = await ws(
      a.url,
      { query: `subscription { overheatAlerts(sensorIds: ["${devB}"]) { id } }` },
      { authorization: key },
    );
    expect(codesOf(named)).toEqual(['FORBIDDEN']);

    // Unfiltered, the scope is the filter: devB's alert (raised first) never arrives, devA's do.
    const cursor = await cursorNow();
    await ingestAsAdmin([criticalReading(devB, 20)]);
    await ingestAsAdmin([criticalReading(devA, 21), criticalReading(devA, 22)]);
    const sub = await ws(
      a.url,
      {
        query: 'subscription ($after: String) { overheatAlerts(after: $after) { sensorId } }',
        variables: { after: cursor },
      },
      { authorization: key },
      (o) => o.results.length >= 2,
    );
    expect(sub.results.map((r) => (r.data?.overheatAlerts as { sensorId: string }).sensorId)).toEqual([devA, devA]);
  });
});

describe('a token that expires during a subscription', () => {
  it('closes the socket with 4419; resuming with a fresh token from the last cursor loses nothing', async () => {
    // A sensor of its own: an alert of an earlier test still on its way could land on either side of the cursor.
    const devE = uniqueName('devE');
    const cursor = await cursorNow();
    const received: { id: string; cursor: string }[] = [];
    const query =
      'subscription ($s: [ID!], $after: String) { overheatAlerts(sensorIds: $s, after: $after) { id cursor } }';
    const firstToken = bearer(await jwt({ role: 'viewer', sensors: [devE] }, 4));
    const first = ws(
      b.url,
      { query, variables: { s: [devE], after: cursor } },
      { authorization: firstToken },
      (o) => {
        received.splice(
          0,
          received.length,
          ...o.results.map((r) => r.data!.overheatAlerts as { id: string; cursor: string }),
        );
        return false;
      },
      30_000,
    );
    const before = [criticalReading(devE, 30), criticalReading(devE, 31), criticalReading(devE, 32)];
    await ingestAsAdmin(before);
    const closed = await first;
    expect(closed.closeCode).toBe(4419);
    // Raised while the client is away.
    await ingestAsAdmin([criticalReading(devE, 33), criticalReading(devE, 34)]);
    await eventually(
      () => alertIdsOf(devE),
      (ids) => ids.length >= 5,
      { what: 'devE alerts stored' },
    );

    const last = received.at(-1)?.cursor ?? cursor;
    const fresh = bearer(await jwt({ role: 'viewer', sensors: [devE] }, 3600));
    const resumed = ws(
      a.url,
      { query, variables: { s: [devE], after: last } },
      { authorization: fresh },
      (o) => received.length + o.results.length >= 6,
    );
    await eventually(
      () => alertIdsOf(devE),
      (ids) => ids.length >= 5,
    );
    await ingestAsAdmin([criticalReading(devE, 35)]);
    const second = await resumed;
    const all = [
      ...received.map((r) => r.id),
      ...second.results.map((r) => (r.data!.overheatAlerts as { id: string }).id),
    ];
    const stored = await eventually(
      () => alertIdsOf(devE),
      (ids) => ids.length === 6,
      { what: 'all devE alerts stored' },
    );
    // Six alerts, each delivered once: before the expiry, or after resuming from the last cursor.
    expect(new Set(all).size).toBe(all.length);
    expect(all.sort()).toEqual(stored.sort());
  });
});

describe('abusive documents are refused before they execute', () => {
  const deep = `{ ${'a { '.repeat(40)}b${' }'.repeat(40)} }`;
  const manyAliases = `{ ${Array.from({ length: 500 }, (_, i) => `r${i}: readings(sensorId: "${devA}", first: 1000) { nodes { ts } }`).join(' ')} }`;
  const costly = `query ($n: Int) { readings(sensorId: "${devA}", first: $n) { edges { cursor node { ts temperature humidity location { lat lon } } } } }`;
  const directives = `{ alertsCursor ${'@include(if: true) '.repeat(11)} }`;
  const tokens = `{ ${'__typename '.repeat(6000)} }`;
  // 2^40 leaves once expanded: only a walk that stops at the cost limit survives it.
  const fragmentBomb = `query { ...F0 } ${Array.from({ length: 40 }, (_, i) => `fragment F${i} on Query { ${i === 39 ? 'alertsCursor' : `...F${i + 1} ...F${i + 1}`} }`).join(' ')}`;
  const nested = JSON.stringify({ query: INGEST, variables: { readings: 0 } }).replace(
    '0',
    `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
  );
  const corpus: [string, unknown, string][] = [
    ['depth', { query: deep }, 'depth'],
    ['500 aliases of readings(first: 1000)', { query: manyAliases }, 'tokens'],
    [
      '13 aliases of readings(first: 1000)',
      {
        query: `{ ${Array.from({ length: 13 }, (_, i) => `r${i}: readings(sensorId: "${devA}", first: 1000) { nodes { ts } }`).join(' ')} }`,
      },
      'cost',
    ],
    [
      '30 aliases',
      { query: `{ ${Array.from({ length: 30 }, (_, i) => `c${i}: alertsCursor`).join(' ')} }` },
      'aliases',
    ],
    ['cost through a variable', { query: costly, variables: { n: 100_000 } }, 'cost'],
    ['directives', { query: directives }, 'directives'],
    ['tokens', { query: tokens }, 'tokens'],
    ['fragment bomb', { query: fragmentBomb }, 'cost'],
    ['100,000-level variables', nested, 'variablesDepth'],
    ['500,000-character operation name', { query: `query ${'x'.repeat(500_000)} { alertsCursor }` }, 'operationName'],
  ];
  for (const [what, body, limit] of corpus) {
    it(`${what}: LIMIT_EXCEEDED (${limit}), over HTTP and WebSocket`, async () => {
      const out = await http(a.url, body, bearer(KEY.admin));
      expect({
        status: out.status,
        codes: codesOf(out),
        limit: out.errors?.[0]?.extensions?.limit,
        executed: out.data !== undefined,
      }).toEqual({ status: 400, codes: ['LIMIT_EXCEEDED'], limit, executed: false });
      // The client's JSON.stringify would overflow on 100,000 levels: 1,000 make the same point.
      const payload =
        typeof body === 'string'
          ? { query: INGEST, variables: { readings: nest(1000) } }
          : (body as { query: string; variables?: Record<string, unknown> });
      const overWs = await ws(b.url, payload, { authorization: bearer(KEY.admin) });
      expect({
        codes: codesOf(overWs),
        limit: overWs.errors?.[0]?.extensions?.limit,
        results: overWs.results.length,
      }).toEqual({ codes: ['LIMIT_EXCEEDED'], limit, results: 0 });
    });
  }

  it('spawns nothing when a mutation with too many aliases is refused', async () => {
    const count = async (): Promise<number> =>
      (
        (await http(a.url, { query: '{ sensors(status: RUNNING, first: 1000) { nodes { id } } }' }, bearer(KEY.admin)))
          .data!.sensors as { nodes: unknown[] }
      ).nodes.length;
    const before = await count();
    const spawns = `mutation { ${Array.from({ length: 25 }, (_, i) => `s${i}: spawnSensors(input: { count: 1 }) { sensors { id } } `).join('')} }`;
    expect(codesOf(await http(a.url, { query: spawns }, bearer(KEY.admin)))).toEqual(['LIMIT_EXCEEDED']);
    expect(await count()).toBe(before);
  });

  it('refuses a body over 1 MiB with 413', async () => {
    const out = await http(a.url, { query: `{ alertsCursor } #${'x'.repeat(1_100_000)}` }, bearer(KEY.admin));
    expect(out.status).toBe(413);
  });
});

describe('limits per credential', () => {
  it('holds a mutation rate limit across both replicas, with RATE_LIMITED and a retry-after', async () => {
    const mutation = { query: 'mutation { setThreshold(sensorIds: ["rate-probe"], thresholdC: 90) { sensorId } }' };
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => http(i % 2 === 0 ? a.url : b.url, mutation, bearer(KEY.rate))),
    );
    expect(results.flatMap(codesOf)).toEqual([]);
    for (const url of [a.url, b.url]) {
      const refused = await http(url, mutation, bearer(KEY.rate));
      expect(refused.status).toBe(429);
      expect(codesOf(refused)).toEqual(['RATE_LIMITED']);
      expect(refused.errors![0]!.extensions!.retryAfterMs).toBeGreaterThan(0);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    // Another credential is not affected, and stops have a bucket of their own.
    expect(codesOf(await http(a.url, mutation, bearer(KEY.operator)))).toEqual([]);
    expect(codesOf(await http(b.url, OPERATIONS.stopSensors, bearer(KEY.rate)))).toEqual([]);
  });

  it('counts ingested readings, not requests, against the ingest rate', async () => {
    const batch = (n: number, from: number) => Array.from({ length: n }, (_, i) => criticalReading(devC, from + i, 20));
    const ingest = (n: number, from: number) =>
      http(b.url, { query: INGEST, variables: { readings: batch(n, from) } }, bearer(KEY.ingestDevice));
    expect((await ingest(50, 0)).data?.ingestReadings).toEqual({ accepted: 50 });
    const refused = await ingest(20, 100);
    expect(codesOf(refused)).toEqual(['RATE_LIMITED']);
    expect(refused.errors![0]!.extensions).toMatchObject({ bucket: 'ingest', limit: 60 });
    // What is left of the window is still usable: a refused batch took nothing.
    expect((await ingest(10, 200)).data?.ingestReadings).toEqual({ accepted: 10 });
  });

  it('caps the sensors one credential runs', async () => {
    const token = bearer(await jwt({ role: 'operator' }, 600, JWT_SECRET, 'sensor-cap'));
    const spawn = (count: number) =>
      http(
        b.url,
        { query: `mutation { spawnSensors(input: { count: ${count}, intervalMs: 60000 }) { sensors { id } } }` },
        token,
      );
    expect(codesOf(await spawn(3))).toEqual([]);
    const over = await spawn(2);
    expect(codesOf(over)).toEqual(['LIMIT_EXCEEDED']);
    expect(over.errors![0]!.message).toMatch(/at most 4 sensors \(3 running\)/);
  });

  it('closes a connection beyond the per-credential limit with 1013', async () => {
    const until = (o: { results: unknown[] }) => o.results.length > 0;
    const subscription = { query: `subscription { overheatAlerts(sensorIds: ["${devA}"]) { id } }` };
    const connections = async (): Promise<number> =>
      Number(
        /iot_websocket_connections (\d+)/.exec(await (await fetch(a.url.replace('/graphql', '/metrics'))).text())?.[1],
      );
    const open = [0, 1, 2].map(() =>
      wsGraphQL(a.url, subscription, { authorization: bearer(KEY.connections) }, until, 20_000),
    );
    await eventually(connections, (n) => n >= 3, { what: 'three open connections' });
    const fourth = await wsGraphQL(
      a.url,
      { query: '{ alertsCursor }' },
      { authorization: bearer(KEY.connections) },
      until,
      5000,
    );
    expect(fourth.closeCode).toBe(1013);
    expect(fourth.results).toEqual([]);
    await ingestAsAdmin([criticalReading(devA, 40)]);
    for (const o of await Promise.all(open)) expect(o.closeCode).toBeUndefined();
  });
});

describe('CORS', () => {
  const preflight = (origin: string) =>
    fetch(a.url, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });

  it('answers an allowed origin, and only that one, without reflecting others', async () => {
    const allowed = await preflight(ALLOWED_ORIGIN);
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
    expect(allowed.headers.get('access-control-allow-headers')).toContain('authorization');
    const other = await preflight('https://evil.example.net');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const get = await postGraphQL(a.url, { query: '{ alertsCursor }' }, bearer(KEY.viewer), {
      origin: 'https://evil.example.net',
    });
    expect(get.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('errors in production mode', () => {
  it('carry no stack trace, path or internal message', async () => {
    // Provoke what can be provoked from outside, on top of everything this file already saw.
    await http(a.url, { query: '{ readings(sensorId: "x", after: "garbage") { nodes { ts } } }' }, bearer(KEY.admin));
    await http(a.url, { query: '{ nope }' }, bearer(KEY.admin));
    await http(a.url, '{"query": ', bearer(KEY.admin));
    expect(seenErrors.length).toBeGreaterThan(50);
    for (const e of seenErrors) {
      const text = JSON.stringify(e);
      expect(text).not.toMatch(
        /stacktrace|node_modules|\/src\/|\.ts:\d| {4}at |Mongo|SQLITE|kafkajs|ECONNREFUSED|Maximum call stack/,
      );
      expect(e.extensions?.code, text).toEqual(expect.any(String));
    }
  });
});
