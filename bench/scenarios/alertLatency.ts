/**
 * Alert latency: from a reading's production (its timestamp at send) to the OverheatAlert received
 * by graphql-ws clients, at fixed reading rates and subscriber counts spread over the replicas.
 */
import type { Cluster } from '../lib/replicas.js';
import { createReadingLoad } from '../lib/loadgen.js';
import { openSubscribers } from '../lib/subscribers.js';
import { sleep, type Figure } from '../lib/stats.js';
import { servicePid, watchCpu } from '../lib/processCpu.js';

const STAGES = ['queued', 'judge', 'backlog', 'store', 'watermark', 'publish'] as const;
const STORE_WRITES = ['alerts', 'incident updates', 'incidents'] as const;

/** Mean of a histogram's observations between two /metrics readings of every replica, in ms. */
function meanMs(before: Record<string, number>[], after: Record<string, number>[], series: string): string {
  let sum = 0;
  let count = 0;
  after.forEach((m, i) => {
    const [name, labels] = series.split('{');
    const key = (part: string) => `${name}_${part}{${labels}`;
    sum += (m[key('sum')] ?? 0) - (before[i]![key('sum')] ?? 0);
    count += (m[key('count')] ?? 0) - (before[i]![key('count')] ?? 0);
  });
  return count > 0 ? ((sum / count) * 1000).toFixed(1) : '-';
}

/** Upper bounds (s) of iot_alert_latency_seconds buckets reported: how much of the tail is before publishing. */
const PUBLISHED_WITHIN = ['0.025', '0.05', '0.1'] as const;

/**
 * Share of alerts published on Redis within each bound of their reading's timestamp, over every
 * replica (iot_alert_latency_seconds): what the replicas saw, before the sockets and the clients.
 */
function publishedWithin(before: Record<string, number>[], after: Record<string, number>[]): string {
  const delta = (series: string): number =>
    after.reduce((sum, m, i) => sum + (m[series] ?? 0) - (before[i]![series] ?? 0), 0);
  const total = delta('alert_latency_seconds_count');
  if (total === 0) return '-';
  return PUBLISHED_WITHIN.map(
    (le) =>
      `${Number(le) * 1000} ms ${((delta(`alert_latency_seconds_bucket{le="${le}"}`) * 100) / total).toFixed(1)} %`,
  ).join(', ');
}

/** Mean time per batch in each alert-path stage (iot_alert_stage_seconds), and of each store write. */
function stageMeans(before: Record<string, number>[], after: Record<string, number>[]): string {
  return [
    ...STAGES.map((stage) => `${stage} ${meanMs(before, after, `alert_stage_seconds{stage="${stage}"}`)}`),
    ...STORE_WRITES.map((what) => `(store: ${what} ${meanMs(before, after, `store_write_seconds{what="${what}"}`)})`),
  ].join(', ');
}

export async function alertLatency(
  cluster: Cluster,
  o: { rates: number[]; subscriberCounts: number[]; durationMs: number; criticalEvery: number; tracedEvery?: number },
): Promise<Figure[]> {
  const figures: Figure[] = [];
  const load = await createReadingLoad(cluster.env.KAFKA_READINGS_TOPIC!, 1000, o.criticalEvery, o.tracedEvery);
  try {
    // Warm-up: JIT, connections, group assignment.
    await load.run(500, 3000);
    await sleep(1000);
    for (const subscribers of o.subscriberCounts) {
      const group = await openSubscribers(cluster.urls, subscribers);
      await sleep(1000);
      for (const rate of o.rates) {
        await cluster.waitIdle();
        await group.reset();
        const before = await cluster.metrics();
        const cpu = watchCpu({
          store: servicePid('ferretdb'),
          kafka: servicePid('kafka'),
          redis: servicePid('redis'),
          ...Object.fromEntries(cluster.replicas.map((r, i) => [`replica ${i + 1}`, r.child.pid])),
          load: process.pid,
          subscribers: group.pid,
        });
        const sent = await load.run(rate, o.durationMs);
        const cores = cpu.stop().text;
        await sleep(2000); // let the tail arrive
        const { received, latency } = await group.report();
        const after = await cluster.metrics();
        const stored = after.reduce(
          (s, m, i) => s + (m.readings_stored_total ?? 0) - (before[i]!.readings_stored_total ?? 0),
          0,
        );
        const expected = sent.critical * subscribers;
        const stages = stageMeans(before, after);
        // prom-client resets its event-loop histogram at each scrape: `after` covers the window.
        const loop = after
          .map(
            (m) =>
              `${((m.nodejs_eventloop_lag_p99_seconds ?? NaN) * 1000).toFixed(1)}/${((m.nodejs_eventloop_lag_max_seconds ?? NaN) * 1000).toFixed(0)}`,
          )
          .join(', ');
        const published = publishedWithin(before, after);
        figures.push({
          name: `alert.latency.${rate / 1000}k_rps.${subscribers}_subs${o.criticalEvery === 100 ? '' : `.1_in_${o.criticalEvery}_critical`}`,
          limit: 'raw.kafka.latency',
          latency,
          rate: sent.achievedRate,
          unit: 'ms',
          notes: `${sent.critical} alerts x ${subscribers} subscribers: ${received}/${expected} delivered; readings stored ${stored}/${sent.sent}; published within (reading ts -> Redis): ${published}; mean per batch with alerts, ms: ${stages}; replicas' event-loop delay p99/max, ms: ${loop}; CPU during the load: ${cores}`,
        });
        console.error(
          `  alert latency @ ${rate}/s (1 in ${o.criticalEvery} critical), ${subscribers} subs: p50 ${latency.p50} ms p99 ${latency.p99} ms (${received}/${expected}); published within ${published}; stages, mean ms per batch: ${stages}; event loop p99/max ms: ${loop}; CPU: ${cores}`,
        );
      }
      await group.close();
    }
  } finally {
    await load.close();
  }
  return figures;
}
