/**
 * History at scale: `readings` and `readingStats` over GraphQL/HTTP against one of the bench's API
 * replicas, with 1M readings stored (10M with --full), next to the store's own limit measured in the
 * same run: one exact `_id` lookup of a bucket document through the driver.
 *
 * The data is shaped so that the cost of a query must not depend on how much is stored: every sensor
 * holds 30 days at a 10 s cadence (259,200 readings), and storing more means more sensors, never
 * denser windows. A one-hour window, a paged day and a 30-day chart read the same documents at 1M
 * and at 10M, so a figure that moves between the two runs shows the store scaling with its size.
 *
 * Each query type is also timed straight through the store module in this process (no HTTP, no
 * GraphQL): with the `_id` limit, that splits a slow figure into store lookups, store-module work
 * (decoding, merging) and API work without a profiler. FerretDB's and the queried replica's CPU over
 * each scenario go in the notes: they say which process a latency is spent in.
 */
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { BSON } from 'mongodb';
import type { Reading } from '../../src/domain/reading.js';
import { DAY_MS, SLICE_MS, partId, sliceStart } from '../../src/domain/readingBuckets.js';
import { createLogger } from '../../src/logger.js';
import { seededRandom } from '../../src/simulator/random.js';
import { MongoClient, type Db } from 'mongodb';
import { connectMongoStore, type MongoStore } from '../../src/store/mongoStore.js';
import { BUCKETS, DAYS, SENSORS } from '../../src/store/readingHistory.js';
import { storeOptionsFrom } from '../../test/support/env.js';
import type { Cluster } from '../lib/replicas.js';
import { servicePid, watchCpu } from '../lib/processCpu.js';
import { Samples, type Figure } from '../lib/stats.js';

const CADENCE_MS = 10_000;
const SPAN_MS = 30 * DAY_MS;
/** 30 days at one reading per 10 s. */
const READINGS_PER_SENSOR = SPAN_MS / CADENCE_MS;
const PER_HOUR = SLICE_MS / CADENCE_MS;
const PER_DAY = DAY_MS / CADENCE_MS;
/** One sensor's consecutive readings per insert: about 56 bucket hours, a few bulk commands. */
const LOAD_BATCH = 20_000;
const HOUR_FIRST = 100;
const DAY_FIRST = 1000;
/** Queries run before each measured scenario and not recorded: connections, JIT, SQLite page cache. */
const WARMUP = 5;
/** The limit figure every query figure is printed next to. */
const LIMIT = 'raw.store.findById';

export interface HistoryOptions {
  /** Readings to store, rounded up to whole sensors of 30 days. */
  stored: number;
  /** Queries per query type; 24 h windows are a tenth of it (each is ~9 pages). */
  queries: number;
}

// ------------------------------------------------------------------------------------------ readers

/** One page, newest first, as both paths return it: timestamps (ms) and where the next page starts. */
interface PageResult {
  ts: number[];
  hasNextPage: boolean;
  endCursor: string | null;
}

interface PageQuery {
  sensorId: string;
  from: number;
  to: number;
  first: number;
  after: string | null;
}

interface StatsQuery {
  sensorId: string;
  from: number;
  to: number;
}

/** The same two queries over GraphQL/HTTP or through the store module, so one checker serves both. */
interface HistoryReader {
  page(q: PageQuery): Promise<PageResult>;
  /** HOUR points, oldest first. */
  stats(q: StatsQuery): Promise<{ start: number; count: number }[]>;
}

// Every field of a node is asked for: serialising them is part of what a client pays for.
const PAGE_QUERY = `query Page($sensorId: ID!, $from: DateTime, $to: DateTime, $first: Int, $after: String) {
  readings(sensorId: $sensorId, from: $from, to: $to, first: $first, after: $after) {
    edges { node { ts temperature humidity location { lat lon } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const STATS_QUERY = `query Stats($sensorId: ID!, $from: DateTime!, $to: DateTime!) {
  readingStats(sensorId: $sensorId, from: $from, to: $to, every: HOUR) { start count temperature { min max avg } humidity { min max avg } }
}`;

interface PageData {
  readings: { edges: { node: { ts: string } }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } };
}

interface StatsData {
  readingStats: { start: string; count: number }[];
}

async function graphql<T>(url: string, query: string, variables: Record<string, unknown>): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T | null; errors?: unknown };
  if (!body.data || body.errors) throw new Error(`GraphQL HTTP ${res.status}: ${JSON.stringify(body.errors)}`);
  return body.data;
}

const iso = (ms: number): string => new Date(ms).toISOString();

function apiReader(url: string): HistoryReader {
  return {
    async page(q) {
      const { readings } = await graphql<PageData>(url, PAGE_QUERY, {
        sensorId: q.sensorId,
        from: iso(q.from),
        to: iso(q.to),
        first: q.first,
        after: q.after,
      });
      return {
        ts: readings.edges.map((e) => Date.parse(e.node.ts)),
        hasNextPage: readings.pageInfo.hasNextPage,
        endCursor: readings.pageInfo.endCursor,
      };
    },
    async stats(q) {
      const { readingStats } = await graphql<StatsData>(url, STATS_QUERY, {
        sensorId: q.sensorId,
        from: iso(q.from),
        to: iso(q.to),
      });
      return readingStats.map((p) => ({ start: Date.parse(p.start), count: p.count }));
    },
  };
}

function storeReader(store: MongoStore): HistoryReader {
  return {
    async page(q) {
      const page = await store.readings.page({
        sensorId: q.sensorId,
        from: new Date(q.from),
        to: new Date(q.to),
        first: q.first,
        beforeTs: q.after === null ? undefined : new Date(Number(q.after)),
      });
      const ts = page.items.map((r) => r.ts.getTime());
      // The API's cursor is the last timestamp too (resolvers/pageCursor.ts), only encoded.
      return { ts, hasNextPage: page.hasNextPage, endCursor: ts.length > 0 ? String(ts.at(-1)) : null };
    },
    async stats(q) {
      const points = await store.readings.stats({
        sensorId: q.sensorId,
        from: new Date(q.from),
        to: new Date(q.to),
        every: 'HOUR',
      });
      return points.map((p) => ({ start: p.start.getTime(), count: p.summary.n }));
    },
  };
}

// ------------------------------------------------------------------------------------------- helpers

interface Dataset {
  sensorIds: string[];
  /** First and last reading of every sensor (they share timestamps). */
  firstTs: number;
  lastTs: number;
}

const pick = <T>(rng: () => number, items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;
/** A random window start such that [from, from + width) lies inside the stored span. */
const windowStart = (rng: () => number, data: Dataset, width: number): number =>
  data.firstTs + Math.floor(rng() * (data.lastTs - data.firstTs - width));

function sizeLabel(n: number): string {
  if (n >= 1e6) return `${+(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
  return String(n);
}

/** A plausible reading: a daily temperature and humidity cycle, a fixed place per sensor. */
function syntheticReading(sensorId: string, sensorIndex: number, ts: number): Reading {
  const phase = (2 * Math.PI * (ts % DAY_MS)) / DAY_MS;
  const round1 = (x: number): number => Math.round(x * 10) / 10;
  return {
    sensorId,
    ts: new Date(ts),
    temperature: round1(21 + 4 * Math.sin(phase) + (sensorIndex % 10) * 0.5),
    humidity: round1(50 - 10 * Math.sin(phase)),
    location: { lat: 48.1 + sensorIndex * 0.001, lon: 11.6 },
  };
}

/** Checks one page of a window: at most `first`, newest first, inside [from, to], older than `below`. */
function checkPage(page: PageResult, q: PageQuery, below: number, what: string): void {
  const fail = (why: string): never => {
    throw new Error(`history: ${what} (${q.sensorId}, ${iso(q.from)} .. ${iso(q.to)}, first ${q.first}): ${why}`);
  };
  if (page.ts.length > q.first) fail(`${page.ts.length} items`);
  if (page.hasNextPage && page.ts.length < q.first) fail(`short page (${page.ts.length}) with hasNextPage`);
  if (page.hasNextPage && !page.endCursor) fail('hasNextPage without endCursor');
  let prev = below;
  for (const ts of page.ts) {
    if (!(ts < prev)) fail(`timestamps not strictly descending across pages (${iso(ts)} after ${iso(prev)})`);
    if (ts < q.from || ts > q.to) fail(`reading at ${iso(ts)} outside the window`);
    prev = ts;
  }
}

// ------------------------------------------------------------------------------------------------ CPU

interface CpuWatch {
  store?: number | undefined;
  api?: number | undefined;
}

/** Runs `fn` and says how busy FerretDB and the queried replica were, in % of one core over its wall time. */
async function withCpu<T>(pids: CpuWatch, fn: () => Promise<T>): Promise<{ result: T; cpu: string; wallS: number }> {
  const watch = watchCpu({ store: pids.store, api: pids.api });
  const result = await fn();
  const { wallS, cores, hostBusy } = watch.stop();
  const share = (c: number | undefined): string => (c === undefined ? 'n/a' : `${(c * 100).toFixed(0)}%`);
  // The whole host too: on a shared machine, other work there explains a noisy figure.
  const cpu =
    `CPU over ${wallS.toFixed(2)} s: store (FerretDB) ${share(cores.store)} of one core, ` +
    `API replica ${share(cores.api)}, host ${share(hostBusy)} busy (${availableParallelism()} cores)`;
  return { result, cpu, wallS };
}

// ------------------------------------------------------------------------------------------ scenarios

async function load(store: MongoStore, sensors: number, lastTs: number): Promise<Dataset> {
  const firstTs = lastTs - (READINGS_PER_SENSOR - 1) * CADENCE_MS;
  const sensorIds = Array.from({ length: sensors }, (_, s) => `hist-${s}`);
  for (const [s, sensorId] of sensorIds.entries()) {
    for (let i = 0; i < READINGS_PER_SENSOR; i += LOAD_BATCH) {
      const batch: Reading[] = [];
      for (let k = i; k < Math.min(i + LOAD_BATCH, READINGS_PER_SENSOR); k++)
        batch.push(syntheticReading(sensorId, s, firstTs + k * CADENCE_MS));
      // Awaited one by one: the store serialises writes anyway, and this keeps the batch size honest.
      const added = await store.readings.insert(batch);
      if (added !== batch.length)
        throw new Error(`history: ${added} of ${batch.length} readings were new (the database was not empty?)`);
    }
    console.error(`  history: loaded sensor ${s + 1}/${sensors}`);
  }
  return { sensorIds, firstTs, lastTs };
}

/** collStats `size` of the history collections, and the SQLite file for comparison. */
async function storedBytes(db: Db, sqliteDir: string): Promise<{ bytes: number | undefined; notes: string[] }> {
  const notes: string[] = [];
  let bytes: number | undefined = 0;
  for (const name of [BUCKETS, DAYS, SENSORS]) {
    try {
      const s = (await db.command({ collStats: name })) as { size?: number; totalSize?: number; count?: number };
      if (typeof s.size !== 'number') throw new Error('no size in the answer');
      bytes = bytes === undefined ? undefined : bytes + s.size;
      notes.push(`${name}: ${s.count ?? '?'} docs, size ${s.size} B, totalSize ${s.totalSize ?? '?'} B`);
    } catch (err) {
      bytes = undefined;
      notes.push(`${name}: collStats failed (${(err as Error).message})`);
    }
  }
  const file = join(sqliteDir, `${db.databaseName}.sqlite`);
  const sizeOf = (path: string): string => {
    try {
      return `${(statSync(path).size / 2 ** 20).toFixed(1)} MiB`;
    } catch {
      return '?';
    }
  };
  notes.push(`SQLite file ${sizeOf(file)} + WAL ${sizeOf(`${file}-wal`)} (whole database)`);
  return { bytes, notes };
}

/** The store's limit: one bucket part by exact `_id`, through the driver alone. */
async function bucketLookups(db: Db, data: Dataset, rng: () => number, n: number, samples: Samples): Promise<number> {
  const buckets = db.collection<{ _id: string; n: number }>(BUCKETS);
  const firstFullHour = sliceStart(data.firstTs) + SLICE_MS;
  const hours = (sliceStart(data.lastTs) - firstFullHour) / SLICE_MS;
  let bytes = 0;
  for (let q = 0; q < n; q++) {
    const id = partId(pick(rng, data.sensorIds), firstFullHour + Math.floor(rng() * hours) * SLICE_MS, 0);
    const t = performance.now();
    const doc = await buckets.findOne({ _id: id });
    samples.add(performance.now() - t);
    if (doc?.n !== PER_HOUR)
      throw new Error(`history: bucket ${id} ${doc ? `holds ${doc.n} readings, not ${PER_HOUR}` : 'not found'}`);
    bytes = BSON.calculateObjectSize(doc);
  }
  return bytes;
}

/** Newest 100 of a random hour of a random sensor: every hour holds 360, so exactly 100 and more. */
async function oneHourWindows(
  reader: HistoryReader,
  data: Dataset,
  rng: () => number,
  n: number,
  samples: Samples,
): Promise<void> {
  for (let i = 0; i < n; i++) {
    const from = windowStart(rng, data, SLICE_MS);
    const q: PageQuery = {
      sensorId: pick(rng, data.sensorIds),
      from,
      to: from + SLICE_MS - 1,
      first: HOUR_FIRST,
      after: null,
    };
    const t = performance.now();
    const page = await reader.page(q);
    samples.add(performance.now() - t);
    checkPage(page, q, Infinity, 'one-hour window');
    if (page.ts.length !== HOUR_FIRST || !page.hasNextPage)
      throw new Error(
        `history: one-hour window returned ${page.ts.length} (hasNextPage ${page.hasNextPage}), expected ${HOUR_FIRST} and more`,
      );
  }
}

/**
 * Random 24 h windows paged to the end (first 1000, following endCursor): one sample per page, and
 * one per whole day. A day is [from, from + 24 h), so it holds exactly 8640 readings.
 */
async function dayWindows(
  reader: HistoryReader,
  data: Dataset,
  rng: () => number,
  windows: number,
  pageSamples: Samples,
  daySamples: Samples,
): Promise<number> {
  let pages = 0;
  for (let w = 0; w < windows; w++) {
    const from = windowStart(rng, data, DAY_MS);
    const q: PageQuery = {
      sensorId: pick(rng, data.sensorIds),
      from,
      to: from + DAY_MS - 1,
      first: DAY_FIRST,
      after: null,
    };
    let below = Infinity;
    let seen = 0;
    const dayStarted = performance.now();
    for (;;) {
      const t = performance.now();
      const page = await reader.page(q);
      pageSamples.add(performance.now() - t);
      pages++;
      checkPage(page, q, below, '24 h window');
      seen += page.ts.length;
      below = page.ts.at(-1) ?? below;
      if (!page.hasNextPage) break;
      q.after = page.endCursor;
    }
    daySamples.add(performance.now() - dayStarted);
    if (seen !== PER_DAY)
      throw new Error(
        `history: 24 h window of ${q.sensorId} from ${iso(from)} paged to ${seen} readings, expected ${PER_DAY}`,
      );
  }
  return pages;
}

/** readingStats at HOUR over a random sensor's whole 30 days: ~720 points summing to every reading. */
async function statsQueries(
  reader: HistoryReader,
  data: Dataset,
  rng: () => number,
  n: number,
  samples: Samples,
): Promise<number> {
  let points = 0;
  for (let i = 0; i < n; i++) {
    const sensorId = pick(rng, data.sensorIds);
    const t = performance.now();
    const stats = await reader.stats({ sensorId, from: data.firstTs, to: Date.now() });
    samples.add(performance.now() - t);
    const total = stats.reduce((sum, p) => sum + p.count, 0);
    if (stats.length < 700 || total !== READINGS_PER_SENSOR) {
      throw new Error(
        `history: readingStats of ${sensorId} over 30 days returned ${stats.length} points counting ${total} readings, expected >= 700 and ${READINGS_PER_SENSOR}`,
      );
    }
    if (stats.some((p, k) => k > 0 && p.start <= stats[k - 1]!.start))
      throw new Error(`history: readingStats of ${sensorId} not oldest first`);
    points = stats.length;
  }
  return points;
}

// -------------------------------------------------------------------------------------------- runner

export async function history(cluster: Cluster, o: HistoryOptions): Promise<Figure[]> {
  const storeOptions = storeOptionsFrom(cluster.env);
  const store = await connectMongoStore({ ...storeOptions, logger: createLogger('silent') });
  // The driver alone, for the raw figures and collStats (the store module hides its database).
  const rawClient = new MongoClient(storeOptions.url);
  const rawDb = rawClient.db(storeOptions.database);
  const pids: CpuWatch = { store: servicePid('ferretdb'), api: cluster.replicas[0]?.child.pid };
  const label = sizeLabel(o.stored);
  const sensors = Math.ceil(o.stored / READINGS_PER_SENSOR);
  const windows = Math.max(1, Math.ceil(o.queries / 10));
  const figures: Figure[] = [];
  /** Adds a latency figure and prints it as it comes: a long run shows progress, a failed one what it had. */
  const measured = (f: Figure, cpu?: string): void => {
    figures.push(f);
    const l = f.latency!;
    console.error(
      `  ${f.name}: p50 ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms, n ${l.count}${cpu ? `; ${cpu}` : ''}`,
    );
  };
  try {
    // 1. Load through the store module, ending a minute ago: the newest hour is a partial one, as in production.
    const lastTs = Math.floor((Date.now() - 60_000) / CADENCE_MS) * CADENCE_MS;
    const loaded = await withCpu(pids, () => load(store, sensors, lastTs));
    const data = loaded.result;
    const stored = sensors * READINGS_PER_SENSOR;
    const counted = await store.readings.count(data.sensorIds);
    if (counted !== stored) throw new Error(`history: ${counted} readings counted after loading ${stored}`);
    const rate = stored / loaded.wallS;
    console.error(
      `  history: ${stored} readings (${sensors} sensors × 30 d at 10 s) loaded in ${loaded.wallS.toFixed(1)} s (${Math.round(rate)}/s); ${loaded.cpu}`,
    );
    figures.push({
      name: 'history.loadRate',
      rate,
      unit: 'readings/s',
      notes: `${stored} readings of ${sensors} sensors through store.readings.insert, ${LOAD_BATCH} consecutive readings of one sensor per call, one call at a time; ${loaded.cpu}`,
    });
    const size = await storedBytes(rawDb, storeOptions.ferretSqliteDir);
    console.error(`  history: ${size.notes.join('; ')}`);
    figures.push({
      name: 'history.bytesPerReading',
      ...(size.bytes !== undefined ? { value: size.bytes / stored } : {}),
      unit: 'bytes/reading',
      notes: `collStats size of ${BUCKETS} + ${DAYS} + ${SENSORS} / ${stored} readings (FerretDB stores JSON, binary columns as base64); ${size.notes.join('; ')}`,
    });

    const rng = seededRandom(0x5eed); // every run asks for comparable windows
    const api = apiReader(cluster.urls[0]!);
    const direct = storeReader(store);

    // 2. The store's own limit: what one exact `_id` lookup of a bucket costs.
    await bucketLookups(rawDb, data, rng, WARMUP, new Samples());
    const limit = new Samples();
    const lookup = await withCpu(pids, () => bucketLookups(rawDb, data, rng, o.queries, limit));
    measured(
      {
        name: LIMIT,
        latency: limit.percentiles(),
        unit: 'ms',
        notes: `findOne({_id}) of one bucket part (${PER_HOUR} readings, ${lookup.result} B of BSON) via the driver alone, ${o.queries} lookups; ${lookup.cpu}`,
      },
      lookup.cpu,
    );

    // 3. The three query types, over GraphQL/HTTP then through the store module alone.
    for (const [reader, via, suffix] of [
      [api, `GraphQL/HTTP to ${cluster.urls[0]}`, ''],
      [direct, 'the store module in the bench process (no HTTP, no GraphQL)', '.store'],
    ] as const) {
      await oneHourWindows(reader, data, rng, WARMUP, new Samples());
      const hour = new Samples();
      const h = await withCpu(pids, () => oneHourWindows(reader, data, rng, o.queries, hour));
      measured(
        {
          name: `history.oneHourWindow${suffix}.${label}`,
          limit: LIMIT,
          latency: hour.percentiles(),
          unit: 'ms',
          notes: `${o.queries} random one-hour windows (random sensor), first ${HOUR_FIRST}, via ${via}; ${HOUR_FIRST} items checked; ${h.cpu}`,
        },
        h.cpu,
      );

      await dayWindows(reader, data, rng, 1, new Samples(), new Samples());
      const page = new Samples();
      const day = new Samples();
      const d = await withCpu(pids, () => dayWindows(reader, data, rng, windows, page, day));
      measured(
        {
          name: `history.day.page${DAY_FIRST}${suffix}.${label}`,
          limit: LIMIT,
          latency: page.percentiles(),
          unit: 'ms',
          notes: `${windows} random 24 h windows paged to the end with first ${DAY_FIRST}, one sample per page: ${d.result} pages (${(d.result / windows).toFixed(1)} per day), ${PER_DAY} readings per day checked, via ${via}; ${d.cpu}`,
        },
        `${d.result} pages; ${d.cpu}`,
      );
      measured({
        name: `history.day.wholeDay${suffix}.${label}`,
        latency: day.percentiles(),
        unit: 'ms',
        notes: `all pages of one 24 h window back to back, ${windows} windows, via ${via}`,
      });

      await statsQueries(reader, data, rng, WARMUP, new Samples());
      const chart = new Samples();
      const s = await withCpu(pids, () => statsQueries(reader, data, rng, o.queries, chart));
      measured(
        {
          name: `history.stats30dHour${suffix}.${label}`,
          limit: LIMIT,
          latency: chart.percentiles(),
          unit: 'ms',
          notes: `${o.queries} readingStats every HOUR over a random sensor's 30 days via ${via}: ${s.result} points, counts summing to ${READINGS_PER_SENSOR} checked; ${s.cpu}`,
        },
        `${s.result} points; ${s.cpu}`,
      );
    }
  } finally {
    await store.dispose();
    await rawClient.close();
  }
  return figures;
}
