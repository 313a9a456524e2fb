/**
 * The alert path (group KAFKA_GROUP_ID, see stream/groupMember.ts): decode and validate every
 * message (readings, and sensor commands: thresholds, acknowledgements); dead-letter the bad ones
 * with their original bytes and a reason (stream/batchIntake.ts); judge each reading by its sensor's
 * threshold (stream/incidentTracker.ts); publish each alert that is surely new at once
 * (stream/alertChain.ts); then hand the batch to the store backlog (stream/storeBacklog.ts) and fetch
 * the next one. The backlog stores a partition's batches in order, several at once when they queued
 * behind a slow write: every alert and, beside them, the incident updates and the tracker's state;
 * then it advances the partition watermark, publishes the other alerts, the updates and a progress
 * notice on Redis (stream/judgedBatches.ts). So an alert waits for Kafka and the judging, never for
 * the store writes of the batches before it.
 *
 * Offsets are committed by us, up to what is stored, every ALERT_COMMIT_INTERVAL_MS (and when the
 * consumer stops): a batch replayed after a crash changes nothing. When the group rebalances, a
 * partition changes hands only once its backlog is stored (stream/handoverAssigner.ts). A write that
 * fails for good (the partition moved, shutdown past its deadline) drops what queued behind it, and
 * the partition is fetched again from its first offset not stored. A store outage pauses the
 * partition (retry with backoff, heartbeating) instead of crashing.
 */
import { randomUUID } from 'node:crypto';
import { PartitionAssigners, type EachBatchPayload } from 'kafkajs';
import { toAlert, type OverheatAlert } from '../domain/alert.js';
import type { IncidentUpdate } from '../domain/incident.js';
import type { Reading, ReadingLimits } from '../domain/reading.js';
import type { AlertFanout, Fanout } from '../fanout/alertFanout.js';
import type { MongoStore } from '../store/mongoStore.js';
import { sleep } from '../shared/retry.js';
import { carryTrace, SpanKind, traceIdOf, traceparentOf, type Span, type Tracing } from '../observability/tracing.js';
import { AlertChain } from './alertChain.js';
import { createDeadLetters, decodeBatch } from './batchIntake.js';
import {
  BatchAbandoned,
  createGroupMember,
  type BatchOwner,
  type GroupMemberOptions,
  type ReadingConsumer,
} from './groupMember.js';
import { handoverAssigner } from './handoverAssigner.js';
import type { IncidentTracker } from './incidentTracker.js';
import { storeJudged, type JudgedBatch } from './judgedBatches.js';
import { createStoreBacklog } from './storeBacklog.js';

export interface AlertPathOptions extends GroupMemberOptions {
  deadLetterTopic: string;
  /** Judges readings (per-sensor thresholds) and tracks incidents. */
  incidents: IncidentTracker;
  /** Publishes incident updates. */
  incidentFanout: Fanout<IncidentUpdate>;
  limits: ReadingLimits & { maxMessageBytes: number };
  store: MongoStore;
  fanout: AlertFanout;
  /** A partition's judged batches are stored at most this often (ALERT_STORE_INTERVAL). */
  storeIntervalMs?: number;
  /**
   * Told each batch's valid readings once they are judged, before they are stored (the live
   * readings' fan-out). Not awaited, and its failures are logged and dropped: it can neither slow
   * nor fail the alert path.
   */
  onJudged?(partition: number, readings: readonly Reading[]): void | Promise<void>;
  /**
   * A message with a `traceparent` header gets a judge span as its child; its alert carries that
   * trace on (publish, store, delivery) and its log line names it.
   */
  tracing?: Tracing;
}

/** Readings judged ahead of the store at most; beyond it the consumer stops fetching. */
const MAX_BACKLOG = 20_000;
/** How often the alert path commits resolved offsets (a crash replays at most this much, idempotently). */
const ALERT_COMMIT_INTERVAL_MS = 1000;
/**
 * How often a partition's last progress notice is sent again while nothing was published beyond it:
 * a notice lost on the way delays the subscriptions waiting for it, but never strands them.
 */
export const PROGRESS_REPEAT_MS = 1000;

export async function startAlertPath(o: AlertPathOptions): Promise<ReadingConsumer> {
  const member = createGroupMember({
    ...o,
    role: 'alerts',
    // A partition is handed over only once its judged batches are stored.
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
  });
  const { log, observer, durably } = member;
  const deadLetters = createDeadLetters(o.kafka, o.deadLetterTopic, log);
  await Promise.all([member.join(), deadLetters.connect()]);

  const counts = { alertsRaised: 0, incidentChanges: 0 };
  const tracing = o.tracing?.enabled ? o.tracing : undefined;
  /** Bumped at every rebalance; a flush of an earlier one writes only while it still holds its partition. */
  let generation = 0;
  let assigned: ReadonlySet<number> = new Set<number>();
  /** Per partition, the last offset stored in this generation, and the last committed. */
  const stored = new Map<number, number>();
  const committed = new Map<number, number>();
  /** Per partition, the first offset not stored: where it is taken up again after a failure. */
  const resumeAt = new Map<number, number>();
  /** Per partition, bumped when it is taken up again: a batch judged before that is not queued. */
  const epochs = new Map<number, number>();
  /** Shutdown past its deadline: store steps stop retrying. */
  let abandoned = false;

  const judge = async (p: EachBatchPayload): Promise<void> => {
    const { batch } = p;
    const now = Date.now();
    const startedAt = performance.now();
    const { items, readings, rejected } = decodeBatch(batch.messages, o.limits, now);
    const judging = tracing && judgeSpans(tracing, p, now);
    const lastOffset = batch.lastOffset();
    const owner = member.inHand(p);
    if (rejected.length > 0) {
      await deadLetters.send(batch, rejected, now, (send) => durably('dead-letter', owner, send));
    }

    const { partition } = batch;
    // Taken up again since this batch began (a store flush failed): it is fetched again from there.
    const epoch = epochs.get(partition) ?? 0;
    const current = (): boolean => (epochs.get(partition) ?? 0) === epoch;
    if (!resumeAt.has(partition)) resumeAt.set(partition, Number(batch.messages[0]!.offset));
    const tracked = await durably('load incident state', owner, () =>
      o.incidents.process(partition, items, Number(lastOffset)),
    );
    // Live readings, as judged: handed on and not awaited, a failure logged and dropped.
    if (o.onJudged && readings.length > 0) {
      const notPassedOn = (err: unknown): void =>
        log.warn({ err: (err as Error).message, partition }, 'live readings not passed on');
      try {
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
    if (judging) traceRaised(judging, raised);
    // Surely new alerts go out now, before they are stored (stream/alertChain.ts); the rest after.
    // Those at or before the watermark the partition was taken at are stored already: fetched again
    // after a rebalance (committed offsets trail the store), they are neither stored nor published again.
    const chain = raised.length > 0 ? await chainOf(p) : chains.get(partition);
    const alerts = chain ? chain.unstored(raised) : raised;
    if (!current()) return;
    // A reading in the older half of the accepted age could be refused by a replay a little later.
    const { early, late } =
      chain && alerts.length > 0 ? chain.split(alerts, now - o.limits.maxAgeMs / 2) : { early: [], late: [] };
    if (chain && early.length > 0) {
      await o.fanout.publish(early, chain.link(early));
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
      await Promise.race([backlog.room(MAX_BACKLOG), sleep(member.heartbeatMs)]);
      await owner.heartbeat();
    }
  };

  /** The judge span of each traced message of a batch, by offset (started as the batch came). */
  const judgeSpans = (t: Tracing, p: EachBatchPayload, now: number): Map<number, Span> | undefined => {
    let spans: Map<number, Span> | undefined;
    for (const message of p.batch.messages) {
      const header = message.headers?.traceparent;
      if (header === undefined) continue;
      const parent = Array.isArray(header) ? header[0] : header;
      if (parent === undefined) continue;
      const span = t.start('consume and judge', parent.toString(), {
        kind: SpanKind.CONSUMER,
        startTime: now,
        attributes: {
          'messaging.system': 'kafka',
          'messaging.destination.name': p.batch.topic,
          'messaging.destination.partition.id': String(p.batch.partition),
          'messaging.kafka.offset': Number(message.offset),
        },
      });
      (spans ??= new Map()).set(Number(message.offset), span);
    }
    return spans;
  };
  /** Ends the judge spans; an alert of a traced reading carries its trace on, and is logged with it. */
  const traceRaised = (spans: Map<number, Span>, raised: readonly OverheatAlert[]): void => {
    for (const alert of raised) {
      const span = spans.get(alert.position.offset);
      const traceparent = span && traceparentOf(span);
      if (!span || traceparent === undefined) continue;
      span.setAttribute('alert.id', alert.id);
      carryTrace(alert, traceparent);
      log.info(
        {
          alertId: alert.id,
          sensorId: alert.sensorId,
          temperature: alert.temperature,
          partition: alert.position.partition,
          offset: alert.position.offset,
          traceId: traceIdOf(traceparent),
        },
        'overheat alert raised',
      );
    }
    for (const span of spans.values()) span.end();
  };

  /** Per partition taken since the last rebalance, what publishing alerts before storing them needs. */
  const chains = new Map<number, AlertChain>();
  const chainOf = async (p: EachBatchPayload): Promise<AlertChain> => {
    const { topic, partition } = p.batch;
    let chain = chains.get(partition);
    if (!chain) {
      const stored = await durably('load alert floor', member.inHand(p), () =>
        o.store.progress.storedUpTo(topic, partition),
      );
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
  const repeatNotices = setInterval(() => {
    for (const [partition, chain] of chains) {
      const notice = chain.repeatable();
      if (notice) void o.fanout.publishProgress({ partition, ...notice });
    }
  }, PROGRESS_REPEAT_MS);
  repeatNotices.unref();

  /**
   * A partition whose batches could not all be stored in order (a store flush failed, or a batch
   * was given up after it was judged) is taken up again from its first offset not stored: what was
   * judged beyond it is dropped, and fetched and judged again from the store's state.
   */
  const takeUpAgain = (partition: number): void => {
    epochs.set(partition, (epochs.get(partition) ?? 0) + 1);
    backlog.drop(partition);
    o.incidents.forget([partition]);
    chains.delete(partition);
    const from = resumeAt.get(partition);
    resumeAt.delete(partition);
    if (abandoned || !assigned.has(partition) || from === undefined) return;
    try {
      member.seek(partition, from);
    } catch (err) {
      log.warn({ err: (err as Error).message, partition }, 'could not go back to the first offset not stored');
    }
  };
  const judgedStore = {
    tracing,
    topic: o.topic,
    store: o.store,
    incidents: o.incidents,
    fanout: o.fanout,
    incidentFanout: o.incidentFanout,
    observer,
    log,
    durably,
    counts,
    chainOf: (partition: number) => chains.get(partition),
  };
  const backlog = createStoreBacklog<JudgedBatch>({
    async flush(partition, batches) {
      const last = batches.at(-1)!;
      const owner: BatchOwner = {
        partition,
        holds: () => !abandoned && (last.generation === generation || assigned.has(partition)),
        heartbeat: () => Promise.resolve(),
      };
      await storeJudged(judgedStore, partition, batches, owner);
      if (last.generation === generation) {
        stored.set(partition, last.lastOffset);
        resumeAt.set(partition, last.lastOffset + 1);
        // Committed at once: the next owner of the partition starts there, and what it fetches again
        // (stored, but not committed) is judged again and its alerts go out only after storing.
        void commitStored();
      }
      member.counts.batches += batches.length;
    },
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
    await member
      .commit(due)
      .then(() => {
        for (const [partition, offset] of due) committed.set(partition, offset);
      })
      .catch((err: Error) => log.warn({ err: err.message }, 'commit failed; retried at the next one'));
  };
  const commits = setInterval(() => void commitStored(), ALERT_COMMIT_INTERVAL_MS);
  commits.unref();

  await member.run({
    async eachBatch(p) {
      try {
        await judge(p);
      } catch (err) {
        // Taken up again from what the store has (the chain's bound before its first alert holds).
        takeUpAgain(p.batch.partition);
        throw err;
      }
    },
    // Partitions may have moved: incident state and the replay pages last written are read from the
    // store again; what was judged and not stored is fetched again.
    rebalanced(partitions) {
      generation++;
      assigned = partitions;
      backlog.drop();
      stored.clear();
      committed.clear();
      resumeAt.clear();
      o.incidents.forget();
      chains.clear();
      o.store.forgetWrites();
    },
  });

  return {
    isHealthy: () => member.isHealthy(),
    abandon() {
      abandoned = true;
      backlog.drop();
    },
    stats: () => ({ ...member.counts, ...counts, ...deadLetters.counts(), readingsStored: 0, readingsPending: 0 }),
    async dispose() {
      // Stop fetching, let in-flight batches finish, store and commit what they handed over, then leave.
      await member.leave(async (inFlightDone) => {
        // The group waits for this member to leave before its partitions move: store without the interval.
        backlog.hurry();
        clearInterval(repeatNotices);
        await inFlightDone();
        await backlog.idle();
        clearInterval(commits);
        await commitStored();
      });
      await deadLetters.disconnect();
    },
  };
}
