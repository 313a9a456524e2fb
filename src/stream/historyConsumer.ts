/**
 * The history consumer (group `<KAFKA_GROUP_ID>.history`, see stream/groupMember.ts): the same
 * validation as the alert path, then the ReadingWriter stores the valid readings in buckets; a batch
 * is held (heartbeating) until its readings are durable and only then committed. Holding it is what
 * keeps one writer per sensor: a rebalance cannot give the partition to another replica while this
 * one still writes its sensors' buckets.
 *
 * Idempotent: a batch replayed after a crash or a rebalance changes nothing. Messages it cannot
 * decode are skipped: the alert path dead-letters them.
 */
import { PartitionAssigners, type EachBatchPayload } from 'kafkajs';
import type { ReadingLimits } from '../domain/reading.js';
import type { MongoStore } from '../store/mongoStore.js';
import { sleep } from '../shared/retry.js';
import { decodeBatch } from './batchIntake.js';
import { BatchAbandoned, createGroupMember, type GroupMemberOptions, type ReadingConsumer } from './groupMember.js';
import { createReadingWriter } from './readingWriter.js';

export interface HistoryConsumerOptions extends GroupMemberOptions {
  limits: ReadingLimits & { maxMessageBytes: number };
  store: MongoStore;
  /** Valid readings held for storage before the consumer stops fetching. */
  maxPendingReadings?: number;
  /** Each partition's readings are written at most this often (HISTORY_WRITE_INTERVAL). */
  writeIntervalMs?: number;
}

/**
 * A batch with this many readings per sensor in it is written without waiting for
 * HISTORY_WRITE_INTERVAL. A write costs a statement or two per sensor whatever it carries, so the
 * interval is for fleets of many slow sensors; a fast fleet fills its writes without it.
 */
export const WORTH_A_WRITE_PER_SENSOR = 50;

export async function startHistoryConsumer(o: HistoryConsumerOptions): Promise<ReadingConsumer> {
  const member = createGroupMember({ ...o, role: 'history', partitionAssigners: [PartitionAssigners.roundRobin] });
  const { heartbeatMs } = member;
  await member.join();

  /** Shutting down: batches stop waiting for the write interval. */
  let draining = false;
  const writer = createReadingWriter({
    store: o.store,
    maxPending: o.maxPendingReadings ?? 50_000,
    intervalMs: o.writeIntervalMs ?? 0,
    observer: member.observer,
    logger: o.logger,
    // Committed only once durable: the writer says which offsets are.
    onDurable: ({ offsets }) => member.commit(offsets),
  });

  /** The batch is held until its readings are durable, then committed (by the writer). */
  const eachBatch = async (p: EachBatchPayload): Promise<void> => {
    const { batch } = p;
    const { readings } = decodeBatch(batch.messages, o.limits, Date.now());
    const lastOffset = batch.lastOffset();
    // Written at once, without the interval: when more waits in Kafka for this partition (the
    // interval must not cap the rate), or when the batch already carries enough readings per sensor
    // for a write to be worth its statements (a fast fleet need not wait).
    const sensors = new Set<string>();
    for (const r of readings) sensors.add(r.sensorId);
    const atOnce =
      Number(batch.offsetLag()) > 0 || readings.length >= WORTH_A_WRITE_PER_SENSOR * Math.max(1, sensors.size);
    const { durable } = await writer.enqueue(batch.partition, Number(lastOffset), readings, { atOnce });
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
    member.counts.batches++;
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

  await member.run({
    eachBatch,
    // Partitions may have moved: this replica's cached parts of sensors another replica may have
    // written since are read from the store again.
    rebalanced: () => o.store.readings.forget(),
  });

  return {
    isHealthy: () => member.isHealthy() && writer.isHealthy(),
    abandon: () => writer.abandon(),
    stats: () => ({
      ...member.counts,
      readingsStored: writer.stored(),
      readingsPending: writer.pending(),
      alertsRaised: 0,
      incidentChanges: 0,
      deadLettered: 0,
      deadLetteredByCode: {},
    }),
    dispose: () =>
      // Stop fetching; readings waiting for the write interval go now, so the batches holding them
      // end sooner; let them finish and commit, then leave.
      member.leave(async (inFlightDone) => {
        draining = true;
        const written = writer.flush();
        await inFlightDone();
        await Promise.all([written, writer.flush()]);
      }),
  };
}
