/**
 * The readings producer: every reading, simulated or pushed by a device, enters Kafka here.
 *
 * Idempotent kafkajs producer (one request in flight, so ordering per partition holds). Readings
 * queue in memory and leave in batches: when nothing is in flight a reading leaves at once (no
 * linger on the alert path), otherwise it joins the next batch. The queue is bounded: when Kafka is
 * down and it fills, `offer` refuses (simulators skip a tick) and `send` fails with a retryable error.
 */
import type { Kafka, Producer } from 'kafkajs';
import { idempotentProducer, PartitionedBatch, partitionCount, producerStateLost } from './kafka.js';
import { encodeReading, type Reading } from '../domain/reading.js';
import { encodeCommand, type SensorCommand } from '../domain/sensorCommand.js';
import { DependencyError } from '../errors.js';
import type { Logger } from '../logger.js';
import { endSpan, SpanKind, traceparentOf, type Span, type Tracing } from '../observability/tracing.js';
import { Backoff, retryUntilDone } from '../shared/retry.js';
import { Waiters } from '../shared/waiters.js';

export interface ReadingProducer {
  /**
   * Sends readings and resolves once Kafka acknowledged them all (acks=all). With `trace` (a
   * `traceparent`), a produce span child of it covers the send, and each message carries it on.
   */
  send(readings: readonly Reading[], timeoutMs?: number, trace?: string): Promise<void>;
  /**
   * Sends sensor commands (domain/sensorCommand.ts) in line with the readings, keyed by sensor, and
   * resolves once Kafka acknowledged them all.
   */
  sendCommands(commands: readonly SensorCommand[], timeoutMs?: number): Promise<void>;
  /**
   * Queues one reading without waiting. Returns false when the queue is full (backpressure). With
   * `trace`, as `send`: a produce span until Kafka acknowledges it.
   */
  offer(reading: Reading, trace?: string): boolean;
  /** Readings waiting to be acknowledged. */
  pending(): number;
  isHealthy(): boolean;
  stats(): { sent: number; failedAttempts: number };
  /** Flushes what is queued (bounded by the timeout), then disconnects. */
  dispose(timeoutMs?: number): Promise<void>;
}

interface Queued {
  key: string;
  value: string;
  headers?: Record<string, string>;
  ack?: { resolve: () => void; reject: (err: Error) => void; remaining: number };
  /** The produce span of a traced reading offered: ended once Kafka acknowledged it. */
  produced?: Span;
}

const MAX_BATCH = 2000;
/** A send unacknowledged for this long means Kafka is unreachable (kafkajs keeps retrying inside). */
const STALLED_SEND_MS = 3000;

export async function connectReadingProducer(options: {
  kafka: Kafka;
  topic: string;
  bufferLimit: number;
  logger: Logger;
  /** Traced readings get a produce span, and a `traceparent` header for the consumers. */
  tracing?: Tracing;
}): Promise<ReadingProducer> {
  const log = options.logger.child({ module: 'stream.producer' });
  // kafkajs retries inside each send; the loop below only handles what still escapes.
  let producer: Producer = idempotentProducer(options.kafka);
  await producer.connect();
  // Messages are sent partition by partition (stream/kafka.ts PartitionedBatch); the count is read
  // once: partitions added to the topic later need the replicas restarted (keys move anyway).
  const partitions = await partitionCount(options.kafka, options.topic);

  const queue: Queued[] = [];
  let flushing = false;
  let healthy = true;
  let closed = false;
  let sent = 0;
  let failedAttempts = 0;
  const backoff = new Backoff(100, 5000);
  /** When the batch now in flight was sent; kafkajs retries inside a send while Kafka is down. */
  let inFlightSince: number | undefined;
  const idle = new Waiters();

  /**
   * The batch being sent: the same messages at every attempt until all are acknowledged, so that a
   * copy the broker already holds is recognised as one (stream/kafka.ts PartitionedBatch).
   */
  let current: { batch: Queued[]; partitioned: PartitionedBatch } | undefined;
  /** Sends the head of the queue; returns what was acknowledged. */
  const sendHead = async (): Promise<Queued[]> => {
    if (!current) {
      const batch = queue.slice(0, MAX_BATCH);
      const messages = batch.map((q) => ({ key: q.key, value: q.value, headers: q.headers }));
      current = { batch, partitioned: new PartitionedBatch(options.topic, messages, partitions) };
    }
    inFlightSince = Date.now();
    try {
      await current.partitioned.send(producer);
    } finally {
      inFlightSince = undefined;
    }
    const { batch } = current;
    current = undefined;
    return batch;
  };
  /** A producer whose sequence numbers the cluster refuses for good is replaced (see producerStateLost). */
  const renewProducer = async (): Promise<void> => {
    const old = producer;
    producer = idempotentProducer(options.kafka);
    await old.disconnect().catch(() => undefined);
    await producer.connect();
  };

  const flush = async (): Promise<void> => {
    if (flushing) return;
    flushing = true;
    try {
      while (queue.length > 0) {
        let renew = false;
        const batch = await retryUntilDone(sendHead, {
          backoff,
          onFailure(err, retryInMs) {
            failedAttempts++;
            healthy = false;
            // Still to renew when the last renewal could not connect.
            renew ||= producerStateLost(err);
            if (renew)
              log.warn(
                { err: err.message, queued: queue.length },
                "kafka refuses the producer's sequence numbers; sending with a new producer (a batch may be in Kafka twice, consumers deduplicate)",
              );
            else log.warn({ err: err.message, queued: queue.length, retryInMs }, 'kafka send failed; will retry');
            // Closed: what is queued is dropped (dispose logs it), at once rather than after the wait.
            if (closed) throw err;
          },
          beforeRetry: async () => {
            if (!renew) return;
            renew = false;
            await renewProducer().catch((err: Error) => {
              renew = true;
              log.warn({ err: err.message }, 'a new kafka producer could not connect; will retry');
            });
          },
        });
        queue.splice(0, batch.length);
        sent += batch.length;
        healthy = true;
        backoff.reset();
        for (const q of batch) {
          if (q.ack && --q.ack.remaining === 0) q.ack.resolve();
          q.produced?.end();
        }
      }
    } catch (err) {
      // A closed producer gives up (onFailure above); anything else is not expected here.
      if (!closed) throw err;
    } finally {
      flushing = false;
      if (queue.length === 0) {
        idle.wakeAll();
      }
    }
  };

  const enqueueAcknowledged = (messages: Omit<Queued, 'ack'>[], timeoutMs: number, what: string): Promise<void> => {
    if (messages.length === 0) return Promise.resolve();
    if (closed) return Promise.reject(new DependencyError('kafka', 'producer is shut down'));
    if (queue.length + messages.length > options.bufferLimit) {
      return Promise.reject(
        new DependencyError('kafka', `Kafka is not keeping up: ${queue.length} ${what} already queued`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        // The messages stay queued and may still land; a retry by the caller is deduplicated downstream.
        reject(new DependencyError('kafka', `Kafka did not acknowledge within ${timeoutMs} ms`));
      }, timeoutMs);
      const ack = {
        remaining: messages.length,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject,
      };
      for (const m of messages) queue.push({ ...m, ack });
      void flush();
    });
  };

  const tracing = options.tracing?.enabled ? options.tracing : undefined;
  /** A produce span for a traced send, and the headers that carry it to the consumers. */
  const produceSpan = (trace: string, count: number): { span: Span; headers?: Record<string, string> } => {
    const span = tracing!.start('produce readings', trace, {
      kind: SpanKind.PRODUCER,
      attributes: { 'messaging.system': 'kafka', 'messaging.destination.name': options.topic, 'readings.count': count },
    });
    const traceparent = traceparentOf(span);
    return { span, headers: traceparent === undefined ? undefined : { traceparent } };
  };

  return {
    send(readings, timeoutMs = 5000, trace) {
      if (!tracing || trace === undefined)
        return enqueueAcknowledged(
          readings.map((r) => ({ key: r.sensorId, value: encodeReading(r) })),
          timeoutMs,
          'readings',
        );
      const { span, headers } = produceSpan(trace, readings.length);
      return enqueueAcknowledged(
        readings.map((r) => ({ key: r.sensorId, value: encodeReading(r), headers })),
        timeoutMs,
        'readings',
      ).then(
        () => span.end(),
        (err: unknown) => {
          endSpan(span, err);
          throw err;
        },
      );
    },
    sendCommands(commands, timeoutMs = 5000) {
      return enqueueAcknowledged(commands.map(encodeCommand), timeoutMs, 'messages');
    },
    offer(reading, trace) {
      if (closed || queue.length >= options.bufferLimit) return false;
      if (tracing && trace !== undefined) {
        const { span, headers } = produceSpan(trace, 1);
        queue.push({ key: reading.sensorId, value: encodeReading(reading), headers, produced: span });
      } else queue.push({ key: reading.sensorId, value: encodeReading(reading) });
      void flush();
      return true;
    },
    pending: () => queue.length,
    isHealthy: () => healthy && (inFlightSince === undefined || Date.now() - inFlightSince < STALLED_SEND_MS),
    stats: () => ({ sent, failedAttempts }),
    async dispose(timeoutMs = 5000) {
      if (queue.length > 0) {
        await Promise.race([idle.wait(), new Promise<void>((r) => setTimeout(r, timeoutMs))]);
      }
      closed = true;
      if (queue.length > 0) log.warn({ dropped: queue.length }, 'producer closed with unsent readings');
      for (const q of queue) if (q.produced) endSpan(q.produced, new Error('producer closed'));
      await producer.disconnect();
    },
  };
}
