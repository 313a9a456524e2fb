/** Waits on the pipeline's own progress (Kafka group offsets), not on the clock. */
import { AssignerProtocol, Kafka, logLevel } from 'kafkajs';

/**
 * Resolves once the history group (`<KAFKA_GROUP_ID>.history`) has committed everything written to
 * the readings topic up to now: every reading produced so far is stored.
 */
export function historyCaughtUp(env: Record<string, string>, timeoutMs = 60_000): Promise<void> {
  return groupCaughtUp(env, `${env.KAFKA_GROUP_ID!}.history`, timeoutMs);
}

/**
 * Resolves once the alert path's group (`KAFKA_GROUP_ID`) has committed everything written to the
 * readings topic up to now: every alert of the readings produced so far is stored and published.
 */
export function alertsCaughtUp(env: Record<string, string>, timeoutMs = 60_000): Promise<void> {
  return groupCaughtUp(env, env.KAFKA_GROUP_ID!, timeoutMs);
}

async function groupCaughtUp(env: Record<string, string>, groupId: string, timeoutMs: number): Promise<void> {
  const kafka = new Kafka({ clientId: 'test-lag', brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topic = env.KAFKA_READINGS_TOPIC!;
    const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      // -1: nothing committed yet, which is caught up for a partition that never had a message.
      const behind = committed!.partitions.filter((p) => Math.max(0, Number(p.offset)) < (ends.get(p.partition) ?? 0));
      if (behind.length === 0) return;
      if (Date.now() > deadline)
        throw new Error(`group ${groupId} still behind on partitions ${behind.map((p) => p.partition).join(', ')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await admin.disconnect();
  }
}

/** Resolves once `replicaId` is a member of the history group with partitions assigned to it. */
export async function historyPartitionsAssignedTo(
  env: Record<string, string>,
  replicaId: string,
  timeoutMs = 60_000,
): Promise<number> {
  const kafka = new Kafka({ clientId: 'test-assignment', brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { groups } = await admin.describeGroups([`${env.KAFKA_GROUP_ID!}.history`]);
      const group = groups[0];
      const member = group?.members.find((m) => m.clientId.endsWith(replicaId));
      if (group?.state === 'Stable' && member) {
        const assignment = AssignerProtocol.MemberAssignment.decode(member.memberAssignment);
        const partitions = Object.values(assignment?.assignment ?? {}).reduce((n, ps) => n + ps.length, 0);
        if (partitions > 0) return partitions;
      }
      if (Date.now() > deadline) throw new Error(`${replicaId} got no history partition`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await admin.disconnect();
  }
}
