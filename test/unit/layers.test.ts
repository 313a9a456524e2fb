/**
 * The layer rule of `npm run lint` (.dependency-cruiser.mjs), run on small trees written for the
 * purpose: imports that point down pass; a cycle (type-only included) or an import of a layer above fails.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const trees: string[] = [];

/** Violated rules, as `rule: from -> to`, of the tree given as path -> source. */
async function violations(files: Record<string, string>): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'layers-'));
  trees.push(dir);
  const tsconfig = { compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } };
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
  for (const [path, source] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), source);
  }
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      join(root, 'node_modules/dependency-cruiser/bin/dependency-cruiser.mjs'),
      'src',
      ...['--config', join(root, '.dependency-cruiser.mjs'), '--output-type', 'json'],
    ],
    { cwd: dir },
  ).catch((err: { stdout: string }) => ({ stdout: err.stdout }));
  const report = JSON.parse(stdout) as {
    summary: { violations: { rule: { name: string }; from: string; to: string }[] };
  };
  return report.summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`).sort();
}

afterEach(async () => {
  await Promise.all(trees.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

const domain = { 'src/domain/reading.ts': 'export interface Reading { sensorId: string }\n' };

describe('layer rule', () => {
  it('passes imports that point down', async () => {
    expect(
      await violations({
        ...domain,
        'src/store/history.ts': "import type { Reading } from '../domain/reading.js';\nexport type Stored = Reading;\n",
        'src/stream/writer.ts': "import type { Stored } from '../store/history.js';\nexport type Written = Stored;\n",
        'src/app.ts': "import type { Written } from './stream/writer.js';\nexport type App = Written;\n",
      }),
    ).toEqual([]);
  }, 30_000);

  it('fails on an import of a layer above, and on a cycle of type-only imports', async () => {
    expect(
      await violations({
        'src/domain/sensor.ts':
          "import type { Series } from '../simulator/datasets.js';\nexport type Sensor = Series;\n",
        'src/simulator/datasets.ts': 'export interface Series { n: number }\n',
        'src/store/mongoStore.ts': "import type { Feed } from '../fanout/alertFeed.js';\nexport type Store = Feed;\n",
        'src/fanout/alertFeed.ts':
          "import type { Store } from '../store/mongoStore.js';\nexport interface Feed { s?: Store }\n",
        'src/schema/sensor.type.ts': "import type { Api } from '../resolvers/services.js';\nexport type T = Api;\n",
        'src/resolvers/services.ts': 'export interface Api { n: number }\n',
      }),
    ).toEqual([
      'domain-imports-nothing: src/domain/sensor.ts -> src/simulator/datasets.ts',
      'no-cycle: src/fanout/alertFeed.ts -> src/store/mongoStore.ts',
      'schema-layer: src/schema/sensor.type.ts -> src/resolvers/services.ts',
      'store-layer: src/store/mongoStore.ts -> src/fanout/alertFeed.ts',
    ]);
  }, 30_000);
});
