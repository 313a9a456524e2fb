/**
 * Alerts as users subscribe to them, for as long as a storm lasts: subscribers to all sensors next
 * to subscribers naming 1, 10 and 200 sensors and subscribers of a scoped API key, all in the same
 * window, each kind reported on its own (per minute when the run lasts minutes). Optionally the store
 * is first filled with days of alerts, and a third replica joins, then leaves, mid-load.
 *
 * Beside each minute: the alert path's store stage (mean per batch) and the size of the alert
 * path's SQLite files and their WAL, so a run shows whether storage keeps up as it grows.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { connectMongoStore } from '../../src/store/mongoStore.js';
import { createLogger } from '../../src/logger.js';
import type { OverheatAlert } from '../../src/domain/alert.js';
import { ferretSqliteDir, storeOptionsFrom } from '../../test/support/env.js';
import { spawnReplica, type ReplicaProcess } from '../../test/support/pipeline.js';
import type { Cluster } from '../lib/replicas.js';
import { createReadingLoad } from '../lib/loadgen.js';
import { openSubscribers, type SubscriberGroup } from '../lib/subscribers.js';
import { sleep, type Figure, type Percentiles } from '../lib/stats.js';
import { servicePid, watchCpu } from '../lib/processCpu.js';

/** The scoped key the bench's cluster is given (see run.ts): a viewer limited to SCOPED_SENSORS. */
export const SCOPED_KEY_SECRET = 'bench-scoped-viewer-key';
export const SCOPED_SENSORS = Array.from({ length: 20 }, (_, i) => `bench-${100 + i}`);
export const scopedApiKey = (): string => `viewer:${SCOPED_KEY_SECRET}:${SCOPED_SENSORS.join('|')}`;

const FIELDS = '{ id sensorId temperature ts cursor }';
const sensorsQuery = (ids: readonly string[]): string =>
  `subscription { overheatAlerts(sensorIds: [${ids.map((id) => JSON.stringify(id)).join(',')}]) ${FIELDS} }`;
const ALL_QUERY = `subscription { overheatAlerts ${FIELDS} }`;

export interface SubscriberKind {
  /** Short label used in figure names: `all`, `1_sensor`, ... */
  label: string;
  count: number;
  query: string;
  authorization?: string;
  /** The sensors whose alerts each subscriber of this kind is sent (undefined: all). */
  sensorIds?: readonly string[];
}

/** The kinds measured side by side; `sensors` is the load's fleet (bench-0 .. bench-<sensors-1>). */
export function subscriberKinds(sensors: number, perKind: { all: number; filtered: number }): SubscriberKind[] {
  const ids = (n: number) => Array.from({ length: n }, (_, i) => `bench-${i}`);
  return [
    { label: 'all', count: perKind.all, query: ALL_QUERY },
    { label: '1_sensor', count: perKind.filtered, query: sensorsQuery(ids(1)), sensorIds: ids(1) },
    { label: '10_sensors', count: perKind.filtered, query: sensorsQuery(ids(10)), sensorIds: ids(10) },
    {
      label: `${sensors}_sensors`,
      count: perKind.filtered,
      query: sensorsQuery(ids(sensors)),
      sensorIds: ids(sensors),
    },
    {
      label: 'scoped_key',
      count: perKind.filtered,
      query: ALL_QUERY,
      authorization: `Bearer ${SCOPED_KEY_SECRET}`,
      sensorIds: SCOPED_SENSORS,
    },
  ];
}

/** Bytes of the cluster's SQLite files (FerretDB keeps one per database), and of their WALs. */
function storeFiles(env: Record<string, string>): { bytes: number; walBytes: number } {
  const dir = env.MONGODB_FERRETDB_SQLITE_DIR ?? ferretSqliteDir();
  let bytes = 0;
  let walBytes = 0;
  if (!existsSync(dir)) return { bytes, walBytes };
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(env.MONGODB_DATABASE!)) continue;
    const size = statSync(join(dir, name)).size;
    if (name.endsWith('-wal')) walBytes += size;
    else bytes += size;
  }
  return { bytes, walBytes };
}
const mb = (bytes: number): string => `${(bytes / 1_048_576).toFixed(0)} MB`;

/** Share of alerts the replicas published within 0.1, 1 and 5 s of their reading: where a tail began. */
function publishedWithin(before: Record<string, number>[], after: Record<string, number>[]): string {
  const delta = (series: string): number =>
    after.reduce((sum, m, i) => sum + (m[series] ?? 0) - (before[i]?.[series] ?? 0), 0);
  const total = delta('alert_latency_seconds_count');
  if (total === 0) return '-';
  return ['0.1', '1', '5']
    .map((le) => `${le} s ${((delta(`alert_latency_seconds_bucket{le="${le}"}`) * 100) / total).toFixed(1)} %`)
    .join(', ');
}

/** Mean of a labelled histogram between two /metrics readings of every replica, in ms. */
function meanMs(before: Record<string, number>[], after: Record<string, number>[], name: string): number {
  let sum = 0;
  let count = 0;
  const [base, labels] = name.split('{');
  after.forEach((m, i) => {
    sum += (m[`${base}_sum{${labels}`] ?? 0) - (before[i]?.[`${base}_sum{${labels}`] ?? 0);
    count += (m[`${base}_count{${labels}`] ?? 0) - (before[i]?.[`${base}_count{${labels}`] ?? 0);
  });
  return count > 0 ? (sum / count) * 1000 : Number.NaN;
}

/**
 * Stores `count` alerts of days gone by, as the alert path stores them, on partitions the run does
 * not use (its topic has fewer): the store holds them, its tables and indexes are that large, and
 * the run's positions never meet them.
 */
export async function fillStoreWithAlerts(env: Record<string, string>, count: number, days = 7): Promise<void> {
  if (count <= 0) return;
  const store = await connectMongoStore({ ...storeOptionsFrom(env), logger: createLogger('silent') });
  const started = Date.now();
  try {
    const since = Date.now() - days * 86_400_000;
    const step = (days * 86_400_000) / count;
    const BATCH = 2000;
    const partitions = 6;
    for (let i = 0; i < count; i += BATCH) {
      const batch: OverheatAlert[] = [];
      for (let j = i; j < Math.min(count, i + BATCH); j++) {
        const ts = new Date(since + j * step);
        const sensorId = `filled-${j % 1000}`;
        batch.push({
          id: `${sensorId}|${ts.toISOString()}`,
          sensorId,
          temperature: 85.5,
          threshold: 80,
          ts,
          location: { lat: 52.5, lon: 13.4 },
          detectedAt: ts,
          position: { partition: 1000 + (j % partitions), offset: Math.floor(j / partitions) },
        });
      }
      // One partition per call, as the alert path writes (one writer per partition's pages).
      for (let p = 0; p < partitions; p++)
        await store.alerts.insert(batch.filter((a) => a.position.partition === 1000 + p));
      if (i % 200_000 === 0 && i > 0) {
        const rate = i / ((Date.now() - started) / 1000);
        console.error(`  filled ${i.toLocaleString('en-US')} alerts (${rate.toFixed(0)}/s)`);
      }
    }
  } finally {
    await store.dispose();
  }
  console.error(
    `  store filled with ${count.toLocaleString('en-US')} alerts in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
}

export async function alertStorm(
  cluster: Cluster,
  o: {
    /** Figure-name prefix: `alert.kinds` (a short window) or `alert.storm` (minutes). */
    name: string;
    rate: number;
    criticalEvery: number;
    sensors: number;
    kinds: SubscriberKind[];
    /** Length of the load; reported per minute when it is longer than one. */
    durationMs: number;
    /** A third replica joins at a third of the run and leaves at two thirds. */
    churn?: boolean;
  },
): Promise<Figure[]> {
  const load = await createReadingLoad(cluster.env.KAFKA_READINGS_TOPIC!, o.sensors, o.criticalEvery);
  const groups: SubscriberGroup[] = [];
  const figures: Figure[] = [];
  let extra: ReplicaProcess | undefined;
  try {
    await load.run(500, 3000); // warm-up: JIT, connections, group assignment
    await cluster.waitIdle();
    for (const kind of o.kinds) {
      groups.push(await openSubscribers(cluster.urls, kind.count, kind.query, { authorization: kind.authorization }));
    }
    await sleep(2000); // every subscription joined (a notice or two)
    for (const g of groups) await g.rotate();

    const windowMs = Math.min(60_000, o.durationMs);
    const windows = Math.max(1, Math.round(o.durationMs / windowMs));
    const perWindow: { kind: string; minute: number; received: number; latency: Percentiles }[] = [];
    const stages: {
      backlog: number;
      store: number;
      writes: string;
      retries: number;
      published: string;
      cpu: string;
      files: ReturnType<typeof storeFiles>;
    }[] = [];
    let sentTotal = 0;
    let criticalTotal = 0;
    const criticalBySensor = new Map<string, number>();
    const churnAt = o.churn ? [Math.floor(windows / 3), Math.floor((2 * windows) / 3)] : [];
    for (let w = 0; w < windows; w++) {
      const before = await cluster.metrics();
      const cpu = watchCpu({
        store: servicePid('ferretdb'),
        kafka: servicePid('kafka'),
        ...Object.fromEntries(cluster.replicas.map((r, i) => [`replica ${i + 1}`, r.child.pid])),
      });
      const churn =
        w === churnAt[0]
          ? (async () => {
              await sleep(windowMs / 3);
              console.error('  a third replica joins');
              extra = await spawnReplica(cluster.env, undefined, ['--expose-gc']);
            })()
          : w === churnAt[1] && extra
            ? (async () => {
                await sleep(windowMs / 3);
                console.error('  the third replica leaves (SIGTERM)');
                await extra.stop('SIGTERM');
                extra = undefined;
              })()
            : Promise.resolve();
      const sent = await load.run(o.rate, windowMs);
      const cores = cpu.stop().text;
      await churn;
      sentTotal += sent.sent;
      criticalTotal += sent.critical;
      for (const [id, n] of sent.criticalBySensor) criticalBySensor.set(id, (criticalBySensor.get(id) ?? 0) + n);
      const last = w === windows - 1;
      if (last) await sleep(5000); // what arrives within 5 s of the end counts
      const after = await cluster.metrics();
      stages.push({
        backlog: meanMs(before, after, 'alert_stage_seconds{stage="backlog"}'),
        store: meanMs(before, after, 'alert_stage_seconds{stage="store"}'),
        writes: ['alerts', 'incident updates', 'incidents']
          .map((w) => `${w} ${meanMs(before, after, `store_write_seconds{what="${w}"}`).toFixed(1)}`)
          .join(', '),
        cpu: cores,
        published: publishedWithin(before, after),
        retries: after.reduce((n, m, i) => n + (m.store_retries_total ?? 0) - (before[i]?.store_retries_total ?? 0), 0),
        files: storeFiles(cluster.env),
      });
      for (const [i, g] of groups.entries()) {
        const r = await g.rotate();
        perWindow.push({ kind: o.kinds[i]!.label, minute: w + 1, ...r });
      }
      const line = o.kinds
        .map((k) => {
          const r = perWindow.find((x) => x.kind === k.label && x.minute === w + 1)!;
          return `${k.label} p50 ${r.latency.p50.toFixed(1)} p99 ${r.latency.p99.toFixed(1)} max ${r.latency.max.toFixed(0)}`;
        })
        .join('; ');
      const s = stages[w]!;
      console.error(
        `  ${o.name} ${windows > 1 ? `minute ${w + 1}` : 'window'} @ ${sent.achievedRate.toFixed(0)}/s: ${line}; store stage ${s.store.toFixed(1)} ms (${s.writes}), backlog ${s.backlog.toFixed(1)} ms, ${s.retries} store retries; published within ${s.published}; store files ${mb(s.files.bytes)}, WAL ${mb(s.files.walBytes)}; CPU ${s.cpu}`,
      );
    }

    for (const kind of o.kinds) {
      const rows = perWindow.filter((r) => r.kind === kind.label);
      const received = rows.reduce((n, r) => n + r.received, 0);
      const alerts = kind.sensorIds
        ? kind.sensorIds.reduce((n, id) => n + (criticalBySensor.get(id) ?? 0), 0)
        : criticalTotal;
      const expected = alerts * kind.count;
      for (const r of rows) {
        const s = stages[r.minute - 1]!;
        figures.push({
          name: windows > 1 ? `${o.name}.${kind.label}.minute_${r.minute}` : `${o.name}.${kind.label}`,
          limit: 'raw.kafka.latency',
          latency: r.latency,
          rate: o.rate,
          unit: 'ms',
          notes: `${kind.count} subscribers (${kind.label}); ${r.received} deliveries in the window; store stage ${s.store.toFixed(1)} ms (${s.writes}), backlog ${s.backlog.toFixed(1)} ms per batch; CPU ${s.cpu}; store files ${mb(s.files.bytes)}, WAL ${mb(s.files.walBytes)}`,
        });
      }
      figures.push({
        name: `${o.name}.${kind.label}.delivered`,
        value: expected > 0 ? received / expected : Number.NaN,
        unit: 'share',
        notes: `${received}/${expected} deliveries (${sentTotal} readings, ${criticalTotal} alerts; each subscriber expects its sensors' alerts)`,
      });
      console.error(`  ${o.name} ${kind.label}: delivered ${received}/${expected}`);
    }
  } finally {
    await extra?.stop('SIGTERM');
    for (const g of groups) await g.close();
    await load.close();
  }
  return figures;
}
