/**
 * Fan-out: alert deliveries per second per replica with many subscribers, and the memory an idle
 * subscription costs a replica.
 */
import type { Cluster } from '../lib/replicas.js';
import { createReadingLoad } from '../lib/loadgen.js';
import { openSubscribers } from '../lib/subscribers.js';
import { sleep, type Figure } from '../lib/stats.js';

export async function fanout(
  cluster: Cluster,
  o: { subscribers: number; alertRates: number[]; durationMs: number },
): Promise<Figure[]> {
  const load = await createReadingLoad(cluster.env.KAFKA_READINGS_TOPIC!, 1000, 1); // every reading critical
  const group = await openSubscribers(cluster.urls, o.subscribers);
  const perReplica = o.subscribers / cluster.replicas.length;
  let best = 0;
  let bestNote = '';
  try {
    await sleep(1000);
    for (const rate of o.alertRates) {
      await cluster.waitIdle();
      await group.reset();
      const before = await cluster.metrics();
      const t0 = performance.now();
      const sent = await load.run(rate, o.durationMs);
      await sleep(1000);
      const seconds = (performance.now() - t0) / 1000;
      const after = await cluster.metrics();
      const { received, latency } = await group.report();
      const deliveries = after.map(
        (m, i) => (m.alert_deliveries_total ?? 0) - (before[i]!.alert_deliveries_total ?? 0),
      );
      const perSecond = Math.max(...deliveries) / seconds;
      const complete = received >= sent.critical * o.subscribers * 0.999;
      console.error(
        `  fan-out @ ${rate} alerts/s x ${perReplica} subs/replica: ${Math.round(perSecond)} deliveries/s/replica, p99 ${latency.p99} ms, ${received}/${sent.critical * o.subscribers} ${complete ? '' : '(incomplete)'}`,
      );
      if (complete && latency.p99 < 1000) {
        best = Math.max(best, (sent.critical * perReplica) / (o.durationMs / 1000));
        bestNote = `${rate} alerts/s to ${perReplica} subscribers per replica, p99 ${latency.p99} ms`;
      } else break;
    }
  } finally {
    await group.close();
    await load.close();
  }
  return [
    {
      name: 'fanout.deliveriesPerReplica',
      limit: 'raw.ws.deliveryRate',
      rate: best,
      unit: 'deliveries/s',
      notes: `highest complete rate with p99 < 1 s: ${bestNote}`,
    },
  ];
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
