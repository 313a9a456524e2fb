/** Small helpers shared by the raw-limit benchmarks (bench/raw/*). */
import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Figure } from '../lib/stats.js';

/** A short random id that makes topic, group, channel and database names unique per run. */
export function runId(): string {
  return randomBytes(4).toString('hex');
}

/** True when the module at `moduleUrl` is the entry point (`npx tsx bench/raw/x.ts`), false when imported. */
export function isMain(moduleUrl: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(fileURLToPath(moduleUrl)) === realpathSync(entry);
  } catch {
    return false;
  }
}

/** `--name=value` / `--name value` numeric options from the command line. */
export function cliNumber(name: string): number | undefined {
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === `--${name}`) return Number(args[i + 1]);
    if (a.startsWith(`--${name}=`)) return Number(a.slice(name.length + 3));
  }
  return undefined;
}

/** The CLI guard body: runs `run` with options from argv and prints the figures as JSON on stdout. */
export function runCli<O extends { durationMs: number; rate?: number }>(
  run: (opts: O) => Promise<Figure[]>,
  extra: Partial<Record<Exclude<keyof O, 'durationMs' | 'rate'>, true>> = {},
): void {
  const opts: Record<string, number> = { durationMs: cliNumber('durationMs') ?? 10_000 };
  const rate = cliNumber('rate');
  if (rate !== undefined) opts.rate = rate;
  for (const key of Object.keys(extra)) {
    const v = cliNumber(key);
    if (v !== undefined) opts[key] = v;
  }
  const started = performance.now();
  run(opts as unknown as O).then(
    (figures) => {
      process.stderr.write(`done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
      // No process.exit: the process must end by itself, which proves the run released every handle.
      process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
    },
    (err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

/** Rounds the numbers of a figure's latency to microseconds, for readable JSON. */
export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Resolves when `cond()` holds (polled), or after `timeoutMs`; returns whether it held. */
export async function waitFor(cond: () => boolean, timeoutMs: number, pollMs = 10): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  return true;
}
