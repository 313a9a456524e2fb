/**
 * History: `readings` for a one-hour window of one sensor, over GraphQL/HTTP, with N readings stored.
 */
import { createLogger } from '../../src/logger.js';
import { connectMongoStore } from '../../src/store/mongoStore.js';
import type { Reading } from '../../src/domain/reading.js';
import type { Cluster } from '../lib/replicas.js';
import { Samples, type Figure } from '../lib/stats.js';

const QUERY = `query ($sensorId: ID!, $from: DateTime, $to: DateTime, $first: Int) {
  readings(sensorId: $sensorId, from: $from, to: $to, first: $first) { edges { node { ts temperature humidity location { lat lon } } } pageInfo { hasNextPage endCursor } }
}`;

export async function history(cluster: Cluster, o: { stored: number; sensors: number; queries: number; pageSize: number }): Promise<Figure[]> {
  const store = await connectMongoStore({ url: 'mongodb://127.0.0.1:27017', database: cluster.env.MONGODB_DATABASE!, logger: createLogger('silent') });
  const perSensor = Math.ceil(o.stored / o.sensors);
  const end = Date.now() - 60_000;
  const start = end - perSensor * 1000; // one reading per second per sensor
  const t0 = performance.now();
  const batch: Reading[] = [];
  let inserted = 0;
  const pending: Promise<number>[] = [];
  for (let i = 0; i < perSensor && inserted < o.stored; i++) {
    for (let s = 0; s < o.sensors && inserted < o.stored; s++, inserted++) {
      batch.push({ sensorId: `hist-${s}`, ts: new Date(start + i * 1000), temperature: 20 + (i % 15), humidity: 45, location: { lat: 48.1, lon: 11.6 } });
      if (batch.length === 1000) {
        pending.push(store.readings.insert(batch.splice(0)));
        if (pending.length >= 4) await pending.shift();
      }
    }
  }
  pending.push(store.readings.insert(batch.splice(0)));
  await Promise.all(pending);
  const loadSeconds = (performance.now() - t0) / 1000;
  console.error(`  history: ${inserted} readings loaded in ${loadSeconds.toFixed(1)} s (${Math.round(inserted / loadSeconds)}/s)`);

  const samples = new Samples();
  const url = cluster.urls[0]!;
  let returned = 0;
  for (let q = 0; q < o.queries; q++) {
    const sensorId = `hist-${q % o.sensors}`;
    const from = start + Math.floor(Math.random() * Math.max(1, perSensor * 1000 - 3600_000));
    const t = performance.now();
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: QUERY, variables: { sensorId, from: new Date(from).toISOString(), to: new Date(from + 3600_000).toISOString(), first: o.pageSize } }),
    });
    const body = (await res.json()) as { data?: { readings: { edges: unknown[] } }; errors?: unknown };
    samples.add(performance.now() - t);
    if (!body.data) throw new Error(`history query failed: ${JSON.stringify(body.errors)}`);
    returned += body.data.readings.edges.length;
  }
  // The same window straight through the driver: the store's own limit for this query.
  const raw = new Samples();
  const readings = store.db.collection('readings');
  for (let q = 0; q < o.queries; q++) {
    const from = start + Math.floor(Math.random() * Math.max(1, perSensor * 1000 - 3600_000));
    const t = performance.now();
    await readings
      .find({ sensorId: `hist-${q % o.sensors}`, ts: { $gte: new Date(from), $lte: new Date(from + 3600_000) } })
      .sort({ ts: -1 })
      .limit(o.pageSize + 1)
      .toArray();
    raw.add(performance.now() - t);
  }
  await store.dispose();
  const latency = samples.percentiles();
  console.error(`  history: one-hour window, first ${o.pageSize}: p50 ${latency.p50.toFixed(1)} ms p99 ${latency.p99.toFixed(1)} ms`);
  return [
    { name: 'raw.store.findLatency', latency: raw.percentiles(), unit: 'ms', notes: 'the same one-hour window via the MongoDB driver alone' },
    { name: `history.oneHourWindow.${o.stored >= 1e6 ? `${o.stored / 1e6}M` : `${o.stored / 1e3}k`}`, limit: 'raw.store.findLatency', latency, unit: 'ms', notes: `${o.queries} queries, first ${o.pageSize} (avg ${Math.round(returned / o.queries)} returned), ${inserted} readings of ${o.sensors} sensors stored` },
    { name: 'history.loadRate', limit: 'raw.store.insertRate', rate: inserted / loadSeconds, unit: 'readings/s', notes: 'bulk load through the store module (insertMany unordered, 1000 per batch, 4 in flight)' },
  ];
}
