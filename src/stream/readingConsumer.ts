/**
 * The readings consumers. Every replica runs two, each in a consumer group shared by all replicas,
 * both reading the same topic:
 *
 * - `alerts` (group KAFKA_GROUP_ID), the alert path: decode and validate every message (readings,
 *   and sensor commands: thresholds, acknowledgements); dead-letter the bad ones with their original
 *   bytes and a reason; judge each reading by its sensor's threshold (stream/incidentTracker.ts);
 *   publish each alert that is surely new at once (stream/alertChain.ts), then store every alert
 *   and, beside them, the incident updates and the tracker's state; advance the partition
 *   watermark, publish the other alerts, the updates and a progress notice on Redis; mark the batch
 *   done. Offsets are
 *   committed in the background (every ALERT_COMMIT_INTERVAL_MS, and when partitions move or the
 *   consumer stops), not once per batch: a batch replayed after a crash changes nothing, so the next
 *   batch need not wait for a commit round trip. Nothing here waits for reading storage either, so
 *   an alert is one Kafka batch away from its reading.
 * - `history` (group `<KAFKA_GROUP_ID>.history`): the same validation, then the ReadingWriter stores
 *   the valid readings in buckets; a batch is held (heartbeating) until its readings are durable and
 *   only then committed. Holding it is what keeps one writer per sensor: a rebalance cannot give the
 *   partition to another replica while this one still writes its sensors' buckets.
 *
 * Both are idempotent, so a batch replayed after a crash or a rebalance changes nothing. A store
 * outage pauses the partition (retry with backoff, heartbeating) instead of crashing.
 */
import { type Consumer, type EachBatchPayload, type IHeaders, type Kafka, type Producer } from 'kafkajs';
import { toAlert, type OverheatAlert } from '../domain/alert.js';
import { commandKindOf, decodeCommand } from '../domain/sensorCommand.js';
import type { BatchItem, IncidentTracker } from './incidentTracker.js';
import { decodeReading, type Reading, type ReadingLimits, type ReadingRejection } from '../domain/reading.js';
import type { Logger } from '../logger.js';
import type { AlertFanout, Fanout } from '../fanout/alertFanout.js';
import type { IncidentUpdate } from '../domain/incident.js';
import type { MongoStore } from '../store/mongoStore.js';
import { NO_OBSERVER, type PipelineObserver } from '../observability/metrics.js';
import { allSettledOrThrow, retryUntilDone, sleep } from '../shared/retry.js';
import { Waiters } from '../shared/waiters.js';
import { idempotentProducer } from './kafka.js';
import { AlertChain } from './alertChain.js';
import { createReadingWriter } from './readingWriter.js';

export type ConsumerRole = 'alerts' | 'history';

export interface ReadingConsumerOptions {
  role: ConsumerRole;
  kafka: Kafka;
  groupId: string;
  topic: string;
  deadLetterTopic: string;
  /** Judges readings (per-sensor thresholds) and tracks incidents; the alert path only. */
  incidents?: IncidentTracker;
  /** Publishes incident updates (alert path only). */
  incidentFanout?: Fanout<IncidentUpdate>;
  limits: ReadingLimits & { maxMessageBytes: number };
  store: MongoStore;
  fanout: AlertFanout;
  logger: Logger;
  sessionTimeoutMs: number;
  /** Partitions processed in parallel by this replica. */
  concurrency?: number;
  /** Valid readings held for storage before the consumer stops fetching. */
  maxPendingReadings?: number;
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

class BatchAbandoned extends Error {
  constructor() {
    super('batch abandoned: consumer stopping or partition reassigned');
  }
}

/** How often the alert path commits resolved offsets (a crash replays at most this much, idempotently). */
const ALERT_COMMIT_INTERVAL_MS = 1000;
/**
 * How often a partition's last progress notice is sent again while nothing was published beyond it:
 * a notice lost on the way delays the subscriptions waiting for it, but never strands them.
 */
export const PROGRESS_REPEAT_MS = 1000;

export async function startReadingConsumer(o: ReadingConsumerOptions): Promise<ReadingConsumer> {
  const log = o.logger.child({ module: `stream.consumer.${o.role}` });
  const heartbeatMs = Math.max(500, Math.floor(o.sessionTimeoutMs / 5));
  const consumer: Consumer = o.kafka.consumer({
    groupId: o.groupId,
    allowAutoTopicCreation: false,
    sessionTimeout: o.sessionTimeoutMs,
    heartbeatInterval: heartbeatMs,
    rebalanceTimeout: 60_000,
    maxBytesPerPartition: 1_048_576,
    maxWaitTimeInMs: 100,
    retry: { retries: 10, initialRetryTime: 200, maxRetryTime: 5000 },
  });
  // Only the alert path dead-letters (the history consumer sees the same messages and skips them).
  const dlqProducer: Producer | undefined = o.role === 'alerts' ? idempotentProducer(o.kafka) : undefined;
  await Promise.all([consumer.connect(), dlqProducer?.connect()]);
  await consumer.subscribe({ topic: o.topic, fromBeginning: true });

  // Reading counts come from the writer; only the consumer's own counters live here.
  const stats: Omit<ConsumerStats, 'readingsStored' | 'readingsPending'> = {
    batches: 0,
    alertsRaised: 0,
    incidentChanges: 0,
    deadLettered: 0,
    deadLetteredByCode: {},
    storeRetries: 0,
  };
  let healthy = true;
  let crashed = false;

  const observer = o.observer ?? NO_OBSERVER;
  /** Retries a durable step until it succeeds, or the batch no longer belongs to us. */
  const durably = async <T>(what: string, p: EachBatchPayload, step: () => Promise<T>): Promise<T> => {
    const result = await retryUntilDone(step, {
      onFailure: (err, retryInMs) => {
        healthy = false;
        stats.storeRetries++;
        log.warn(
          { err: err.message, step: what, partition: p.batch.partition, retryInMs },
          'durable step failed; retrying',
        );
      },
      beforeRetry: async () => {
        if (!p.isRunning() || p.isStale()) throw new BatchAbandoned();
        await p.heartbeat().catch(() => undefined);
      },
    });
    healthy = true;
    return result;
  };

  const eachBatch = async (p: EachBatchPayload): Promise<void> => {
    const { batch } = p;
    if (batch.messages.length === 0) return;
    const now = Date.now();
    const startedAt = performance.now();
    const valid: { reading: Reading; offset: number }[] = [];
    /** Readings and commands in offset order (the alert path applies both). */
    const items: BatchItem[] = [];
    const rejected: { message: (typeof batch.messages)[number]; rejection: ReadingRejection }[] = [];
    for (const message of batch.messages) {
      const offset = Number(message.offset);
      const kind = commandKindOf(message.headers);
      if (kind !== undefined) {
        if (o.role === 'history') continue; // not a reading
        const decoded = decodeCommand(kind, message.value, message.key);
        if (decoded.ok) items.push({ offset, command: decoded.command });
        else
          rejected.push({
            message,
            rejection: { code: 'BAD_COMMAND', field: decoded.field, message: decoded.message },
          });
        continue;
      }
      const result = decodeReading(message.value, message.key, o.limits, now);
      if (result.ok) {
        valid.push({ reading: result.reading, offset });
        items.push({ offset, reading: result.reading });
      } else rejected.push({ message, rejection: result.rejection });
    }
    const lastOffset = batch.lastOffset();
    observer.batchConsumed(o.role, batch.messages.length);
    if (o.role === 'history') return storeReadings(p, valid, lastOffset);

    if (rejected.length > 0) {
      const failedAt = new Date(now).toISOString();
      await durably('dead-letter', p, () =>
        dlqProducer!.send({
          topic: o.deadLetterTopic,
          acks: -1,
          messages: rejected.map(({ message, rejection }) => {
            const headers: IHeaders = {
              // The producer's own headers travel with the message, so it can be traced and replayed.
              ...message.headers,
              'dlq.code': rejection.code,
              'dlq.reason': rejection.message,
              'dlq.field': rejection.field,
              'dlq.source.topic': batch.topic,
              'dlq.source.partition': String(batch.partition),
              'dlq.source.offset': message.offset,
              'dlq.failed-at': failedAt,
            };
            return { key: message.key, value: message.value, headers };
          }),
        }),
      );
      stats.deadLettered += rejected.length;
      for (const { rejection } of rejected)
        stats.deadLetteredByCode[rejection.code] = (stats.deadLetteredByCode[rejection.code] ?? 0) + 1;
      log.info(
        { partition: batch.partition, count: rejected.length, first: rejected[0]?.rejection },
        'dead-lettered invalid readings',
      );
    }

    const tracker = o.incidents!;
    const tracked = await durably('load incident state', p, () =>
      tracker.process(batch.partition, items, Number(lastOffset)),
    );
    const judgedAt = performance.now();
    const detectedAt = new Date();
    const alerts: OverheatAlert[] = [];
    for (const { reading, offset, limits } of tracked.judged) {
      if (reading.temperature > limits.thresholdC) {
        alerts.push(toAlert(reading, limits.thresholdC, { partition: batch.partition, offset }, detectedAt));
      }
    }
    // Surely new alerts go out now, before they are stored (stream/alertChain.ts); the rest after.
    const chain = alerts.length > 0 ? await chainOf(p) : undefined;
    // A reading in the older half of the accepted age could be refused by a replay a little later.
    const early = chain ? chain.split(alerts, now - o.limits.maxAgeMs / 2).early : [];
    if (early.length > 0) {
      await o.fanout.publish(early, chain!.link(early));
      const publishedAt = Date.now();
      for (const a of early) observer.alertPublished(publishedAt - a.ts.getTime());
    }
    const fresh = tracked.events;
    const { replayed } = tracked;
    // Alerts, and incidents, are stored side by side; each before the watermark below, so readers
    // never see past what is stored.
    const storeAlerts = async (): Promise<OverheatAlert[]> =>
      alerts.length === 0
        ? []
        : durably('store alerts', p, async () => {
            const t0 = performance.now();
            const stored = await o.store.alerts.insert(alerts);
            observer.storeWrite('alerts', performance.now() - t0);
            return stored;
          });
    // Incident updates beside the incidents; the tracker's state comes after, beside the watermark
    // (once it is stored, a replay does not make the updates again). A replayed stretch's updates
    // are stored, but were they published? Again.
    const storeIncidents = async (): Promise<IncidentUpdate[]> => {
      const again = replayed
        ? durably('read replayed incident updates', p, () =>
            o.store.incidents.updates.read(batch.partition, replayed.from - 1, replayed.to, undefined, 100_000),
          )
        : Promise.resolve([]);
      again.catch(() => undefined); // awaited below; a batch given up meanwhile is not unhandled
      const writeUpdates =
        fresh.length === 0
          ? undefined
          : async (): Promise<void> => {
              const t = performance.now();
              await o.store.incidents.updates.write(fresh);
              observer.storeWrite('incident updates', performance.now() - t);
            };
      const t0 = performance.now();
      await durably('store incidents', p, () => tracked.store(writeUpdates));
      observer.storeWrite('incidents', performance.now() - t0);
      return [...(await again), ...fresh];
    };
    // Ahead of reading history at the store: these are what a subscriber is waiting for.
    const [owned, updates] = await o.store.urgent(() => Promise.all([storeAlerts(), storeIncidents()]));
    const storedAt = performance.now();
    stats.incidentChanges += fresh.length;
    // The watermark, beside the tracker's state (see TrackedBatch.commit for why that is safe).
    const advance = alerts.length > 0 || updates.length > 0;
    const alertTs = alerts.length > 0 ? new Date(Math.max(...alerts.map((a) => a.ts.getTime()))) : undefined;
    await durably('advance watermark', p, () =>
      o.store.urgent(() =>
        allSettledOrThrow([
          advance
            ? o.store.progress.advance(batch.topic, { partition: batch.partition, offset: Number(lastOffset) }, alertTs)
            : Promise.resolve(),
          tracked.commit(),
        ]),
      ),
    );
    if (advance) {
      const watermarkedAt = performance.now();
      stats.alertsRaised += owned.length;
      const publishedEarly = new Set(early.map((a) => a.position.offset));
      const rest = owned.filter((a) => !publishedEarly.has(a.position.offset));
      if (owned.length - rest.length < early.length)
        log.error(
          { partition: batch.partition, early: early.length, owned: owned.length },
          'an alert published before it was stored turned out to be a reading sent again',
        );
      // Published after the watermark moved, then the notice: see alertFeed for why this order makes
      // resumption gap-free.
      await Promise.all([o.fanout.publish(rest, chain?.link(rest)), o.incidentFanout?.publish(updates)]);
      // No chain: nothing published early here; `last` at the watermark is a bound all the same.
      const notice = chains.get(batch.partition)?.notice(Number(lastOffset)) ?? {
        watermark: Number(lastOffset),
        last: Number(lastOffset),
      };
      await o.fanout.publishProgress({ partition: batch.partition, ...notice });
      const publishedAt = Date.now();
      for (const a of rest) observer.alertPublished(publishedAt - a.ts.getTime());
      if (alerts.length > 0) {
        observer.alertStage('queued', now - alerts.reduce((t, a) => Math.min(t, a.ts.getTime()), now));
        observer.alertStage('judge', judgedAt - startedAt);
        observer.alertStage('store', storedAt - judgedAt);
        observer.alertStage('watermark', watermarkedAt - storedAt);
        observer.alertStage('publish', performance.now() - watermarkedAt);
      }
    }

    p.resolveOffset(lastOffset);
    await p
      .commitOffsetsIfNecessary()
      .catch((err: Error) => log.warn({ err: err.message }, 'background commit failed; retried at the next one'));
    stats.batches++;
  };

  /** History role: the batch is held until its readings are durable, then committed (by the writer). */
  const storeReadings = async (
    p: EachBatchPayload,
    valid: readonly { reading: Reading }[],
    lastOffset: string,
  ): Promise<void> => {
    const { batch } = p;
    const { durable } = await writer.enqueue(
      batch.partition,
      Number(lastOffset),
      valid.map((v) => v.reading),
    );
    let stored = false;
    void durable.then(
      () => (stored = true),
      () => undefined,
    );
    while (!stored) {
      const outcome = await Promise.race([
        durable.then(() => 'stored' as const),
        sleep(heartbeatMs).then(() => 'waiting' as const),
      ]).catch(() => 'dropped' as const);
      if (outcome === 'dropped') throw new BatchAbandoned();
      if (outcome === 'stored') break;
      await p.heartbeat().catch(() => undefined);
      if (!p.isRunning() || p.isStale()) {
        writer.drop(batch.partition);
        // A write already under way finishes (or fails) before the partition is let go.
        await durable.catch(() => undefined);
        throw new BatchAbandoned();
      }
    }
    p.resolveOffset(lastOffset);
    await p.heartbeat().catch(() => undefined);
    stats.batches++;
  };

  const writer = createReadingWriter({
    store: o.store,
    maxPending: o.maxPendingReadings ?? 50_000,
    observer,
    logger: o.logger,
    onDurable: async ({ offsets }) => {
      await consumer.commitOffsets(
        [...offsets].map(([partition, offset]) => ({ topic: o.topic, partition, offset: String(offset + 1) })),
      );
    },
  });
  /** Per partition taken since the last rebalance, what publishing alerts before storing them needs. */
  const chains = new Map<number, AlertChain>();
  const chainOf = async (p: EachBatchPayload): Promise<AlertChain> => {
    const { topic, partition } = p.batch;
    let chain = chains.get(partition);
    if (!chain) {
      const floor = await durably('load alert floor', p, () => o.store.progress.alertTsFloor(topic, partition));
      // No timestamp kept (a store from before it was): no stored alert can be later than this.
      const floorTs =
        floor === undefined ? -Infinity : floor === null ? Date.now() + o.limits.maxFutureMs : floor.getTime();
      chain = new AlertChain(floorTs, Number(p.batch.messages[0]!.offset));
      chains.set(partition, chain);
    }
    return chain;
  };
  const repeatNotices =
    o.role === 'alerts'
      ? setInterval(() => {
          for (const [partition, chain] of chains) {
            const notice = chain.repeatable();
            if (notice) void o.fanout.publishProgress({ partition, ...notice });
          }
        }, PROGRESS_REPEAT_MS)
      : undefined;
  repeatNotices?.unref();

  let inFlight = 0;
  const idle = new Waiters();
  const whenIdle = (): Promise<void> => (inFlight === 0 ? Promise.resolve() : idle.wait());

  // Partitions may have moved: incident state, and the replay pages last written, are read from the
  // store again at each one's next batch.
  consumer.on(consumer.events.GROUP_JOIN, () => {
    o.incidents?.forget();
    chains.clear();
    if (o.role === 'alerts') o.store.forgetWrites();
  });
  consumer.on(consumer.events.CRASH, (e) => {
    log.error({ err: e.payload.error?.message, restart: e.payload.restart }, 'consumer crashed');
    if (!e.payload.restart) crashed = true;
  });

  await consumer.run({
    eachBatchAutoResolve: false,
    // alerts: resolved offsets committed in the background; history: by the writer once readings are durable.
    autoCommit: o.role === 'alerts',
    autoCommitInterval: ALERT_COMMIT_INTERVAL_MS,
    partitionsConsumedConcurrently: o.concurrency ?? 3,
    eachBatch: async (p) => {
      inFlight++;
      try {
        await eachBatch(p);
      } catch (err) {
        // Taken up again from what the store has (the chain's bound before its first alert holds).
        chains.delete(p.batch.partition);
        if (err instanceof BatchAbandoned) return;
        throw err;
      } finally {
        inFlight--;
        if (inFlight === 0) idle.wakeAll();
      }
    },
  });
  log.info({ groupId: o.groupId, topic: o.topic }, 'consumer running');

  return {
    isHealthy: () => healthy && writer.isHealthy() && !crashed,
    abandon: () => writer.abandon(),
    stats: () => ({
      ...stats,
      readingsStored: writer.stored(),
      readingsPending: writer.pending(),
      deadLetteredByCode: { ...stats.deadLetteredByCode },
    }),
    async dispose() {
      // Stop fetching, let in-flight batches finish, store and commit what they handed over, then leave.
      consumer.pause([{ topic: o.topic }]);
      clearInterval(repeatNotices);
      await whenIdle();
      await writer.flush();
      await consumer.disconnect();
      await dlqProducer?.disconnect();
    },
  };
}
