/** Waits on the pipeline's own progress (Kafka group offsets), not on the clock. */
import { Kafka, logLevel } from 'kafkajs';

/**
 * Resolves once the history group (`<KAFKA_GROUP_ID>.history`) has committed everything written to
 * the readings topic up to now: every reading produced so far is stored.
 */
export async function historyCaughtUp(env: Record<string, string>, timeoutMs = 60_000): Promise<void> {
  const kafka = new Kafka({ clientId: 'test-lag', brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topic = env.KAFKA_READINGS_TOPIC!;
    const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [committed] = await admin.fetchOffsets({ groupId: `${env.KAFKA_GROUP_ID!}.history`, topics: [topic] });
      const behind = committed!.partitions.filter((p) => Number(p.offset) < (ends.get(p.partition) ?? 0));
      if (behind.length === 0) return;
      if (Date.now() > deadline)
        throw new Error(`history group still behind on partitions ${behind.map((p) => p.partition).join(', ')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await admin.disconnect();
  }
}
