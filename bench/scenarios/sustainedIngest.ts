/**
 * Sustained ingest: the highest reading rate at which consumer lag stays bounded for the whole
 * window, with everything stored. Lag is read from Kafka (end offsets minus committed offsets of
 * the group) once a second and converted to seconds at the offered rate. Bounded: under 1 s more
 * than history waits on purpose (1.5 × HISTORY_WRITE_INTERVAL: the interval, then a write spread
 * over half of it), so the figure is the store keeping up, not the interval.
 */
import { Kafka, logLevel } from 'kafkajs';
import type { Cluster } from '../lib/replicas.js';
import { createReadingLoad } from '../lib/loadgen.js';
import { sleep, type Figure } from '../lib/stats.js';
import { configFrom } from '../../test/support/env.js';

async function lagMessages(admin: ReturnType<Kafka['admin']>, topic: string, groupId: string): Promise<number> {
  const [ends, committed] = await Promise.all([
    admin.fetchTopicOffsets(topic),
    admin.fetchOffsets({ groupId, topics: [topic] }),
  ]);
  const done = new Map(committed[0]!.partitions.map((p) => [p.partition, Number(p.offset)]));
  return ends.reduce((lag, p) => lag + Math.max(0, Number(p.high) - Math.max(0, done.get(p.partition) ?? 0)), 0);
}

export async function sustainedIngest(
  cluster: Cluster,
  o: { rates: number[]; windowMs: number; sensors: number },
): Promise<Figure[]> {
  const topic = cluster.env.KAFKA_READINGS_TOPIC!;
  // Stored means committed by the history group (the alert path commits on its own).
  const groupId = `${cluster.env.KAFKA_GROUP_ID!}.history`;
  const kafka = new Kafka({ clientId: 'bench-lag', brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const boundS =
    1 +
    (1.5 * configFrom({ ...(process.env as Record<string, string>), ...cluster.env }).history.writeIntervalMs) / 1000;
  const load = await createReadingLoad(topic, o.sensors, 1000);
  const figures: Figure[] = [];
  let best = 0;
  try {
    for (const rate of o.rates) {
      let worstLagS = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          await sleep(1000);
          const lag = await lagMessages(admin, topic, groupId);
          worstLagS = Math.max(worstLagS, lag / rate);
        }
      })();
      const before = (await cluster.metrics()).reduce((s, m) => s + (m.readings_stored_total ?? 0), 0);
      const sent = await load.run(rate, o.windowMs);
      sampling = false;
      await sampler;
      // Drain, then check everything sent was stored.
      const drainStart = Date.now();
      while ((await lagMessages(admin, topic, groupId)) > 0 && Date.now() - drainStart < 120_000) await sleep(500);
      await sleep(1500);
      const stored = (await cluster.metrics()).reduce((s, m) => s + (m.readings_stored_total ?? 0), 0) - before;
      const ok = worstLagS < boundS && stored >= sent.sent && sent.achievedRate >= rate * 0.95;
      console.error(
        `  ingest @ ${rate}/s: achieved ${Math.round(sent.achievedRate)}/s, worst lag ${worstLagS.toFixed(2)} s, stored ${stored}/${sent.sent} ${ok ? 'OK' : 'FAIL'}`,
      );
      figures.push({
        name: `ingest.${o.sensors}sensors.${rate}_rps`,
        rate: sent.achievedRate,
        unit: 'readings/s',
        value: worstLagS,
        notes: `${o.sensors} sensors; worst lag ${worstLagS.toFixed(2)} s; stored ${stored}/${sent.sent}; ${ok ? 'sustained' : 'not sustained'}`,
      });
      // Keep raising the rate while everything is stored (the lag at each rate is the figure); stop
      // once the pipeline falls behind for good.
      if (ok) best = rate;
      if (stored < sent.sent || sent.achievedRate < rate * 0.95 || worstLagS > boundS + 10) break;
    }
  } finally {
    await load.close();
    await admin.disconnect();
  }
  // The binding limit is the store (raw.store.insertRate), far below Kafka's raw consume rate.
  figures.push({
    name: `ingest.sustained.${o.sensors}sensors`,
    limit: 'raw.store.insertRate',
    rate: best,
    unit: 'readings/s',
    notes: `${o.sensors} sensors: highest rate tried with lag < ${boundS.toFixed(1)} s (1 s + 1.5 × the history write interval) for ${o.windowMs / 1000} s, everything stored`,
  });
  figures.push({
    name: `ingest.sustained.${o.sensors}sensors.vsKafka`,
    limit: 'raw.kafka.consumeRate',
    rate: best,
    unit: 'readings/s',
    notes: 'the same figure against the raw Kafka consume limit',
  });
  return figures;
}
