/**
 * The readings consumers, and the group member both stand on. Every replica runs two, each in a
 * consumer group shared by all replicas, both reading the same topic:
 *
 * - the alert path (stream/alertPath.ts, group KAFKA_GROUP_ID): judges readings, publishes alerts,
 *   stores them behind the publishing, and dead-letters the messages it cannot decode;
 * - the history consumer (stream/historyConsumer.ts, group `<KAFKA_GROUP_ID>.history`): stores the
 *   valid readings in buckets.
 *
 * Both are idempotent, so a batch replayed after a crash or a rebalance changes nothing. A store
 * outage pauses the partition (retry with backoff, heartbeating) instead of crashing.
 *
 * A group member is what they share: it joins the group (connect, subscribe), hands the path each
 * batch that is still its own, retries a durable step while the batch belongs to it, commits the
 * offsets the path says are stored (offsets are never committed by kafkajs), and on dispose stops
 * fetching, lets the path drain what it holds, then leaves the group. It knows nothing of what the
 * path does with a batch; messages are decoded the same way for both (stream/batchIntake.ts).
 */
import type { Consumer, EachBatchPayload, Kafka, PartitionAssigner } from 'kafkajs';
import type { Logger } from '../logger.js';
import { NO_OBSERVER, type PipelineObserver } from '../observability/metrics.js';
import { retryUntilDone } from '../shared/retry.js';
import { Waiters } from '../shared/waiters.js';

/** Names a consumer in its logs (`stream.consumer.<role>`) and metrics; the member never branches on it. */
export type ConsumerRole = 'alerts' | 'history';

/** What both consumers take. */
export interface GroupMemberOptions {
  kafka: Kafka;
  groupId: string;
  topic: string;
  logger: Logger;
  sessionTimeoutMs: number;
  /** Partitions processed in parallel by this replica. */
  concurrency?: number;
  observer?: PipelineObserver;
}

export interface ConsumerStats {
  batches: number;
  readingsStored: number;
  alertsRaised: number;
  /** Incident lifecycle changes (opened, updated, acknowledged, cleared) applied by the alert path. */
  incidentChanges: number;
  deadLettered: number;
  deadLetteredByCode: Record<string, number>;
  storeRetries: number;
  readingsPending: number;
}

export interface ReadingConsumer {
  isHealthy(): boolean;
  stats(): ConsumerStats;
  /** Finishes and commits the in-flight batches, then leaves the group. */
  dispose(): Promise<void>;
  /** Stops retrying storage (shutdown past its deadline): dispose then ends without it. */
  abandon(): void;
}

/** Who a store step works for: it retries only while the batch is still ours. */
export interface BatchOwner {
  readonly partition: number;
  holds(): boolean;
  heartbeat(): Promise<void>;
}

export class BatchAbandoned extends Error {
  constructor() {
    super('batch abandoned: consumer stopping or partition reassigned');
  }
}

/** What a consumer does with its batches; the member calls it. */
export interface MemberPath {
  /**
   * One batch with messages, still this member's when handed over. A BatchAbandoned thrown ends it
   * quietly (the batch is fetched again by whoever holds the partition); any other error is kafkajs's.
   */
  eachBatch(p: EachBatchPayload): Promise<void>;
  /** The group rebalanced: these partitions are now this member's. */
  rebalanced(assigned: ReadonlySet<number>): void;
}

export interface GroupMember {
  /** The consumer's logger (`stream.consumer.<role>`). */
  readonly log: Logger;
  readonly observer: PipelineObserver;
  /** How often a batch held by the path heartbeats while it waits. */
  readonly heartbeatMs: number;
  /** The counters both paths keep; each path adds its own beside them. */
  readonly counts: { batches: number; storeRetries: number };
  /** Retries a durable step until it succeeds, or the batch no longer belongs to us. */
  durably: <T>(what: string, owner: BatchOwner, step: () => Promise<T>) => Promise<T>;
  /** A batch kafkajs is handing us: ours while the consumer runs and nobody sought elsewhere. */
  inHand(p: EachBatchPayload): BatchOwner;
  /** Connects and subscribes to the topic from its beginning (what the group has not committed). */
  join(): Promise<void>;
  /** Starts fetching; batches go to `path`. */
  run(path: MemberPath): Promise<void>;
  /** Commits, per partition, the last offset stored: the group resumes after it. */
  commit(stored: Iterable<readonly [partition: number, offset: number]>): Promise<void>;
  /** Fetches a partition again from `offset`; throws when the partition is not assigned here. */
  seek(partition: number, offset: number): void;
  /** False while a durable step is failing, and for good once kafkajs gave up restarting. */
  isHealthy(): boolean;
  /**
   * Stops fetching, runs `drain` (which may wait for the batches in flight with `inFlightDone`),
   * then leaves the group.
   */
  leave(drain: (inFlightDone: () => Promise<void>) => Promise<void>): Promise<void>;
}

const REBALANCE_TIMEOUT_MS = 60_000;

export function createGroupMember(
  o: GroupMemberOptions & { role: ConsumerRole; partitionAssigners: PartitionAssigner[] },
): GroupMember {
  const log = o.logger.child({ module: `stream.consumer.${o.role}` });
  const observer = o.observer ?? NO_OBSERVER;
  // A member learns of a rebalance at its next heartbeat, and every member's partitions wait for the
  // slowest to rejoin: a tenth of the session (1 s by default) keeps that part of a handover short.
  const heartbeatMs = Math.max(500, Math.floor(o.sessionTimeoutMs / 10));
  const consumer: Consumer = o.kafka.consumer({
    groupId: o.groupId,
    allowAutoTopicCreation: false,
    sessionTimeout: o.sessionTimeoutMs,
    heartbeatInterval: heartbeatMs,
    rebalanceTimeout: REBALANCE_TIMEOUT_MS,
    partitionAssigners: o.partitionAssigners,
    maxBytesPerPartition: 1_048_576,
    maxWaitTimeInMs: 100,
    retry: { retries: 10, initialRetryTime: 200, maxRetryTime: 5000 },
  });
  const counts = { batches: 0, storeRetries: 0 };
  let healthy = true;
  let crashed = false;
  consumer.on(consumer.events.CRASH, (e) => {
    log.error({ err: e.payload.error?.message, restart: e.payload.restart }, 'consumer crashed');
    if (!e.payload.restart) crashed = true;
  });

  let inFlight = 0;
  const idle = new Waiters();
  const whenIdle = (): Promise<void> => (inFlight === 0 ? Promise.resolve() : idle.wait());

  return {
    log,
    observer,
    heartbeatMs,
    counts,
    durably: async <T>(what: string, owner: BatchOwner, step: () => Promise<T>): Promise<T> => {
      const result = await retryUntilDone(step, {
        onFailure: (err, retryInMs) => {
          healthy = false;
          counts.storeRetries++;
          log.warn(
            { err: err.message, step: what, partition: owner.partition, retryInMs },
            'durable step failed; retrying',
          );
        },
        beforeRetry: async () => {
          if (!owner.holds()) throw new BatchAbandoned();
          await owner.heartbeat();
        },
      });
      healthy = true;
      return result;
    },
    inHand: (p) => ({
      partition: p.batch.partition,
      holds: () => p.isRunning() && !p.isStale(),
      heartbeat: () => p.heartbeat().catch(() => undefined),
    }),
    async join() {
      await consumer.connect();
      await consumer.subscribe({ topic: o.topic, fromBeginning: true });
    },
    async run(path) {
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        path.rebalanced(new Set(e.payload.memberAssignment[o.topic] ?? []));
      });
      await consumer.run({
        eachBatchAutoResolve: false,
        // Committed by the path, what is stored.
        autoCommit: false,
        partitionsConsumedConcurrently: o.concurrency ?? 3,
        eachBatch: async (p) => {
          inFlight++;
          try {
            if (p.isStale() || p.batch.messages.length === 0) return;
            observer.batchConsumed(o.role, p.batch.messages.length);
            await path.eachBatch(p);
          } catch (err) {
            if (err instanceof BatchAbandoned) return;
            throw err;
          } finally {
            inFlight--;
            if (inFlight === 0) idle.wakeAll();
          }
        },
      });
      log.info({ groupId: o.groupId, topic: o.topic }, 'consumer running');
    },
    commit: (stored) =>
      consumer.commitOffsets(
        [...stored].map(([partition, offset]) => ({ topic: o.topic, partition, offset: String(offset + 1) })),
      ),
    seek(partition, offset) {
      consumer.seek({ topic: o.topic, partition, offset: String(offset) });
    },
    isHealthy: () => healthy && !crashed,
    async leave(drain) {
      consumer.pause([{ topic: o.topic }]);
      await drain(whenIdle);
      await consumer.disconnect();
    },
  };
}
