/**
 * The manifests' validator (deploy/k8s/validate, Go): built once per version of its sources and of
 * Go into .cache/k8s-validate/, then run on a deploy/k8s tree. A fresh clone builds it on first use
 * (module download and compile); later runs reuse the binary.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../..');
export const k8sDir = join(repoRoot, 'deploy/k8s');
const sources = join(k8sDir, 'validate');

/** What the validator reports for one overlay (its -json output). */
export interface OverlayReport {
  overlay: string;
  objects: string[];
  deployments: { deployment: string; container: string; env: Record<string, string> }[];
  externalSecrets: string[];
  podMetrics: string[];
  problems: string[];
}

export interface Outcome {
  code: number;
  reports: OverlayReport[];
  stderr: string;
}

/** The path of a validator built from the current sources, building it when there is none. */
export async function validatorBinary(): Promise<{ path: string; built: boolean }> {
  const hash = createHash('sha256');
  const go = await run('go', ['version']).catch((err: Error) => {
    throw new Error(`the manifests' check is built with Go 1.26 or later, and \`go version\` failed: ${err.message}`);
  });
  hash.update(go.stdout);
  const files = (await readdir(sources)).filter((f) => f.endsWith('.go') || f === 'go.mod' || f === 'go.sum').sort();
  for (const f of files) hash.update(f).update(await readFile(join(sources, f)));
  const dir = join(repoRoot, '.cache/k8s-validate');
  const path = join(dir, hash.digest('hex').slice(0, 16));
  if (existsSync(path)) return { path, built: false };
  await mkdir(dir, { recursive: true });
  // Built beside its final name and renamed into place: two test runs at once never see half a file.
  const partial = `${path}.${process.pid}.partial`;
  await run('go', ['build', '-trimpath', '-buildvcs=false', '-o', partial, '.'], {
    cwd: sources,
    maxBuffer: 16 * 1024 * 1024,
  });
  await rename(partial, path);
  // Binaries of earlier sources are of no further use once a day old (a younger one may belong to
  // another work tree sharing this cache, running now).
  for (const old of await readdir(dir)) {
    const file = join(dir, old);
    // Another run may have renamed or removed it meanwhile.
    const modified = (await stat(file).catch(() => undefined))?.mtimeMs ?? Date.now();
    if (file !== path && Date.now() - modified > 86_400_000) await rm(file, { force: true });
  }
  return { path, built: true };
}

/** Runs the validator on a deploy/k8s tree (the repository's, or a changed copy). */
export async function validate(binary: string, tree = k8sDir): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(binary, ['-k8s', tree, '-json'], { maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, reports: JSON.parse(stdout) as OverlayReport[], stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, reports: e.stdout ? (JSON.parse(e.stdout) as OverlayReport[]) : [], stderr: e.stderr ?? '' };
  }
}
