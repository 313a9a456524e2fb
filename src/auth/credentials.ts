/**
 * Who is calling: API keys and JWTs, both presented as `Bearer <key or token>` (the HTTP
 * `Authorization` header, or `authorization` in the graphql-ws `connection_init` payload).
 *
 * - API keys come from `API_KEYS`: `role:secret` entries, comma-separated; a third part scopes the
 *   key to sensors (`device:secret:sensorA|sensorB`). Only SHA-256 digests of the secrets are kept.
 * - JWTs are verified with `jose` against `AUTH_JWT_SECRET` (HMAC) or the keys of `AUTH_JWKS_FILE`.
 *   Claims: `role` (required), `sensors` (optional scope, a list of ids), `exp` (required), `sub`.
 * - `AUTH_ANONYMOUS_ROLE` gives callers with no credential at all a role: for closed networks and
 *   the test suites. A credential that is present but wrong is refused even then.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';

export const ROLES = ['viewer', 'operator', 'device', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  /** Stable, secret-free id: the rate limits, per-key caps and logs are keyed by it. */
  readonly id: string;
  readonly role: Role;
  /** The sensors this principal is limited to; undefined when it may see all. */
  readonly sensors: ReadonlySet<string> | undefined;
  /** Epoch ms after which the credential is no longer valid (JWTs). */
  readonly expiresAt: number | undefined;
}

export type AuthOutcome =
  { readonly ok: true; readonly principal: Principal } | { readonly ok: false; readonly reason: string };

export interface ApiKeyEntry {
  readonly role: Role;
  readonly digest: string;
  readonly sensors: readonly string[] | undefined;
}

export interface AuthSettings {
  readonly apiKeys: readonly ApiKeyEntry[];
  readonly jwtSecret: string | undefined;
  readonly jwksFile: string | undefined;
  readonly jwtIssuer: string | undefined;
  readonly jwtAudience: string | undefined;
  readonly anonymousRole: Role | undefined;
}

export interface Authenticator {
  /** `authorization` is the raw header (or connection_init field) value, undefined when absent. */
  authenticate(authorization: unknown): Promise<AuthOutcome>;
}

const SENSOR_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** Shortest secret accepted in API_KEYS: 16 characters (e.g. 8 random bytes in hex). */
export const MIN_SECRET_LENGTH = 16;

export function digestOf(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Parses `API_KEYS`; problems are reported without echoing any secret. */
export function parseApiKeys(text: string): { keys: ApiKeyEntry[]; problems: string[] } {
  const keys: ApiKeyEntry[] = [];
  const problems: string[] = [];
  const entries = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  entries.forEach((entry, i) => {
    const [role, secret, scope, ...rest] = entry.split(':');
    const where = `API_KEYS entry ${i + 1}`;
    if (!ROLES.includes(role as Role)) return problems.push(`${where}: role must be one of ${ROLES.join(', ')}`);
    if (rest.length > 0) return problems.push(`${where}: expected role:secret or role:secret:sensorA|sensorB`);
    if (!secret || secret.length < MIN_SECRET_LENGTH || /\s/.test(secret)) {
      return problems.push(
        `${where} (${role}): the secret must be at least ${MIN_SECRET_LENGTH} characters, without spaces`,
      );
    }
    const sensors = scope === undefined ? undefined : scope.split('|').filter(Boolean);
    if (sensors !== undefined && (sensors.length === 0 || sensors.some((s) => !SENSOR_ID.test(s)))) {
      return problems.push(`${where} (${role}): the scope must list sensor ids separated by |`);
    }
    if (role === 'device' && sensors === undefined)
      return problems.push(`${where}: a device key must name its sensors (device:secret:sensorA|sensorB)`);
    const digest = digestOf(secret);
    if (keys.some((k) => k.digest === digest))
      return problems.push(`${where} (${role}): the same secret is listed twice`);
    keys.push({ role: role as Role, digest, sensors });
    return undefined;
  });
  return { keys, problems };
}

const BEARER = /^Bearer ([\x21-\x7e]{1,8192})$/;

export function createAuthenticator(settings: AuthSettings): Authenticator {
  const byDigest = new Map(settings.apiKeys.map((k) => [k.digest, k]));
  let jwtKey: Uint8Array | JWTVerifyGetKey | undefined;
  if (settings.jwtSecret) jwtKey = new TextEncoder().encode(settings.jwtSecret);
  else if (settings.jwksFile)
    jwtKey = createLocalJWKSet(
      JSON.parse(readFileSync(settings.jwksFile, 'utf8')) as Parameters<typeof createLocalJWKSet>[0],
    );

  const fromJwt = async (token: string): Promise<AuthOutcome> => {
    if (!jwtKey) return { ok: false, reason: 'invalid credential' };
    let payload: JWTPayload;
    try {
      const verified =
        jwtKey instanceof Uint8Array
          ? await jwtVerify(token, jwtKey, {
              algorithms: ['HS256', 'HS384', 'HS512'],
              issuer: settings.jwtIssuer,
              audience: settings.jwtAudience,
              requiredClaims: ['exp'],
            })
          : await jwtVerify(token, jwtKey, {
              issuer: settings.jwtIssuer,
              audience: settings.jwtAudience,
              requiredClaims: ['exp'],
            });
      payload = verified.payload;
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) return { ok: false, reason: 'token expired' };
      return { ok: false, reason: 'invalid token' };
    }
    const role = payload.role;
    if (typeof role !== 'string' || !ROLES.includes(role as Role))
      return { ok: false, reason: `token has no valid role claim (${ROLES.join(', ')})` };
    const sensors = payload.sensors;
    if (
      sensors !== undefined &&
      (!Array.isArray(sensors) || sensors.some((s) => typeof s !== 'string' || !SENSOR_ID.test(s)))
    ) {
      return { ok: false, reason: 'token sensors claim must be a list of sensor ids' };
    }
    if (role === 'device' && sensors === undefined)
      return { ok: false, reason: 'a device token must carry a sensors claim' };
    const subject = typeof payload.sub === 'string' ? payload.sub.slice(0, 128) : digestOf(token).slice(0, 12);
    return {
      ok: true,
      principal: {
        id: `jwt:${role}:${subject}`,
        role: role as Role,
        sensors: sensors === undefined ? undefined : new Set(sensors as string[]),
        expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined,
      },
    };
  };

  return {
    async authenticate(authorization) {
      if (authorization === undefined || authorization === null || authorization === '') {
        if (settings.anonymousRole) {
          return {
            ok: true,
            principal: { id: 'anonymous', role: settings.anonymousRole, sensors: undefined, expiresAt: undefined },
          };
        }
        return { ok: false, reason: 'credential required: send "Authorization: Bearer <API key or token>"' };
      }
      const m = typeof authorization === 'string' ? BEARER.exec(authorization) : null;
      if (!m) return { ok: false, reason: 'malformed credential: expected "Bearer <API key or token>"' };
      const presented = m[1]!;
      if (presented.split('.').length === 3) return fromJwt(presented);
      const digest = digestOf(presented);
      const key = byDigest.get(digest);
      if (!key) return { ok: false, reason: 'invalid credential' };
      return {
        ok: true,
        principal: {
          id: `key:${key.role}:${digest.slice(0, 12)}`,
          role: key.role,
          sensors: key.sensors ? new Set(key.sensors) : undefined,
          expiresAt: undefined,
        },
      };
    },
  };
}
