/**
 * Moves reading history from the first layout (one document per reading, collection `readings`) into
 * the bucket layout: `npm run migrate:readings [-- --batch=5000]`, with the same MONGODB_* variables
 * as the API.
 *
 * Each batch is written to the buckets first (idempotent: a reading already there is skipped), then
 * deleted from the old collection. A run that crashes between the two leaves both copies of a batch;
 * the next run writes it again (nothing changes) and deletes it. So the command can be rerun at any
 * time and finishes what an earlier run started; when the old collection is empty it is dropped.
 *
 * Run it before starting replicas of the new version (or with KAFKA_CONSUMER_ENABLED=false on all of
 * them): the bucket layout has one writer per sensor, and the consumer is that writer.
 */
import { MongoClient } from 'mongodb';
import { loadConfigOrExit } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { ensureSqliteIdIndexes } from '../src/store/ferretSqlite.js';
import { LEGACY_READINGS, legacyReadings } from '../src/store/legacyReadings.js';
import { BUCKETS, DAYS, SENSORS, createReadingHistory } from '../src/store/readingHistory.js';

const arg = (name: string, fallback: number): number => {
  const raw = process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new Error(`--${name} must be an integer 1..100000`);
  return n;
};

const config = loadConfigOrExit();
const log = createLogger(config.logLevel === 'silent' ? 'info' : config.logLevel).child({ module: 'migrate.readings' });
const batchSize = arg('batch', 5000);

const client = new MongoClient(config.mongo.url, { serverSelectionTimeoutMS: 5000, appName: 'iot-migrate-readings' });
await client.connect();
try {
  const db = client.db(config.mongo.database);
  const exists = (await db.listCollections({ name: LEGACY_READINGS }, { nameOnly: true }).toArray()).length > 0;
  if (!exists) {
    log.info({ database: config.mongo.database }, 'nothing to migrate: no readings collection');
  } else {
    if (config.mongo.ferretSqliteDir)
      await ensureSqliteIdIndexes(db, config.mongo.ferretSqliteDir, [BUCKETS, DAYS, SENSORS, LEGACY_READINGS]);
    const legacy = legacyReadings(db);
    const history = createReadingHistory(db);
    const total = await legacy.estimatedCount();
    log.info(
      { database: config.mongo.database, readings: total, batchSize },
      'migrating readings to the bucket layout',
    );
    let moved = 0;
    let added = 0;
    const t0 = Date.now();
    for await (const { ids, readings } of legacy.batches(batchSize)) {
      added += await history.insert(readings); // durable before the originals go
      await legacy.remove(ids);
      moved += ids.length;
      log.info(
        {
          moved,
          newInBuckets: added,
          remaining: Math.max(0, total - moved),
          perSecond: Math.round((moved * 1000) / Math.max(1, Date.now() - t0)),
        },
        'migrated',
      );
    }
    if ((await legacy.estimatedCount()) === 0)
      await db
        .collection(LEGACY_READINGS)
        .drop()
        .catch(() => undefined);
    log.info({ moved, newInBuckets: added, seconds: (Date.now() - t0) / 1000 }, 'migration complete');
  }
} finally {
  await client.close();
}
