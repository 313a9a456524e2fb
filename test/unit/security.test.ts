/**
 * The pieces of the front door on their own: the role table, the shape limits, the error masking,
 * the authenticator and the local rate windows. test/integration/security.test.ts runs them
 * together on real replicas.
 */
import 'reflect-metadata';
import { GraphQLError, parse, type OperationDefinitionNode } from 'graphql';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createAuthenticator, digestOf, type Principal } from '../../src/auth/credentials.js';
import { ROOT_FIELD_PERMISSIONS, authorizeOperation } from '../../src/auth/policy.js';
import { errorMasker } from '../../src/http/server.js';
import { DependencyError } from '../../src/errors.js';
import { checkDocument, jsonDepth, type OperationLimits } from '../../src/limits/operationLimits.js';
import { localWindows } from '../../src/limits/rateLimiter.js';
import { createReadGate } from '../../src/limits/readGate.js';
import { createLogger } from '../../src/logger.js';
import { buildAppSchema } from '../../src/resolvers/buildSchema.js';

const LIMITS: OperationLimits = {
  maxDepth: 10,
  maxAliases: 20,
  maxDirectives: 10,
  maxCost: 25_000,
  maxOperationNameLength: 100,
  maxVariablesDepth: 8,
  maxTokens: 5000,
  defaultListSize: 50,
};
const principal = (role: Principal['role'], sensors?: string[]): Principal => ({
  id: `test:${role}`,
  role,
  sensors: sensors && new Set(sensors),
  expiresAt: undefined,
});

describe('role table', () => {
  it('names a permission for every root field of the schema, so none is open by omission', async () => {
    const schema = await buildAppSchema();
    const fields = (['Query', 'Mutation', 'Subscription'] as const).flatMap((t) =>
      Object.keys(schema.getType(t) ? (schema.getType(t) as { getFields(): object }).getFields() : {}).map(
        (f) => `${t}.${f}`,
      ),
    );
    expect(fields.sort()).toEqual(Object.keys(ROOT_FIELD_PERMISSIONS).sort());
  });

  it('checks root fields reached through fragments', async () => {
    const schema = await buildAppSchema();
    const document = parse('mutation { ...M } fragment M on Mutation { ... on Mutation { stopSensors(ids: ["x"]) } }');
    const op = document.definitions[0] as OperationDefinitionNode;
    expect(authorizeOperation(principal('viewer'), document, op, true, schema)?.extensions.code).toBe('FORBIDDEN');
    expect(authorizeOperation(principal('operator'), document, op, true, schema)).toBeUndefined();
  });
});

describe('shape limits', () => {
  const check = (query: string, variables?: Record<string, unknown>) =>
    checkDocument(parse(query), variables, LIMITS)?.extensions.limit;

  it('counts list sizes from `first`, literal or variable', () => {
    expect(check('{ readings(sensorId: "s", first: 1000) { nodes { ts } } }')).toBeUndefined();
    expect(
      check('query ($n: Int) { readings(sensorId: "s", first: $n) { nodes { ts temperature humidity } } }', {
        n: 10_000,
      }),
    ).toBe('cost');
  });

  it('refuses depth, aliases and directives past their limits, and lets introspection nest', () => {
    expect(check(`{ ${'a { '.repeat(11)}b${' }'.repeat(11)} }`)).toBe('depth');
    expect(check(`{ ${Array.from({ length: 21 }, (_, i) => `a${i}: alertsCursor`).join(' ')} }`)).toBe('aliases');
    expect(check(`{ alertsCursor ${'@skip(if: false) '.repeat(11)} }`)).toBe('directives');
    expect(
      check(
        '{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } }',
      ),
    ).toBeUndefined();
  });

  it('measures a 100,000-level value without recursion', () => {
    let v: unknown = 1;
    for (let i = 0; i < 100_000; i++) v = [v];
    expect(jsonDepth(v, 8)).toBe(9);
  });
});

describe('error masking', () => {
  const mask = (devMode: boolean, err: GraphQLError) => errorMasker(devMode, createLogger('silent'))(err.toJSON(), err);

  it('masks an unexpected error to INTERNAL_SERVER_ERROR with an error id, without its message', () => {
    const internal = new GraphQLError('database is locked (SQLITE_BUSY)', {
      originalError: new Error('database is locked (SQLITE_BUSY)'),
      extensions: { stacktrace: ['at /src/x.ts:1'] },
    });
    const out = mask(false, internal);
    expect(out.extensions).toEqual({
      code: 'INTERNAL_SERVER_ERROR',
      errorId: expect.stringMatching(/^[0-9a-f]{12}$/) as unknown,
    });
    expect(out.message).toBe(`Internal server error (error id ${String(out.extensions!.errorId)})`);
    expect(mask(true, internal).message).toMatch(/SQLITE_BUSY/);
  });

  it('lets codes written for clients through, without the http extension or a stack', () => {
    const forbidden = new GraphQLError('no', {
      extensions: { code: 'FORBIDDEN', http: { status: 403 }, stacktrace: ['x'] },
    });
    expect(mask(false, forbidden).extensions).toEqual({ code: 'FORBIDDEN' });
  });

  it('tells an unreachable dependency by the code it carries, retryable, without its message', () => {
    const down = (err: DependencyError) => new GraphQLError(err.message, { originalError: err });
    expect(mask(false, down(new DependencyError('mongodb', 'connect ECONNREFUSED 127.0.0.1:27017')))).toEqual({
      message: 'The history store is unreachable; retry shortly',
      extensions: { code: 'STORE_UNAVAILABLE', retryable: true },
    });
    expect(mask(false, down(new DependencyError('kafka', 'Kafka did not acknowledge within 5000 ms')))).toEqual({
      message: 'Kafka is unreachable; retry shortly',
      extensions: { code: 'KAFKA_UNAVAILABLE', retryable: true },
    });
  });
});

describe('authenticator', () => {
  const secret = 'a-jwt-secret-of-at-least-32-characters!';
  const auth = createAuthenticator({
    apiKeys: [{ role: 'device', digest: digestOf('device-key-0000000001'), sensors: ['s1'] }],
    jwtSecret: secret,
    jwksFile: undefined,
    jwtIssuer: undefined,
    jwtAudience: undefined,
    anonymousRole: undefined,
  });

  it('identifies a key by its digest, never by its secret', async () => {
    const out = await auth.authenticate('Bearer device-key-0000000001');
    expect(out).toMatchObject({ ok: true, principal: { role: 'device', sensors: new Set(['s1']) } });
    expect(JSON.stringify(out.ok && out.principal.id)).not.toContain('device-key');
  });

  it('reads role, scope and expiry from a token', async () => {
    const exp = Math.floor(Date.now() / 1000) + 60;
    const token = await new SignJWT({ role: 'viewer', sensors: ['a', 'b'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('u1')
      .setExpirationTime(exp)
      .sign(new TextEncoder().encode(secret));
    expect(await auth.authenticate(`Bearer ${token}`)).toEqual({
      ok: true,
      principal: { id: 'jwt:viewer:u1', role: 'viewer', sensors: new Set(['a', 'b']), expiresAt: exp * 1000 },
    });
  });

  it('refuses a token without expiry', async () => {
    const token = await new SignJWT({ role: 'admin' })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(secret));
    expect(await auth.authenticate(`Bearer ${token}`)).toMatchObject({ ok: false });
  });
});

describe('local rate windows (while Redis is unreachable)', () => {
  it('allow the limit per window, then tell how long to wait', () => {
    const take = localWindows();
    const limit = { limit: 3, windowMs: 60_000 };
    expect([1, 2, 3].map(() => take('k', 1, limit)[0])).toEqual([true, true, true]);
    const [ok, retryAfterMs] = take('k', 1, limit);
    expect(ok).toBe(false);
    expect(retryAfterMs).toBeGreaterThan(0);
    expect(take('other', 1, limit)[0]).toBe(true);
  });
});

describe('store read gate', () => {
  it('runs at most `concurrent` reads, queues `queued`, and refuses the rest with STORE_BUSY', async () => {
    const gate = createReadGate(2, 1);
    let release!: () => void;
    const blocked = new Promise<void>((r) => (release = r));
    const running = [gate.run(() => blocked), gate.run(() => blocked), gate.run(() => blocked)];
    expect(gate.stats()).toMatchObject({ running: 2, queued: 1 });
    await expect(gate.run(() => blocked)).rejects.toMatchObject({ extensions: { code: 'STORE_BUSY' } });
    release();
    await Promise.all(running);
    expect(gate.stats()).toMatchObject({ running: 0, queued: 0, refused: 1 });
  });
});
