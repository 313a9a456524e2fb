/**
 * The Kafka client: one kafkajs instance per replica, its logs routed into our structured logger,
 * and the topics the project owns (created here; the broker never auto-creates them).
 */
import { createRequire } from 'node:module';
import { Kafka, Partitioners, logLevel as KafkaLogLevel, type Message, type Producer, type logCreator } from 'kafkajs';
import type { Logger } from '../logger.js';

/** What kafkajs 2.2's per-connection request queue keeps, as far as stopIdlePolling touches it. */
interface RequestQueueState {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: ReturnType<typeof setTimeout> | null;
  checkPendingRequests(): void;
}

/** kafkajs's own pause between two looks at requests held back by in-flight limits (CHECK_PENDING_REQUESTS_INTERVAL). */
const PENDING_CHECK_MS = 10;

/**
 * kafkajs 2.2.4 (its last release) looks at every connection's queue of held-back requests again
 * after each response, whether or not anything is held back: with nothing throttled the delay is
 * negative, so each broker connection re-arms a 1 ms timer for as long as it lives. That is an idle
 * replica's CPU (measured: an idle replica 4.2 % of a core with it, 2.6 % without) and, on Node 24, a TimeoutNegativeWarning per process.
 * This arms the timer only when a request waits; a request held back later arms its own (push), and
 * every response looks at the queue anyway (fulfillRequest). Left alone if kafkajs changes shape.
 */
export function stopIdlePolling(): boolean {
  const loaded: unknown = createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js');
  const proto = (loaded as { prototype?: Partial<RequestQueueState> & { scheduleCheckPendingRequests?: unknown } })
    ?.prototype;
  if (typeof proto?.scheduleCheckPendingRequests !== 'function' || typeof proto.checkPendingRequests !== 'function')
    return false;
  proto.scheduleCheckPendingRequests = function (this: RequestQueueState): void {
    if (this.throttleCheckTimeoutId || this.pending.length === 0) return;
    const throttledFor = this.throttledUntil - Date.now();
    this.throttleCheckTimeoutId = setTimeout(
      () => {
        this.throttleCheckTimeoutId = null;
        this.checkPendingRequests();
      },
      throttledFor > 0 ? throttledFor : PENDING_CHECK_MS,
    );
  };
  return true;
}

export function createKafka(options: { brokers: readonly string[]; clientId: string; logger: Logger }): Kafka {
  const log = options.logger.child({ module: 'stream.kafkajs' });
  if (!stopIdlePolling()) log.warn('kafkajs request queue not as expected: its connections poll every millisecond');
  const toPino: logCreator =
    () =>
    ({ level, log: entry }) => {
      const { message, ...rest } = entry;
      // kafkajs reports every failed connection attempt as an error; the adapters above decide what is one.
      if (level === KafkaLogLevel.ERROR || level === KafkaLogLevel.WARN) log.warn(rest, message);
      else if (level === KafkaLogLevel.INFO) log.debug(rest, message);
      else log.trace(rest, message);
    };
  return new Kafka({
    clientId: options.clientId,
    brokers: [...options.brokers],
    logLevel: KafkaLogLevel.INFO,
    logCreator: toPino,
    connectionTimeout: 3000,
    requestTimeout: 10_000,
    retry: { initialRetryTime: 100, maxRetryTime: 5000, retries: 8 },
  });
}

/** Creates the readings and dead-letter topics when missing. Idempotent; safe from several replicas at once. */
export async function ensureTopics(
  kafka: Kafka,
  topics: readonly { topic: string; partitions: number; replicationFactor: number }[],
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t.topic));
    if (missing.length === 0) return;
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((t) => ({
          topic: t.topic,
          numPartitions: t.partitions,
          replicationFactor: t.replicationFactor,
        })),
      });
    } catch (err) {
      // Another replica may have created them between list and create.
      if (!/already exists/i.test(String((err as Error).message))) throw err;
    }
  } finally {
    await admin.disconnect();
  }
}

/**
 * The project's producer settings, shared by the readings and dead-letter producers: idempotent
 * (one request in flight keeps per-partition order), Java-compatible murmur2 partitioning so
 * third-party producers keyed by sensor land on the same partition, and the unbounded retries
 * idempotence requires (callers bound their own waiting).
 */
export function idempotentProducer(kafka: Kafka): Producer {
  return kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 2000 },
  });
}

/** The partition count of a topic, as the cluster's metadata has it. */
export async function partitionCount(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    const count = topics[0]?.partitions.length ?? 0;
    if (count === 0) throw new Error(`topic ${topic} has no partitions in the cluster's metadata`);
    return count;
  } finally {
    await admin.disconnect();
  }
}

const partitioner = Partitioners.DefaultPartitioner();

/**
 * One batch of messages for one topic, sent partition by partition: each partition's messages in
 * a request of their own (several at once), and a partition that was acknowledged is not sent
 * again when `send` is called again after a failure.
 *
 * Why not one `producer.send` for the whole batch: kafkajs 2.2.4 retries a send that failed on one
 * broker without sending again to the brokers that already answered, even when the failed
 * broker's partitions have moved to one of them (a leader change): their messages are silently
 * dropped, and the partitions' sequence numbers then trail what the new leader holds, which
 * refuses every later batch (OUT_OF_ORDER_SEQUENCE_NUMBER) for good. A request with one partition
 * goes to one broker, so every retry sends it, to the new leader, with the same messages and
 * sequence number: a copy written by the old leader is recognised as a duplicate, not stored twice.
 * For the same reason a batch must not change between attempts: the broker recognises a
 * duplicate only by the same first and last sequence numbers.
 */
export class PartitionedBatch {
  private readonly unsent = new Map<number, Message[]>();

  constructor(
    private readonly topic: string,
    messages: readonly Message[],
    partitions: number,
  ) {
    const metadata = Array.from({ length: partitions }, (_, partitionId) => ({
      partitionId,
      leader: 0,
      partitionErrorCode: 0,
      replicas: [],
      isr: [],
    }));
    for (const message of messages) {
      // Keyed: murmur2 of the key, as Java producers; without a key the default partitioner picks one.
      const partition = partitioner({ topic, partitionMetadata: metadata, message: { ...message } });
      const list = this.unsent.get(partition) ?? [];
      list.push({ ...message, partition });
      this.unsent.set(partition, list);
    }
  }

  /** Sends the partitions not acknowledged yet; throws once every request has ended if one failed. */
  async send(producer: Producer): Promise<void> {
    const settled = await Promise.allSettled(
      [...this.unsent].map(async ([partition, messages]) => {
        await producer.send({ topic: this.topic, acks: -1, messages });
        this.unsent.delete(partition);
      }),
    );
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
  }
}

/**
 * A producer's idempotence state lost for good (its sequence numbers refused by the leader, or
 * its id forgotten by the cluster): no retry of that producer can succeed; a new producer can, at
 * the cost of a batch possibly written twice (consumers deduplicate readings and alerts).
 */
export function producerStateLost(err: unknown): boolean {
  const lost = new Set(['OUT_OF_ORDER_SEQUENCE_NUMBER', 'UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH']);
  // kafkajs gives the broker's error itself, or wraps it (cause, originalError) when retries end.
  for (
    let e = err as { type?: unknown; cause?: unknown; originalError?: unknown } | undefined, depth = 0;
    e && depth < 4;
    depth++
  ) {
    if (typeof e.type === 'string' && lost.has(e.type)) return true;
    e = (e.cause ?? e.originalError) as typeof e;
  }
  return false;
}
