/**
 * Live readings (the `readingUpdates` subscription): readings produced at a steady rate straight to
 * Kafka, and three kinds of subscribers held side by side in one window, spread over the replicas:
 *
 * - `dashboard`: every sensor, `maxPerSecond: 2` (conflated: at most 2 updates per sensor a second),
 * - `10_sensors`: ten named sensors, every reading,
 * - `all_every_reading`: every sensor, every reading (the heavy case).
 *
 * Per kind: updates received per second, latency (reading ts at send -> receipt; for a dashboard
 * this includes the wait for its sensor's turn, up to 1/maxPerSecond), the sum of `skipped`, and
 * updates that went back in time for their sensor. Exactness where the API defines it: a subscriber
 * taking every reading of ten sensors that keeps up receives every reading of those sensors produced
 * in the window, counted per sensor; a shortfall is reported, not hidden. The heavy kind may fall
 * behind and be conflated: what it received plus what it was told was skipped is set against what
 * was produced.
 *
 * Beside them, the CPU of each replica: with nobody subscribed (the fan-out idle: a partition whose
 * batch reached nobody is not published for a second), and during the window (the fan-out busy).
 */
import type { Cluster } from '../lib/replicas.js';
import { createReadingLoad } from '../lib/loadgen.js';
import { openSubscribers, type Received, type SubscriberGroup } from '../lib/subscribers.js';
import { sleep, type Figure } from '../lib/stats.js';
import { servicePid, watchCpu, type CpuReport } from '../lib/processCpu.js';

const FIELDS = '{ sensorId ts temperature humidity skipped }';

export interface LiveKind {
  /** Short label used in figure names. */
  label: string;
  count: number;
  /** The sensors each subscriber names (undefined: every sensor). */
  sensorIds?: readonly string[];
  maxPerSecond?: number;
}

const queryOf = (kind: LiveKind): string => {
  const args = [
    ...(kind.sensorIds ? [`sensorIds: [${kind.sensorIds.map((id) => JSON.stringify(id)).join(',')}]`] : []),
    ...(kind.maxPerSecond ? [`maxPerSecond: ${kind.maxPerSecond}`] : []),
  ];
  return `subscription { readingUpdates${args.length ? `(${args.join(', ')})` : ''} ${FIELDS} }`;
};

/** Subscribers of each kind; the load's sensors are bench-0 .. bench-<n-1>. */
export function liveKinds(counts: { dashboard: number; tenSensors: number; heavy: number }): LiveKind[] {
  return [
    { label: 'dashboard', count: counts.dashboard, maxPerSecond: 2 },
    {
      label: '10_sensors',
      count: counts.tenSensors,
      sensorIds: Array.from({ length: 10 }, (_, i) => `bench-${i}`),
    },
    { label: 'all_every_reading', count: counts.heavy },
  ].filter((k) => k.count > 0);
}

/** Sum of the replicas' cores in a CPU report (`replica 1`, `replica 2`, ...). */
const replicaCores = (cpu: CpuReport): number =>
  Object.entries(cpu.cores)
    .filter(([name]) => name.startsWith('replica'))
    .reduce((sum, [, c]) => sum + (c ?? 0), 0);

/**
 * Waits until the groups' counts stop moving (what the load sent has arrived, or will not): three
 * polls half a second apart with nothing new, at most `capMs`.
 */
async function settle(groups: SubscriberGroup[], capMs = 30_000): Promise<void> {
  const deadline = Date.now() + capMs;
  let last = -1;
  let still = 0;
  while (Date.now() < deadline && still < 3) {
    await sleep(500);
    const reports = await Promise.all(groups.map((g) => g.report()));
    const total = reports.reduce((n, r) => n + r.received + r.skipped, 0);
    still = total === last ? still + 1 : 0;
    last = total;
  }
}

export async function liveReadings(
  cluster: Cluster,
  o: {
    rate: number;
    sensors: number;
    durationMs: number;
    kinds: LiveKind[];
    /** Length of the load with nobody subscribed (0: no idle row). */
    idleMs: number;
  },
): Promise<Figure[]> {
  // Nearly no alerts (1 reading in 1,000 critical): the window measures the live path, not alerts.
  const load = await createReadingLoad(cluster.env.KAFKA_READINGS_TOPIC!, o.sensors, 1000);
  const groups: SubscriberGroup[] = [];
  const figures: Figure[] = [];
  const replicaPids = Object.fromEntries(cluster.replicas.map((r, i) => [`replica ${i + 1}`, r.child.pid]));
  try {
    await load.run(500, 3000); // warm-up: JIT, connections, group assignment
    await cluster.waitIdle();

    if (o.idleMs > 0) {
      const cpu = watchCpu({ ...replicaPids, redis: servicePid('redis') });
      const sent = await load.run(o.rate, o.idleMs);
      const report = cpu.stop();
      figures.push({
        name: 'live.nobody_subscribed.replica_cpu',
        value: replicaCores(report),
        unit: 'cores',
        notes: `${o.rate} readings/s from ${o.sensors} sensors (achieved ${sent.achievedRate.toFixed(0)}/s), no readingUpdates subscriber; CPU ${report.text}`,
      });
      console.error(`  live, nobody subscribed @ ${sent.achievedRate.toFixed(0)}/s: CPU ${report.text}`);
      await cluster.waitIdle();
    }

    for (const kind of o.kinds)
      groups.push(
        await openSubscribers(cluster.urls, kind.count, queryOf(kind), {
          perSensor: kind.sensorIds !== undefined && kind.maxPerSecond === undefined,
        }),
      );
    // A partition whose batch reached nobody stays quiet for a second: a short load once everyone
    // listens, so that the window starts with every partition published, then start counting.
    await sleep(1500);
    await load.run(o.rate, 2000);
    await cluster.waitIdle();
    await settle(groups);
    for (const g of groups) await g.reset();

    const cpu = watchCpu({
      ...replicaPids,
      redis: servicePid('redis'),
      kafka: servicePid('kafka'),
      store: servicePid('ferretdb'),
      ...Object.fromEntries(o.kinds.map((k, i) => [`subscribers ${k.label}`, groups[i]!.pid])),
    });
    const started = performance.now();
    const sent = await load.run(o.rate, o.durationMs);
    const windowS = (performance.now() - started) / 1000;
    const report = cpu.stop();
    await cluster.waitIdle();
    await settle(groups);
    const results: Received[] = [];
    for (const g of groups) results.push(await g.rotate());
    console.error(`  live window @ ${sent.achievedRate.toFixed(0)}/s for ${windowS.toFixed(1)} s: CPU ${report.text}`);
    figures.push({
      name: 'live.subscribed.replica_cpu',
      value: replicaCores(report),
      unit: 'cores',
      notes: `${o.rate} readings/s from ${o.sensors} sensors (achieved ${sent.achievedRate.toFixed(0)}/s), subscribers ${o.kinds.map((k) => `${k.count} ${k.label}`).join(', ')}; CPU ${report.text}`,
    });

    for (const [i, kind] of o.kinds.entries()) {
      const r = results[i]!;
      const perSubscriberRate = r.received / kind.count / windowS;
      const sensorsNamed = kind.sensorIds ?? Array.from(sent.sentBySensor.keys());
      const producedForOne = sensorsNamed.reduce((n, id) => n + (sent.sentBySensor.get(id) ?? 0), 0);
      // A conflated sensor's first update goes at once and its last waiting one after the load: over
      // a window of W s that is up to W x maxPerSecond + 1 updates, a little above the nominal rate.
      const ceiling = kind.maxPerSecond
        ? ` (nominal ${kind.maxPerSecond * sensorsNamed.length}/s; ${(r.received / kind.count / sensorsNamed.length).toFixed(1)} updates per sensor, at most ${Math.ceil(windowS * kind.maxPerSecond) + 1} expected)`
        : '';
      figures.push({
        name: `live.${kind.label}`,
        limit: 'raw.kafka.latency',
        latency: r.latency,
        rate: r.received / windowS,
        unit: 'ms; updates/s',
        notes: `${kind.count} subscribers (${kind.label}): ${r.received} updates in ${windowS.toFixed(1)} s, ${perSubscriberRate.toFixed(0)}/s each${ceiling}; ${producedForOne} readings of its sensors produced; skipped ${r.skipped}; out of order ${r.outOfOrder}`,
      });
      figures.push({ name: `live.${kind.label}.skipped`, value: r.skipped, unit: 'readings' });
      let exactness = '';
      if (r.perSensor) {
        // Every reading of its sensors, counted per sensor and per subscriber.
        let shortfall = 0;
        let extra = 0;
        for (const counts of r.perSensor)
          for (const id of sensorsNamed) {
            const want = sent.sentBySensor.get(id) ?? 0;
            const got = counts[id] ?? 0;
            shortfall += Math.max(0, want - got);
            extra += Math.max(0, got - want);
          }
        const expected = producedForOne * kind.count;
        figures.push({
          name: `live.${kind.label}.delivered`,
          value: expected > 0 ? (expected - shortfall) / expected : Number.NaN,
          unit: 'share',
          notes: `${expected - shortfall}/${expected} readings of the named sensors received (per sensor, per subscriber); shortfall ${shortfall}, beyond the window ${extra}, skipped ${r.skipped}`,
        });
        exactness = `; exact: shortfall ${shortfall} of ${expected}, extra ${extra}`;
      } else if (!kind.maxPerSecond) {
        // Every reading, unless it fell behind: received + skipped accounts for what was produced.
        const expected = producedForOne * kind.count;
        figures.push({
          name: `live.${kind.label}.accounted`,
          value: expected > 0 ? (r.received + r.skipped) / expected : Number.NaN,
          unit: 'share',
          notes: `received ${r.received} + skipped ${r.skipped} of ${expected} readings produced for its subscribers`,
        });
        exactness = `; received + skipped ${r.received + r.skipped}/${expected}`;
      }
      console.error(
        `  live ${kind.label} x${kind.count}: ${(r.received / windowS).toFixed(0)} updates/s (${perSubscriberRate.toFixed(0)}/s each${ceiling}), p50 ${r.latency.p50.toFixed(1)} p99 ${r.latency.p99.toFixed(1)} max ${r.latency.max.toFixed(0)} ms, skipped ${r.skipped}, out of order ${r.outOfOrder}${exactness}`,
      );
    }
  } finally {
    for (const g of groups) await g.close();
    await load.close();
  }
  return figures;
}
