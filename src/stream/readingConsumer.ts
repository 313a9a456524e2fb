/**
 * The readings consumers. Every replica runs two, each in a consumer group shared by all replicas,
 * both reading the same topic:
 *
 * - `alerts` (group KAFKA_GROUP_ID), the alert path: decode and validate every message (readings,
 *   and sensor commands: thresholds, acknowledgements); dead-letter the bad ones with their original
 *   bytes and a reason; judge each reading by its sensor's threshold (stream/incidentTracker.ts);
 *   publish each alert that is surely new at once (stream/alertChain.ts); then hand the batch to the
 *   store backlog (stream/storeBacklog.ts) and fetch the next one. The backlog stores a partition's
 *   batches in order, several at once when they queued behind a slow write: every alert and, beside
 *   them, the incident updates and the tracker's state; then it advances the partition watermark,
 *   publishes the other alerts, the updates and a progress notice on Redis. So an alert waits for
 *   Kafka and the judging, never for the store writes of the batches before it.
 *   Offsets are committed by us, up to what is stored, every ALERT_COMMIT_INTERVAL_MS (and when the
 *   consumer stops): a batch replayed after a crash changes nothing. When the group rebalances, a
 *   partition changes hands only once its backlog is stored (stream/handoverAssigner.ts). A write
 *   that fails for good (the partition moved, shutdown past its deadline) drops what queued behind
 *   it, and the partition is fetched again from its first offset not stored.
 * - `history` (group `<KAFKA_GROUP_ID>.history`): the same validation, then the ReadingWriter stores
 *   the valid readings in buckets; a batch is held (heartbeating) until its readings are durable and
 *   only then committed. Holding it is what keeps one writer per sensor: a rebalance cannot give the
 *   partition to another replica while this one still writes its sensors' buckets.
 *
 * Both are idempotent, so a batch replayed after a crash or a rebalance changes nothing. A store
 * outage pauses the partition (retry with backoff, heartbeating) instead of crashing.
 */
import { randomUUID } from 'node:crypto';
import {
  PartitionAssigners,
  type Consumer,
  type EachBatchPayload,
  type IHeaders,
  type Kafka,
  type Producer,
} from 'kafkajs';
import { toAlert, type ChainLink, type OverheatAlert } from '../domain/alert.js';
import { commandKindOf, decodeCommand } from '../domain/sensorCommand.js';
import type { BatchItem, IncidentTracker, TrackedBatch } from './incidentTracker.js';
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
import { createStoreBacklog } from './storeBacklog.js';
import { handoverAssigner } from './handoverAssigner.js';

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
  /** The alert path stores a partition's judged batches at most this often (ALERT_STORE_INTERVAL). */
  storeIntervalMs?: number;
  /** Valid readings held for storage before the consumer stops fetching. */
  maxPendingReadings?: number;
  /** History: each partition's readings are written at most this often (HISTORY_WRITE_INTERVAL). */
  writeIntervalMs?: number;
  observer?: PipelineObserver;
  /**
   * The alert path only: told each batch's valid readings once they are judged, before they are
   * stored (the live readings' fan-out). Not awaited, and its failures are logged and dropped: it
   * can neither slow nor fail the alert path.
   */
  onJudged?(partition: number, readings: readonly Reading[]): void | Promise<void>;
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
interface BatchOwner {
  readonly partition: number;
  holds(): boolean;
  heartbeat(): Promise<void>;
}

/** A batch judged, its surely new alerts published, waiting for storage (storeJudged). */
interface JudgedBatch {
  readonly lastOffset: number;
  readonly alerts: readonly OverheatAlert[];
  /** Published before storing. */
  readonly early: readonly OverheatAlert[];
  /** Some alerts wait for storing (AlertChain.split), and the batches after it with them. */
  readonly held: boolean;
  readonly chain: AlertChain | undefined;
  readonly tracked: TrackedBatch;
  readonly judgedAt: number;
  readonly generation: number;
}

const REBALANCE_TIMEOUT_MS = 60_000;
/** Readings judged ahead of the store at most; beyond it the consumer stops fetching. */
const MAX_BACKLOG = 20_000;

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

/**
 * History: a batch with this many readings per sensor in it is written without waiting for
 * HISTORY_WRITE_INTERVAL. A write costs a statement or two per sensor whatever it carries, so the
 * interval is for fleets of many slow sensors; a fast fleet fills its writes without it.
 */
export const WORTH_A_WRITE_PER_SENSOR = 50;

export async function startReadingConsumer(o: ReadingConsumerOptions): Promise<ReadingConsumer> {
  const log = o.logger.child({ module: `stream.consumer.${o.role}` });
  // A member learns of a rebalance at its next heartbeat, and every member's partitions wait for the
  // slowest to rejoin: a tenth of the session (1 s by default) keeps that part of a handover short.
  const heartbeatMs = Math.max(500, Math.floor(o.sessionTimeoutMs / 10));
  const consumer: Consumer = o.kafka.consumer({
    groupId: o.groupId,
    allowAutoTopicCreation: false,
    sessionTimeout: o.sessionTimeoutMs,
    heartbeatInterval: heartbeatMs,
    rebalanceTimeout: REBALANCE_TIMEOUT_MS,
    // The alert path hands a partition over only once its judged batches are stored.
    ...(o.role === 'alerts'
      ? {
          partitionAssigners: [
            handoverAssigner({
              instance: randomUUID(),
              busy: () => backlog.busy(),
              idle: () => backlog.idle(),
              hurry: () => backlog.hurry(),
              handedOver: (instance, seq) => o.store.progress.handedOver(instance, seq),
              handoverOf: (instance) => o.store.progress.handoverOf(instance),
              // The leader computes the assignment without heartbeating: well within its session.
              maxWaitMs: Math.floor(o.sessionTimeoutMs * 0.6),
              logger: o.logger,
            }),
            PartitionAssigners.roundRobin,
          ],
        }
      : {}),
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
  // The alert path's partitions (see storeJudged and takeUpAgain).
  /** Bumped at every rebalance; a flush of an earlier one writes only while it still holds its partition. */
  let generation = 0;
  let assigned = new Set<number>();
  /** Per partition, the last offset stored in this generation, and the last committed. */
  const stored = new Map<number, number>();
  const committed = new Map<number, number>();
  /** Per partition, the first offset not stored: where it is taken up again after a failure. */
  const resumeAt = new Map<number, number>();
  /** Per partition, bumped when it is taken up again: a batch judged before that is not queued. */
  const epochs = new Map<number, number>();
  /** Shutdown past its deadline: store steps stop retrying. */
  let abandoned = false;
  /** Shutting down: batches stop waiting for the history write interval. */
  let draining = false;
  /** Retries a durable step until it succeeds, or the batch no longer belongs to us. */
  const durably = async <T>(what: string, owner: BatchOwner, step: () => Promise<T>): Promise<T> => {
    const result = await retryUntilDone(step, {
      onFailure: (err, retryInMs) => {
        healthy = false;
        stats.storeRetries++;
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
  };
  /** A batch kafkajs is handing us: ours while the consumer runs and nobody sought elsewhere. */
  const inHand = (p: EachBatchPayload): BatchOwner => ({
    partition: p.batch.partition,
    holds: () => p.isRunning() && !p.isStale(),
    heartbeat: () => p.heartbeat().catch(() => undefined),
  });

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

    const owner = inHand(p);
    if (rejected.length > 0) {
      const failedAt = new Date(now).toISOString();
      await durably('dead-letter', owner, () =>
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

    const { partition } = batch;
    // Taken up again since this batch began (a store flush failed): it is fetched again from there.
    const epoch = epochs.get(partition) ?? 0;
    const current = (): boolean => (epochs.get(partition) ?? 0) === epoch;
    if (!resumeAt.has(partition)) resumeAt.set(partition, Number(batch.messages[0]!.offset));
    const tracked = await durably('load incident state', owner, () =>
      o.incidents!.process(partition, items, Number(lastOffset)),
    );
    // Live readings, as judged: handed on and not awaited, a failure logged and dropped.
    if (o.onJudged && valid.length > 0) {
      const notPassedOn = (err: unknown): void =>
        log.warn({ err: (err as Error).message, partition }, 'live readings not passed on');
      try {
        const readings = valid.map((v) => v.reading);
        void Promise.resolve(o.onJudged(partition, readings)).catch(notPassedOn);
      } catch (err) {
        notPassedOn(err);
      }
    }
    const detectedAt = new Date();
    const raised: OverheatAlert[] = [];
    for (const { reading, offset, limits } of tracked.judged) {
      if (reading.temperature > limits.thresholdC) {
        raised.push(toAlert(reading, limits.thresholdC, { partition, offset }, detectedAt));
      }
    }
    // Surely new alerts go out now, before they are stored (stream/alertChain.ts); the rest after.
    // Those at or before the watermark the partition was taken at are stored already: fetched again
    // after a rebalance (committed offsets trail the store), they are neither stored nor published again.
    const chain = raised.length > 0 ? await chainOf(p) : chains.get(partition);
    const alerts = chain ? chain.unstored(raised) : raised;
    if (!current()) return;
    // A reading in the older half of the accepted age could be refused by a replay a little later.
    const { early, late } =
      chain && alerts.length > 0 ? chain.split(alerts, now - o.limits.maxAgeMs / 2) : { early: [], late: [] };
    if (early.length > 0) {
      await o.fanout.publish(early, chain!.link(early));
      const publishedAt = Date.now();
      for (const a of early) observer.alertPublished(publishedAt - a.ts.getTime());
    }
    if (!current()) return;
    if (alerts.length > 0) {
      observer.alertStage('queued', now - alerts.reduce((t, a) => Math.min(t, a.ts.getTime()), now));
      observer.alertStage('judge', performance.now() - startedAt);
    }
    backlog.add(
      partition,
      {
        lastOffset: Number(lastOffset),
        alerts,
        early,
        held: late.length > 0,
        chain,
        tracked,
        judgedAt: performance.now(),
        generation,
      },
      items.length,
    );
    p.resolveOffset(lastOffset);
    // Judged ahead of the store by at most MAX_BACKLOG readings: beyond that, fetching waits.
    while (backlog.weight() > MAX_BACKLOG) {
      await Promise.race([backlog.room(MAX_BACKLOG), sleep(heartbeatMs)]);
      await owner.heartbeat();
    }
  };

  /**
   * Stores consecutive judged batches of one partition (stream/storeBacklog.ts): alerts and
   * incidents side by side, then the watermark beside the tracker's state, then the alerts held for
   * after storing, the incident updates and the progress notice are published.
   */
  const storeJudged = async (partition: number, batches: readonly JudgedBatch[]): Promise<void> => {
    const flushStartedAt = performance.now();
    const last = batches.at(-1)!;
    const { topic } = o;
    const owner: BatchOwner = {
      partition,
      holds: () => !abandoned && (last.generation === generation || assigned.has(partition)),
      heartbeat: () => Promise.resolve(),
    };
    const alerts = batches.flatMap((b) => b.alerts);
    const fresh = batches.flatMap((b) => b.tracked.events);
    const replayed = batches.flatMap((b) => (b.tracked.replayed ? [b.tracked.replayed] : []));
    const incidents = o.incidents!.combine(batches.map((b) => b.tracked));
    // Alerts, and incidents, are stored side by side; each before the watermark below, so readers
    // never see past what is stored.
    const storeAlerts = async (): Promise<OverheatAlert[]> =>
      alerts.length === 0
        ? []
        : durably('store alerts', owner, async () => {
            const t0 = performance.now();
            const stored = await o.store.alerts.insert(alerts);
            observer.storeWrite('alerts', performance.now() - t0);
            return stored;
          });
    // Incident updates beside the incidents; the tracker's state comes after, beside the watermark
    // (once it is stored, a replay does not make the updates again). A replayed stretch's updates
    // are stored, but were they published? Again.
    const storeIncidents = async (): Promise<IncidentUpdate[]> => {
      const again = Promise.all(
        replayed.map((r) =>
          durably('read replayed incident updates', owner, () =>
            o.store.incidents.updates.read(partition, r.from - 1, r.to, undefined, 100_000),
          ),
        ),
      );
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
      await durably('store incidents', owner, () => incidents.store(writeUpdates));
      observer.storeWrite('incidents', performance.now() - t0);
      return [...(await again).flat(), ...fresh];
    };
    // Ahead of reading history at the store: these are what a subscriber is waiting for.
    const [owned, updates] = await o.store.urgent(() => Promise.all([storeAlerts(), storeIncidents()]));
    const storedAt = performance.now();
    stats.incidentChanges += fresh.length;
    // The watermark, beside the tracker's state (see TrackedBatch.commit for why that is safe).
    const advance = alerts.length > 0 || updates.length > 0;
    const alertTs = alerts.length > 0 ? new Date(Math.max(...alerts.map((a) => a.ts.getTime()))) : undefined;
    await durably('advance watermark', owner, () =>
      o.store.urgent(() =>
        allSettledOrThrow([
          advance
            ? o.store.progress.advance(topic, { partition, offset: last.lastOffset }, alertTs)
            : Promise.resolve(),
          incidents.commit(),
        ]),
      ),
    );
    if (advance) {
      const watermarkedAt = performance.now();
      stats.alertsRaised += owned.length;
      const kept = new Set(owned.map((a) => a.position.offset));
      // The held alerts the store kept, batch by batch (a reading sent again is not an alert of its own).
      const rest: OverheatAlert[] = [];
      const links: ChainLink[] = [];
      for (const b of batches) {
        const early = new Set(b.early.map((a) => a.position.offset));
        const wrong = b.early.filter((a) => !kept.has(a.position.offset));
        if (wrong.length > 0)
          log.error(
            { partition, early: b.early.length, wrong: wrong.length },
            'an alert published before it was stored turned out to be a reading sent again',
          );
        if (b.held) {
          const held = b.alerts.filter((a) => !early.has(a.position.offset) && kept.has(a.position.offset));
          rest.push(...held);
          links.push(...b.chain!.linkHeld(held));
        }
      }
      // Published after the watermark moved, then the notice: see alertFeed for why this order makes
      // resumption gap-free.
      const chain = last.chain ?? chains.get(partition);
      const notice = chain
        ? chain.notice(last.lastOffset)
        : // No chain: nothing published early here; `last` at the watermark is a bound all the same.
          { watermark: last.lastOffset, last: last.lastOffset };
      await Promise.all([o.fanout.publish(rest, links), o.incidentFanout?.publish(updates)]);
      await o.fanout.publishProgress({ partition, ...notice });
      const publishedAt = Date.now();
      for (const a of rest) observer.alertPublished(publishedAt - a.ts.getTime());
      if (alerts.length > 0) {
        observer.alertStage('backlog', flushStartedAt - batches[0]!.judgedAt);
        observer.alertStage('store', storedAt - flushStartedAt);
        observer.alertStage('watermark', watermarkedAt - storedAt);
        observer.alertStage('publish', performance.now() - watermarkedAt);
      }
    }
    if (last.generation === generation) {
      stored.set(partition, last.lastOffset);
      resumeAt.set(partition, last.lastOffset + 1);
      // Committed at once: the next owner of the partition starts there, and what it fetches again
      // (stored, but not committed) is judged again and its alerts go out only after storing.
      if (o.role === 'alerts') void commitStored();
    }
    stats.batches += batches.length;
  };

  /** History role: the batch is held until its readings are durable, then committed (by the writer). */
  const storeReadings = async (
    p: EachBatchPayload,
    valid: readonly { reading: Reading }[],
    lastOffset: string,
  ): Promise<void> => {
    const { batch } = p;
    // Written at once, without the interval: when more waits in Kafka for this partition (the
    // interval must not cap the rate), or when the batch already carries enough readings per sensor
    // for a write to be worth its statements (a fast fleet need not wait).
    const sensors = new Set<string>();
    for (const v of valid) sensors.add(v.reading.sensorId);
    const atOnce =
      Number(batch.offsetLag()) > 0 || valid.length >= WORTH_A_WRITE_PER_SENSOR * Math.max(1, sensors.size);
    const { durable } = await writer.enqueue(
      batch.partition,
      Number(lastOffset),
      valid.map((v) => v.reading),
      { atOnce },
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
    // Caught up: the next fetch waits for the partition's next write (HISTORY_WRITE_INTERVAL), so
    // what arrives meanwhile waits in Kafka, not in this process, and goes into that write whole.
    // Not when written at once (above), nor past a failed heartbeat (the group may be rebalancing).
    if (atOnce) return;
    for (;;) {
      const wait = writer.nextWriteAt(batch.partition) - performance.now();
      if (wait <= 0 || draining || !p.isRunning() || p.isStale()) return;
      await sleep(Math.min(wait, heartbeatMs));
      const heartbeating = await p.heartbeat().then(
        () => true,
        () => false,
      );
      if (!heartbeating) return;
    }
  };

  const writer = createReadingWriter({
    store: o.store,
    maxPending: o.maxPendingReadings ?? 50_000,
    intervalMs: o.writeIntervalMs ?? 0,
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
      const stored = await durably('load alert floor', inHand(p), () => o.store.progress.storedUpTo(topic, partition));
      // No timestamp kept (a store from before it was): no stored alert can be later than this.
      const floorTs =
        stored === undefined
          ? -Infinity
          : stored.alertTs === null
            ? Date.now() + o.limits.maxFutureMs
            : stored.alertTs.getTime();
      chain = new AlertChain(floorTs, Number(p.batch.messages[0]!.offset), stored?.offset ?? -1);
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

  /**
   * A partition whose batches could not all be stored in order (a store flush failed, or a batch
   * was given up after it was judged) is taken up again from its first offset not stored: what was
   * judged beyond it is dropped, and fetched and judged again from the store's state.
   */
  const takeUpAgain = (partition: number): void => {
    epochs.set(partition, (epochs.get(partition) ?? 0) + 1);
    backlog.drop(partition);
    o.incidents?.forget([partition]);
    chains.delete(partition);
    const from = resumeAt.get(partition);
    resumeAt.delete(partition);
    if (abandoned || !assigned.has(partition) || from === undefined) return;
    try {
      consumer.seek({ topic: o.topic, partition, offset: String(from) });
    } catch (err) {
      log.warn({ err: (err as Error).message, partition }, 'could not go back to the first offset not stored');
    }
  };
  const backlog = createStoreBacklog<JudgedBatch>({
    flush: (partition, batches) => storeJudged(partition, batches),
    minIntervalMs: o.storeIntervalMs ?? 0,
    onFailure(partition, err) {
      if (!(err instanceof BatchAbandoned))
        log.error(
          { err: (err as Error).message, partition },
          'storing judged batches failed; taking the partition up again',
        );
      takeUpAgain(partition);
    },
  });
  /** Commits what is stored (a crash or a rebalance replays at most this much, idempotently). */
  const commitStored = async (): Promise<void> => {
    const due = [...stored].filter(
      ([partition, offset]) => assigned.has(partition) && offset !== committed.get(partition),
    );
    if (due.length === 0) return;
    await consumer
      .commitOffsets(due.map(([partition, offset]) => ({ topic: o.topic, partition, offset: String(offset + 1) })))
      .then(() => {
        for (const [partition, offset] of due) committed.set(partition, offset);
      })
      .catch((err: Error) => log.warn({ err: err.message }, 'commit failed; retried at the next one'));
  };
  const commits = o.role === 'alerts' ? setInterval(() => void commitStored(), ALERT_COMMIT_INTERVAL_MS) : undefined;
  commits?.unref();

  // Partitions may have moved: incident state, the replay pages last written and the reading
  // buckets cached are read from the store again; what was judged and not stored is fetched again.
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    generation++;
    assigned = new Set(e.payload.memberAssignment[o.topic] ?? []);
    backlog.drop();
    stored.clear();
    committed.clear();
    resumeAt.clear();
    o.incidents?.forget();
    chains.clear();
    if (o.role === 'alerts') o.store.forgetWrites();
    // Reading history: this replica's cached parts of sensors another replica may have written since.
    else o.store.readings.forget();
  });
  consumer.on(consumer.events.CRASH, (e) => {
    log.error({ err: e.payload.error?.message, restart: e.payload.restart }, 'consumer crashed');
    if (!e.payload.restart) crashed = true;
  });

  await consumer.run({
    eachBatchAutoResolve: false,
    // Committed by us, what is stored: alerts every ALERT_COMMIT_INTERVAL_MS, history by the writer.
    autoCommit: false,
    partitionsConsumedConcurrently: o.concurrency ?? 3,
    eachBatch: async (p) => {
      inFlight++;
      try {
        if (!p.isStale()) await eachBatch(p);
      } catch (err) {
        // Taken up again from what the store has (the chain's bound before its first alert holds).
        if (o.role === 'alerts') takeUpAgain(p.batch.partition);
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
    abandon() {
      abandoned = true;
      writer.abandon();
      backlog.drop();
    },
    stats: () => ({
      ...stats,
      readingsStored: writer.stored(),
      readingsPending: writer.pending(),
      deadLetteredByCode: { ...stats.deadLetteredByCode },
    }),
    async dispose() {
      // Stop fetching, let in-flight batches finish, store and commit what they handed over, then leave.
      consumer.pause([{ topic: o.topic }]);
      draining = true;
      // The group waits for this member to leave before its partitions move: store without the interval.
      backlog.hurry();
      clearInterval(repeatNotices);
      // Readings waiting for the history write interval go now: the batches holding them end sooner.
      const written = writer.flush();
      await whenIdle();
      await Promise.all([written, writer.flush(), backlog.idle()]);
      clearInterval(commits);
      await commitStored();
      await consumer.disconnect();
      await dlqProducer?.disconnect();
    },
  };
}
