/**
 * FerretDB's SQLite WAL stays bounded while documents are rewritten and read at the same time, on
 * the real store (store/ferretSqlite.ts keepWalBounded): without the keeper it only grows.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { afterAll, describe, expect, it } from 'vitest';
import { keepWalBounded } from '../../src/store/ferretSqlite.js';
import { ferretSqliteDir, uniqueName } from '../support/env.js';

const client = new MongoClient('mongodb://127.0.0.1:27017');
afterAll(async () => {
  await client.close();
});

const walBytes = (file: string): number => {
  try {
    return statSync(`${file}-wal`).size;
  } catch {
    return 0;
  }
};

/**
 * Rewrites `docs` documents of about 8 KB, `rounds` times at least and then until `enough()` (or
 * `deadlineMs` passed), while another loop keeps reading them.
 */
async function rewriteWhileReading(
  database: string,
  docs: number,
  { rounds, enough, deadlineMs }: { rounds: number; enough: () => boolean; deadlineMs: number },
): Promise<void> {
  const collection = client.db(database).collection<{ _id: string; body: string; round: number }>('pages');
  let writing = true;
  // A write that meets a checkpoint may be refused (SQLITE_BUSY): retried, as the alert path retries its writes.
  let refused = 0;
  const reader = (async () => {
    while (writing) await collection.findOne({ _id: `doc-${Math.floor(Math.random() * docs)}` });
  })();
  try {
    const deadline = Date.now() + deadlineMs;
    for (let round = 0; round < rounds || (!enough() && Date.now() < deadline); round++) {
      const body = String(round).padEnd(8192, 'x');
      for (let attempt = 0; ; attempt++) {
        try {
          await collection.bulkWrite(
            Array.from({ length: docs }, (_, i) => ({
              replaceOne: { filter: { _id: `doc-${i}` }, replacement: { body, round }, upsert: true },
            })),
            { ordered: false },
          );
          break;
        } catch (err) {
          if (++refused > 5 || attempt > 2) throw err;
        }
      }
    }
  } finally {
    writing = false;
    await reader;
  }
}

describe('the FerretDB SQLite WAL', () => {
  it('stays under its limit while documents are rewritten and read, and is emptied once it passes it', async () => {
    const database = uniqueName('wal').replace(/[^a-zA-Z0-9_-]/g, '_');
    await client
      .db(database)
      .collection('pages')
      .insertOne({ _id: 'first' } as never);
    const file = join(ferretSqliteDir(), `${database}.sqlite`);
    const limitBytes = 2 * 1_048_576;
    // Checkpoints that emptied the WAL: sqlite3 prints "busy|frames|checkpointed", busy 0 when none blocked it.
    const checkpoints: number[] = [];
    // The others: blocked by a reader or a writer past the keeper's short wait (tried again later).
    const blocked: string[] = [];
    const keeper = keepWalBounded({
      files: [file],
      limitBytes,
      everyMs: 100,
      onCheckpoint: (_file, bytes, _ms, result) => {
        if (result.startsWith('0|')) checkpoints.push(bytes);
        else blocked.push(result);
      },
      onError: (_file, err) => blocked.push(err.message.split('\n')[0]!),
    });
    let duringWrites = 0;
    let afterWrites = Number.NaN;
    try {
      // 40 documents of 8 KB rewritten 60 times, about 20 MB through the WAL, while another loop
      // reads; and on, on a machine so loaded that no checkpoint has emptied it yet (a minute at most).
      await rewriteWhileReading(database, 40, { rounds: 60, enough: () => checkpoints.length > 0, deadlineMs: 60_000 });
      duringWrites = checkpoints.length;
      // Give the keeper a round or two after the last write.
      const deadline = Date.now() + 10_000;
      while (walBytes(file) > limitBytes && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      afterWrites = walBytes(file);
    } finally {
      keeper.dispose();
      await client.db(database).dropDatabase();
    }
    // Emptied while the writes and the reader went on, not only once they stopped: 20 MB through a
    // 2 MB limit passes it many times, and a machine too busy for the keeper's short wait writes on
    // until it got through. Without the keeper (passive checkpoints only) there is none, and the WAL
    // ends near everything written.
    expect(
      duringWrites,
      `checkpoints blocked meanwhile: ${blocked.length} (${blocked.slice(-3).join('; ')})`,
    ).toBeGreaterThanOrEqual(1);
    expect(checkpoints.every((bytes) => bytes > limitBytes)).toBe(true);
    expect(afterWrites).toBeLessThanOrEqual(limitBytes);
  }, 120_000);
});
