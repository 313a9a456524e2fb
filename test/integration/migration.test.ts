/**
 * `npm run migrate:readings` moves history from the first layout (one document per reading) into
 * buckets. It is killed (SIGKILL) in the middle, then run again: the second run finishes the job,
 * every reading is in the buckets exactly once with the values it had, and the old collection is gone.
 * A third run finds nothing to do.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MongoClient, type Db } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reading } from '../../src/domain/reading.js';
import { ensureSqliteIdIndexes } from '../../src/store/ferretSqlite.js';
import { LEGACY_READINGS, legacyReadings } from '../../src/store/legacyReadings.js';
import { createReadingHistory } from '../../src/store/readingHistory.js';
import { isolatedEnv, uniqueName } from '../support/env.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const env = isolatedEnv('migrate');
let client: MongoClient;
let db: Db;
const sensors = [0, 1, 2].map((i) => uniqueName(`m${i}`));
const start = Date.UTC(2026, 10, 20);
// 3 sensors × 1,200 readings, 90 s apart: about 30 hours each, across a day boundary.
const readings: Reading[] = sensors.flatMap((sensorId, s) =>
  Array.from({ length: 1200 }, (_, i) => ({
    sensorId,
    ts: new Date(start + i * 90_000 + s),
    temperature: 15 + ((i * 7) % 50) / 3,
    humidity: 30 + (i % 40),
    location: { lat: 48 + s, lon: 11 },
  })),
);

/** Runs the migration; with `killAfterLines`, SIGKILLs it once it has logged that many progress lines. */
function migrate(
  killAfterLines?: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; progress: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/migrate-readings.ts', '--batch=300'], {
      cwd: root,
      env: { PATH: process.env.PATH, ...env, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let progress = 0;
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) if (line.includes('"msg":"migrated"')) progress++;
      if (killAfterLines !== undefined && progress >= killAfterLines) child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, progress }));
  });
}

beforeAll(async () => {
  client = new MongoClient('mongodb://127.0.0.1:27017');
  await client.connect();
  db = client.db(env.MONGODB_DATABASE);
  await ensureSqliteIdIndexes(db, env.MONGODB_FERRETDB_SQLITE_DIR!, [LEGACY_READINGS]);
  const legacy = legacyReadings(db);
  for (let i = 0; i < readings.length; i += 1000) await legacy.insert(readings.slice(i, i + 1000));
});
afterAll(async () => {
  await db?.dropDatabase().catch(() => undefined);
  await client?.close();
});

describe('migrate:readings', () => {
  it('finishes after being killed mid-way, with every reading moved exactly once', async () => {
    const killed = await migrate(3);
    expect(killed.signal).toBe('SIGKILL');
    const left = await db.collection(LEGACY_READINGS).countDocuments();
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(readings.length);

    const finished = await migrate();
    expect(finished.code).toBe(0);
    expect(await db.listCollections({ name: LEGACY_READINGS }).toArray()).toEqual([]);

    const history = createReadingHistory(db);
    expect(await history.count(sensors)).toBe(readings.length);
    for (const sensorId of sensors) {
      const page = await history.page({ sensorId, first: 5000 });
      const expected = readings.filter((r) => r.sensorId === sensorId).reverse();
      expect(page.items).toEqual(expected);
    }
  });

  it('does nothing when there is nothing left to migrate', async () => {
    const again = await migrate();
    expect(again.code).toBe(0);
    expect(await createReadingHistory(db).count(sensors)).toBe(readings.length);
  });
});
