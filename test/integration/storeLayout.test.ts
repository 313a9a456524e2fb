/**
 * Where the store keeps the alert path, on the real store. By default alerts, their replay pages and
 * incidents share the alerts database; MONGODB_ALERT_PAGES_DATABASE and MONGODB_INCIDENTS_DATABASE
 * give the pages and the incidents their own (on FerretDB/SQLite, their own file and write lock).
 * Either way they are read back through the store alike.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { MongoClient } from 'mongodb';
import type { OverheatAlert } from '../../src/domain/alert.js';
import { AlertCursor } from '../../src/domain/alertCursor.js';
import { createLogger } from '../../src/logger.js';
import { ALERT_PAGES } from '../../src/store/alertPages.js';
import { INCIDENT_PARTITIONS } from '../../src/store/incidentStore.js';
import { connectMongoStore } from '../../src/store/mongoStore.js';
import { isolatedEnv, storeOptionsFrom } from '../support/env.js';

const raw = new MongoClient('mongodb://127.0.0.1:27017');
afterAll(async () => {
  await raw.close();
});

const alert: OverheatAlert = {
  id: 's-1|1000',
  sensorId: 's-1',
  temperature: 91,
  threshold: 80,
  ts: new Date(1000),
  location: { lat: 1, lon: 2 },
  detectedAt: new Date(),
  position: { partition: 0, offset: 7 },
};

/** Writes one alert and one partition's incident state, reads them back, and lists each database's collections. */
async function writeAndList(
  options: ReturnType<typeof storeOptionsFrom>,
  databases: Record<'alerts' | 'pages' | 'incidents', string>,
): Promise<Record<'alerts' | 'pages' | 'incidents', string[]>> {
  const store = await connectMongoStore({ ...options, logger: createLogger('silent') });
  try {
    await store.alerts.insert([alert]);
    await store.incidents.savePartition('t', 0, { appliedOffset: 7, running: [], limits: new Map() });
    const replayed = await store.alerts.between(
      AlertCursor.fromWatermarks(new Map()),
      new Map([[0, 7]]),
      undefined,
      10,
    );
    expect(replayed.map((a) => a.id)).toEqual([alert.id]);
    expect((await store.incidents.loadPartition('t', 0))?.appliedOffset).toBe(7);
  } finally {
    await store.dispose();
  }
  const list = async (db: string) => (await raw.db(db).listCollections().toArray()).map((c) => c.name);
  return {
    alerts: await list(databases.alerts),
    pages: await list(databases.pages),
    incidents: await list(databases.incidents),
  };
}

describe('the alert path in the store', () => {
  it('shares the alerts database by default', async () => {
    const options = {
      ...storeOptionsFrom(isolatedEnv('layoutshared')),
      alertPagesDatabase: undefined,
      incidentsDatabase: undefined,
    };
    const alerts = `${options.database}_alerts`;
    const found = await writeAndList(options, { alerts, pages: alerts, incidents: alerts });

    expect(found.alerts).toEqual(expect.arrayContaining(['alerts', ALERT_PAGES, INCIDENT_PARTITIONS]));
  });

  it('keeps the replay pages and the incidents in the databases it is given', async () => {
    const options = storeOptionsFrom(isolatedEnv('layoutspread'));
    const databases = {
      alerts: `${options.database}_alerts`,
      pages: options.alertPagesDatabase!,
      incidents: options.incidentsDatabase!,
    };
    expect(new Set(Object.values(databases)).size).toBe(3);
    const found = await writeAndList(options, databases);

    expect(found.alerts).toContain('alerts');
    expect(found.alerts).not.toContain(ALERT_PAGES);
    expect(found.alerts).not.toContain(INCIDENT_PARTITIONS);
    expect(found.pages).toContain(ALERT_PAGES);
    expect(found.pages).not.toContain('alerts');
    expect(found.incidents).toContain(INCIDENT_PARTITIONS);
    expect(found.incidents).not.toContain(ALERT_PAGES);
  });
});
