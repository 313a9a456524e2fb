/** docker-compose.yml read as Compose reads it: YAML merge keys resolved, `${...}` interpolated. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  restart?: string;
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
}

const file = fileURLToPath(new URL('../../docker-compose.yml', import.meta.url));

export function readCompose(): ComposeFile {
  return parse(readFileSync(file, 'utf8'), { merge: true }) as ComposeFile;
}

/**
 * Compose's interpolation: `$$` is a dollar; `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:?error}` and `${VAR?error}` read `vars` (the shell of whoever runs `docker compose up`).
 */
export function interpolate(value: string, vars: Readonly<Record<string, string | undefined>>): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (whole, name?: string, colon?: string, op?: string, word?: string, bare?: string) => {
      if (whole === '$$') return '$';
      const key = (name ?? bare)!;
      const v = vars[key];
      const unset = v === undefined || (colon === ':' && v === '');
      if (op === '-') return unset ? word! : v;
      if (op === '?') {
        if (unset) throw new Error(`${key}: ${word}`);
        return v;
      }
      return v ?? '';
    },
  );
}

/** A service's environment after interpolation, as the container sees it. */
export function serviceEnvironment(
  service: ComposeService,
  vars: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const env = service.environment ?? {};
  const entries: [string, string][] = Array.isArray(env)
    ? env.map((e) => {
        const at = e.indexOf('=');
        return at < 0 ? [e, vars[e] ?? ''] : [e.slice(0, at), e.slice(at + 1)];
      })
    : Object.entries(env).map(([k, v]) => [k, v === null ? (vars[k] ?? '') : String(v)]);
  return Object.fromEntries(entries.map(([k, v]) => [k, interpolate(v, vars)]));
}

/** The services built from this repository's Dockerfile: the API replicas. */
export function apiServices(compose: ComposeFile): [string, ComposeService][] {
  return Object.entries(compose.services).filter(([, s]) => s.build !== undefined);
}
