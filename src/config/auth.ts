/**
 * Credentials and exposure: who may call (API keys, JWTs, an anonymous role), and what the API shows
 * (detailed errors, introspection, GraphiQL, the dashboard, CORS).
 */
import { parseApiKeys, ROLES, type AuthSettings, type Role } from '../auth/credentials.js';
import { bool, list, optionalText, text, type Declarations, type Parsed } from './values.js';

export const AUTH_VARIABLES = {
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
} as const satisfies Declarations;

export interface ExposureSettings {
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
}

/** The credentials; what is wrong with them is added to `problems` (a secret is never echoed). */
export function authSettings(e: Parsed<typeof AUTH_VARIABLES>, problems: string[]): AuthSettings {
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
  return {
    apiKeys: apiKeys.keys,
    jwtSecret: e.AUTH_JWT_SECRET,
    jwksFile: e.AUTH_JWKS_FILE,
    jwtIssuer: e.AUTH_JWT_ISSUER,
    jwtAudience: e.AUTH_JWT_AUDIENCE,
    anonymousRole,
  };
}

/** What the API shows; introspection and GraphiQL are off by default in production. */
export function exposureSettings(e: Parsed<typeof AUTH_VARIABLES>, production: boolean): ExposureSettings {
  return {
    devMode: e.DEV_MODE ?? false,
    introspection: e.GRAPHQL_INTROSPECTION ?? !production,
    graphiql: e.GRAPHIQL_ENABLED ?? !production,
    dashboard: e.DASHBOARD_ENABLED !== false,
    corsOrigins: e.CORS_ORIGINS,
    devAdminKey: e.DEV_ADMIN_KEY,
  };
}
