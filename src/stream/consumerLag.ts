/**
 * Consumer lag of the replicas' groups, read from Kafka with an admin client: per group and
 * partition, the topic's end offset minus the group's committed offset. These are facts of the
 * group, not of a replica, so every replica that is scraped reports the same figures (dashboards
 * take max() by group and partition); no replica has to be elected to report them.
 *
 * A partition the group never committed on is behind by everything Kafka still holds there (end
 * minus start): the consumers read from the beginning (readingConsumer.ts subscribes so).
 */
import type { Admin, Kafka } from 'kafkajs';
import type { Logger } from '../logger.js';

export interface PartitionLag {
  /** The group's name in the metrics: `alerts` or `history` (the role of its consumer). */
  readonly group: string;
  readonly partition: number;
  /** Messages written to the partition and not yet committed by the group. */
  readonly messages: number;
}

export interface ConsumerLagReader {
  read(): Promise<readonly PartitionLag[]>;
  dispose(): Promise<void>;
}

export function createConsumerLagReader(o: {
  kafka: Kafka;
  topic: string;
  /** Each group to report, by its name in the metrics. */
  groups: readonly { readonly name: string; readonly groupId: string }[];
  logger: Logger;
}): ConsumerLagReader {
  const log = o.logger.child({ module: 'stream.consumerLag' });
  let admin: Admin | undefined;
  let connecting: Promise<Admin> | undefined;
  let disposed = false;

  // Connected at the first read: a replica that is never scraped opens no admin connection.
  const connected = (): Promise<Admin> =>
    (connecting ??= (async () => {
      const a = o.kafka.admin({ retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 1000 } });
      try {
        await a.connect();
      } catch (err) {
        connecting = undefined;
        await a.disconnect().catch(() => undefined);
        throw err;
      }
      admin = a;
      return a;
    })());

  return {
    async read() {
      if (disposed) return [];
      const a = await connected();
      const ends = await a.fetchTopicOffsets(o.topic);
      const lags: PartitionLag[] = [];
      const committedByGroup = await Promise.all(
        o.groups.map(async (g) => ({ g, topics: await a.fetchOffsets({ groupId: g.groupId, topics: [o.topic] }) })),
      );
      for (const { g, topics } of committedByGroup) {
        const committed = new Map(
          (topics.find((t) => t.topic === o.topic)?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]),
        );
        for (const end of ends) {
          const high = Number(end.high);
          const offset = committed.get(end.partition) ?? -1;
          const from = offset >= 0 ? offset : Number(end.low);
          lags.push({ group: g.name, partition: end.partition, messages: Math.max(0, high - from) });
        }
      }
      return lags;
    },
    async dispose() {
      disposed = true;
      const a = admin ?? (await connecting?.catch(() => undefined));
      await a?.disconnect().catch((err: Error) => log.debug({ err: err.message }, 'admin disconnect failed'));
    },
  };
}
