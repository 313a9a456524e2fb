/**
 * What a batch of the readings topic holds, as both consumers see it: every message decoded and
 * validated (readings, and sensor commands: thresholds, acknowledgements), in offset order, the bad
 * ones with a reason. And the dead-letter topic, where the alert path sends the bad ones with their
 * original bytes and that reason (the history consumer sees the same messages and skips them).
 */
import type { Batch, IHeaders, Kafka, KafkaMessage } from 'kafkajs';
import { commandKindOf, decodeCommand } from '../domain/sensorCommand.js';
import { decodeReading, type Reading, type ReadingLimits, type ReadingRejection } from '../domain/reading.js';
import type { Logger } from '../logger.js';
import type { BatchItem } from './incidentTracker.js';
import { idempotentProducer, PartitionedBatch, partitionCount } from './kafka.js';

export interface Rejected {
  readonly message: KafkaMessage;
  readonly rejection: ReadingRejection;
}

export interface DecodedBatch {
  /** Readings and commands in offset order (the alert path applies both). */
  readonly items: BatchItem[];
  /** The valid readings, in offset order (what the history stores). */
  readonly readings: Reading[];
  readonly rejected: Rejected[];
}

/** A batch's messages, decoded and validated with `limits` at `now`. */
export function decodeBatch(
  messages: readonly KafkaMessage[],
  limits: ReadingLimits & { maxMessageBytes: number },
  now: number,
): DecodedBatch {
  const items: BatchItem[] = [];
  const readings: Reading[] = [];
  const rejected: Rejected[] = [];
  for (const message of messages) {
    const offset = Number(message.offset);
    const kind = commandKindOf(message.headers);
    if (kind !== undefined) {
      const decoded = decodeCommand(kind, message.value, message.key);
      if (decoded.ok) items.push({ offset, command: decoded.command });
      else
        rejected.push({
          message,
          rejection: { code: 'BAD_COMMAND', field: decoded.field, message: decoded.message },
        });
      continue;
    }
    const result = decodeReading(message.value, message.key, limits, now);
    if (result.ok) {
      readings.push(result.reading);
      items.push({ offset, reading: result.reading });
    } else rejected.push({ message, rejection: result.rejection });
  }
  return { items, readings, rejected };
}

export interface DeadLetters {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  /**
   * Sends a batch's rejected messages, acknowledged by every in-sync replica; `durably` runs the
   * send until it succeeds (or gives up by throwing). Counted and logged once sent.
   */
  send(
    batch: Batch,
    rejected: readonly Rejected[],
    failedAt: number,
    durably: (send: () => Promise<unknown>) => Promise<unknown>,
  ): Promise<void>;
  /** Messages dead-lettered, in all and by rejection code. */
  counts(): { deadLettered: number; deadLetteredByCode: Record<string, number> };
}

export function createDeadLetters(kafka: Kafka, topic: string, log: Logger): DeadLetters {
  const producer = idempotentProducer(kafka);
  let deadLettered = 0;
  // Dead letters go partition by partition, as readings do (stream/kafka.ts PartitionedBatch).
  let partitions = 0;
  const byCode: Record<string, number> = {};
  return {
    async connect() {
      await producer.connect();
      partitions = await partitionCount(kafka, topic);
    },
    disconnect: () => producer.disconnect(),
    async send(batch, rejected, failedAt, durably) {
      const at = new Date(failedAt).toISOString();
      const letters = new PartitionedBatch(
        topic,
        rejected.map(({ message, rejection }) => {
          const headers: IHeaders = {
            // The producer's own headers travel with the message, so it can be traced and replayed.
            ...message.headers,
            'dlq.code': rejection.code,
            'dlq.reason': rejection.message,
            'dlq.field': rejection.field,
            'dlq.source.topic': batch.topic,
            'dlq.source.partition': String(batch.partition),
            'dlq.source.offset': message.offset,
            'dlq.failed-at': at,
          };
          return { key: message.key, value: message.value, headers };
        }),
        partitions,
      );
      // The same batch at every attempt: a partition acknowledged is not sent again.
      await durably(() => letters.send(producer));
      deadLettered += rejected.length;
      for (const { rejection } of rejected) byCode[rejection.code] = (byCode[rejection.code] ?? 0) + 1;
      log.info(
        { partition: batch.partition, count: rejected.length, first: rejected[0]?.rejection },
        'dead-lettered invalid readings',
      );
    },
    counts: () => ({ deadLettered, deadLetteredByCode: { ...byCode } }),
  };
}
