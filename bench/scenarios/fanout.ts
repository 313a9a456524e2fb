/**
 * Fan-out: alert deliveries per second per replica with many subscribers, and the memory an idle
 * subscription costs a replica.
 */
import type { Cluster } from '../lib/replicas.js';
import { createReadingLoad } from '../lib/loadgen.js';
import { openSubscribers, type SubscriberGroup } from '../lib/subscribers.js';
import { sleep, type Figure } from '../lib/stats.js';

/**
 * Two sweeps, each until a step is incomplete or its p99 passes 1 s:
 *
 * - `fanout.deliveriesPerReplica`, what one replica can deliver: a modest alert rate (every reading
 *   critical) to more and more subscribers, all on replica 0, as lean clients (bare sockets reading
 *   only `ts`, as cheap as the raw `ws` broadcast's clients). Compared with that raw limit.
 * - `fanout.alertRateSweep`, where the whole pipeline stops keeping up: more and more alerts/s to a
 *   fixed number of graphql-ws subscribers over both replicas. Every alert is also an incident
 *   update, so this is the store's limit more than the sockets'.
 */
export async function fanout(
  cluster: Cluster,
  o: { subscribers: number; alertRates: number[]; durationMs: number; subscriberSteps: number[]; sweepRate: number },
): Promise<Figure[]> {
  const load = await createReadingLoad(cluster.env.KAFKA_READINGS_TOPIC!, 1000, 1); // every reading critical
  try {
    const figures = o.subscriberSteps.length > 0 ? [await subscriberSweep(cluster, load, o)] : [];
    if (o.alertRates.length > 0) figures.push(await alertRateSweep(cluster, load, o));
    return figures;
  } finally {
    await load.close();
  }
}

type Load = Awaited<ReturnType<typeof createReadingLoad>>;

/** One step: `rate` alerts/s for the window; what the group received, and how late. */
async function step(
  cluster: Cluster,
  load: Load,
  group: SubscriberGroup,
  rate: number,
  durationMs: number,
  subscribers: number,
): Promise<{
  complete: boolean;
  passed: boolean;
  p99: number;
  offered: number;
  measured: number[];
  cpuPerDeliveryUs: number[];
  received: number;
}> {
  await cluster.waitIdle();
  await group.reset();
  const before = await cluster.metrics();
  const t0 = performance.now();
  const sent = await load.run(rate, durationMs);
  await sleep(1000);
  const seconds = (performance.now() - t0) / 1000;
  const after = await cluster.metrics();
  const { received, latency } = await group.report();
  const delta = (i: number, metric: string): number => (after[i]![metric] ?? 0) - (before[i]![metric] ?? 0);
  const measured = after.map((_, i) => delta(i, 'alert_deliveries_total') / seconds);
  // The replicas' CPU (all of it: Kafka, the store, the sockets) per delivery they made.
  const cpuPerDeliveryUs = after.map(
    (_, i) => (delta(i, 'process_cpu_seconds_total') * 1e6) / Math.max(1, delta(i, 'alert_deliveries_total')),
  );
  const complete = received >= sent.critical * subscribers * 0.999;
  return {
    complete,
    // A step counts when every delivery arrived with p99 under a second.
    passed: complete && latency.p99 < 1000,
    p99: latency.p99,
    offered: (sent.critical * subscribers) / (durationMs / 1000),
    measured,
    cpuPerDeliveryUs,
    received,
  };
}

async function subscriberSweep(
  cluster: Cluster,
  load: Load,
  o: { durationMs: number; subscriberSteps: number[]; sweepRate: number },
): Promise<Figure> {
  const target = cluster.replicas[0]!;
  let best = 0;
  let bestNote = 'no step completed';
  for (const subscribers of o.subscriberSteps) {
    const group = await openSubscribers([target.url], subscribers, undefined, { lean: true });
    try {
      await sleep(1000);
      const r = await step(cluster, load, group, o.sweepRate, o.durationMs, subscribers);
      console.error(
        `  fan-out @ ${o.sweepRate} alerts/s x ${subscribers} subs on one replica: ${Math.round(r.measured[0]!)} deliveries/s, ${r.cpuPerDeliveryUs[0]!.toFixed(1)} µs CPU each, p99 ${r.p99} ms, ${r.received} received ${r.complete ? '' : '(incomplete)'}`,
      );
      if (!r.passed) break;
      best = r.offered;
      bestNote = `${o.sweepRate} alerts/s to ${subscribers} lean subscribers on one replica, p99 ${r.p99} ms, replica CPU ${r.cpuPerDeliveryUs[0]!.toFixed(1)} µs per delivery`;
    } finally {
      await group.close();
    }
  }
  return {
    name: 'fanout.deliveriesPerReplica',
    limit: 'raw.ws.deliveryRate',
    rate: best,
    unit: 'deliveries/s',
    notes: `highest complete step with p99 < 1 s: ${bestNote}`,
  };
}

async function alertRateSweep(
  cluster: Cluster,
  load: Load,
  o: { subscribers: number; alertRates: number[]; durationMs: number },
): Promise<Figure> {
  // What an overloaded step before this one still has in flight is not this sweep's.
  await cluster.waitIdle();
  const group = await openSubscribers(cluster.urls, o.subscribers);
  const perReplica = o.subscribers / cluster.replicas.length;
  let best = 0;
  let bestNote = 'no step completed';
  try {
    await sleep(1000);
    for (const rate of o.alertRates) {
      const r = await step(cluster, load, group, rate, o.durationMs, o.subscribers);
      console.error(
        `  alert-rate sweep @ ${rate} alerts/s x ${perReplica} subs/replica: ${Math.round(Math.max(...r.measured))} deliveries/s/replica, p99 ${r.p99} ms, ${r.received} received ${r.complete ? '' : '(incomplete)'}`,
      );
      if (!r.passed) break;
      best = r.offered / cluster.replicas.length;
      bestNote = `${rate} alerts/s to ${perReplica} graphql-ws subscribers per replica, p99 ${r.p99} ms`;
    }
  } finally {
    await group.close();
  }
  return {
    name: 'fanout.alertRateSweep',
    limit: 'raw.ws.deliveryRate',
    rate: best,
    unit: 'deliveries/s',
    notes: `per replica, highest complete alert rate with p99 < 1 s: ${bestNote}`,
  };
}

export async function idleSubscriptionMemory(cluster: Cluster, o: { subscriptions: number }): Promise<Figure[]> {
  const target = cluster.replicas[0]!;
  const read = async () => (await cluster.metrics())[0]!;
  await sleep(2000);
  await cluster.forceGc();
  const before = await read();
  const group = await openSubscribers([target.url], o.subscriptions);
  await sleep(3000);
  await cluster.forceGc();
  const after = await read();
  await group.close();
  const rssPer = (after.process_rss_after_gc_bytes! - before.process_rss_after_gc_bytes!) / o.subscriptions;
  const heapPer = (after.process_heap_after_gc_bytes! - before.process_heap_after_gc_bytes!) / o.subscriptions;
  console.error(
    `  idle subscriptions: ${o.subscriptions} on one replica: +${Math.round(rssPer)} B RSS, +${Math.round(heapPer)} B heap each`,
  );
  return [
    {
      name: 'fanout.idleSubscriptionRss',
      limit: 'raw.ws.idleSocketRss',
      unit: 'bytes',
      value: Math.round(rssPer),
      notes: `${o.subscriptions} idle overheatAlerts subscriptions (one socket each) on one replica; RSS delta / count, full compacting GC before each reading`,
    },
    {
      name: 'fanout.idleSubscriptionHeap',
      limit: 'raw.ws.idleSocketHeap',
      unit: 'bytes',
      value: Math.round(heapPer),
      notes: 'V8 heap delta / count, full compacting GC before each reading',
    },
  ];
}
