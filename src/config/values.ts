/**
 * The value types of the configuration: each reads one variable's string (empty = unset), gives its
 * default, and says in plain words what is wrong with a bad value. The declarations of each concern
 * (http.ts, kafka.ts, ...) are written with them.
 */
import { z } from 'zod';
import type { RateLimit } from '../limits/rateLimiter.js';

/** A group of declared variables: each with its zod schema (type, bounds, default) and what it is for. */
export type Declarations = Readonly<Record<string, { readonly schema: z.ZodType; readonly doc: string }>>;

/** What a group of variables parses to, by name. */
export type Parsed<V extends Declarations> = { readonly [K in keyof V]: z.output<V[K]['schema']> };

const raw = z.preprocess((v) => (v === '' ? undefined : v), z.string().optional());
type Ctx = { addIssue(issue: { code: 'custom'; message: string }): void };
const fail = (ctx: Ctx, message: string): never => {
  ctx.addIssue({ code: 'custom', message });
  return z.NEVER;
};

export function num(fallback: number, min = -Infinity, max = Infinity, integer = false) {
  return raw.transform((s, ctx) => {
    if (s === undefined) return fallback;
    const n = Number(s);
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n)))
      return fail(ctx, `"${s}" is not ${integer ? 'an integer' : 'a number'}`);
    if (n < min || n > max) return fail(ctx, `${n} is outside ${min}..${max}`);
    return n;
  });
}
export const int = (fallback: number, min: number, max: number) => num(fallback, min, max, true);

export function text(fallback: string, pattern?: RegExp) {
  return raw.transform((s, ctx) => {
    if (s === undefined) return fallback;
    if (pattern && !pattern.test(s)) return fail(ctx, `"${s}" does not match ${String(pattern)}`);
    return s;
  });
}
/** A string with no default: undefined when unset. */
export function optionalText(pattern?: RegExp) {
  return raw.transform((s, ctx) => {
    if (s === undefined) return undefined;
    if (pattern && !pattern.test(s)) return fail(ctx, `"${s}" does not match ${String(pattern)}`);
    return s;
  });
}
export function oneOf<T extends string>(values: readonly T[], fallback: T) {
  return raw.transform((s, ctx): T => {
    if (s === undefined) return fallback;
    if (!values.includes(s as T)) return fail(ctx, `"${s}" is not one of ${values.join(', ')}`);
    return s as T;
  });
}
export function bool(fallback: boolean | undefined) {
  return raw.transform((s, ctx) => {
    if (s === undefined) return fallback;
    if (/^(1|true|yes|on)$/i.test(s)) return true;
    if (/^(0|false|no|off)$/i.test(s)) return false;
    return fail(ctx, `"${s}" is not a boolean (true/false)`);
  });
}
export function url(fallback: string, protocols: readonly string[]) {
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
export function duration(fallback: number, min: number, max = Infinity) {
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
export function rate(fallback: RateLimit) {
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
export function list(fallback: readonly string[], itemPattern: RegExp) {
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

/** Kafka topic names, and the names of clients, groups, replicas and channel prefixes. */
export const TOPIC = /^[a-zA-Z0-9._-]{1,249}$/;
export const NAME = /^[a-zA-Z0-9._-]{1,100}$/;
export const HOST_PORT = /^[a-zA-Z0-9.-]+:\d{1,5}$/;
export const DAY = 86_400_000;
