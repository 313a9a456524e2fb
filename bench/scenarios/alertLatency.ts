/**
 * Alert latency: from a reading's production (its timestamp at send) to the OverheatAlert received
 * by graphql-ws clients, at fixed reading rates and subscriber counts spread over the replicas.
 */
import type { Cluster } from '../lib/replicas.js';
import { createReadingLoad } from '../lib/loadgen.js';
import { openSubscribers } from '../lib/subscribers.js';
import { sleep, type Figure } from '../lib/stats.js';

export async function alertLatency(
  cluster: Cluster,
  o: { rates: number[]; subscriberCounts: number[]; durationMs: number; criticalEvery: number },
): Promise<Figure[]> {
  const figures: Figure[] = [];
  const load = await createReadingLoad(cluster.env.KAFKA_READINGS_TOPIC!, 1000, o.criticalEvery);
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
        const sent = await load.run(rate, o.durationMs);
        await sleep(2000); // let the tail arrive
        const { received, latency } = await group.report();
        const after = await cluster.metrics();
        const stored = after.reduce(
          (s, m, i) => s + (m.readings_stored_total ?? 0) - (before[i]!.readings_stored_total ?? 0),
          0,
        );
        const expected = sent.critical * subscribers;
        figures.push({
          name: `alert.latency.${rate / 1000}k_rps.${subscribers}_subs${o.criticalEvery === 100 ? '' : `.1_in_${o.criticalEvery}_critical`}`,
          limit: 'raw.kafka.latency',
          latency,
          rate: sent.achievedRate,
          unit: 'ms',
          notes: `${sent.critical} alerts x ${subscribers} subscribers: ${received}/${expected} delivered; readings stored ${stored}/${sent.sent}`,
        });
        console.error(
          `  alert latency @ ${rate}/s (1 in ${o.criticalEvery} critical), ${subscribers} subs: p50 ${latency.p50} ms p99 ${latency.p99} ms (${received}/${expected})`,
        );
      }
      await group.close();
    }
  } finally {
    await load.close();
  }
  return figures;
}
