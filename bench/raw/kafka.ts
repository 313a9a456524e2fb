/**
 * Raw limit: kafkajs produce -> consume alone, with the app's client settings (idempotent producer,
 * one request in flight, acks=all, murmur2 partitioner; eachBatch consumer, maxWaitTimeInMs 100,
 * 3 partitions processed concurrently, 1 MiB per partition, autoCommit off), on fresh 6-partition topics.
 *
 *  - raw.kafka.latency      open loop at `rate` msg/s: send timestamp (in the value) -> eachBatch.
 *  - raw.kafka.produceRate  pre-producing `messages` as fast as the app-like producer can (sends of `produceBatch`).
 *  - raw.kafka.consumeRate  a fresh group reads them all, eachBatch only counts.
 *
 *  - raw.kafka.latency.autoCommit  only with autoCommitVariant: the same with kafkajs autoCommit on.
 *
 * Run alone: npx tsx bench/raw/kafka.ts [--durationMs=10000] [--rate=1000] [--messages=300000] [--autoCommitVariant=1]
 */
import { Kafka, logLevel, type Consumer, type Producer, type logCreator } from 'kafkajs';
import { idempotentProducer } from '../../src/stream/kafka.js';
import { openLoop } from '../lib/openLoop.js';
import { Samples, nowMs, sleep, type Figure } from '../lib/stats.js';
import { isMain, runCli, runId, waitFor } from './common.js';

export interface KafkaRawOptions {
  durationMs: number;
  /** Latency phase arrival rate, messages/s (default 1000). */
  rate?: number;
  /** Consumer fetch wait (default 100, what the app uses). */
  maxWaitTimeInMs?: number;
  /** Messages pre-produced for the throughput phase (default 300 000; 0 skips it). */
  messages?: number;
  /** Messages per producer.send while pre-producing (default 2000, the app's MAX_BATCH). */
  produceBatch?: number;
  /**
   * Also measure latency with kafkajs autoCommit on (`raw.kafka.latency.autoCommit`, another
   * durationMs; default false). kafkajs then commits offsets after every partition's batch, a
   * broker round trip each, which costs ~25 ms p50 here; the app runs with autoCommit off and
   * commits itself, so `raw.kafka.latency` (autoCommit off) is its limit.
   */
  autoCommitVariant?: boolean;
  brokers?: string[];
}

const PARTITIONS = 6;
const SENSORS = 1000;
/** The app's producer never puts more than this many readings in one send. */
const APP_MAX_BATCH = 2000;

const stderrLogs: logCreator =
  () =>
  ({ level, log }) => {
    if (level <= logLevel.WARN)
      process.stderr.write(`[kafkajs ${level === logLevel.ERROR ? 'error' : 'warn'}] ${log.message}\n`);
  };

const sensorIds = Array.from({ length: SENSORS }, (_, i) => `sensor-${String(i).padStart(4, '0')}`);

/** A sensor-reading-like JSON value (~180 bytes) whose `sentAt` is the send time (nowMs). */
function readingValue(i: number, sentAt: number): string {
  return JSON.stringify({
    sensorId: sensorIds[i % SENSORS],
    ts: new Date(Math.floor(sentAt)).toISOString(),
    temperature: 20 + (i % 500) / 10,
    humidity: 40 + (i % 300) / 10,
    location: { lat: 48.8566 + (i % 100) / 1000, lon: 2.3522 + (i % 77) / 1000 },
    sentAt,
    seq: i,
    fw: 'bench-1.0',
  });
}

/** The API's own producer settings, so the raw limit is measured with what the app uses. */
const appProducer = (kafka: Kafka): Producer => idempotentProducer(kafka);

function appConsumer(kafka: Kafka, groupId: string, maxWaitTimeInMs: number): Consumer {
  return kafka.consumer({
    groupId,
    allowAutoTopicCreation: false,
    sessionTimeout: 10_000,
    heartbeatInterval: 2000,
    rebalanceTimeout: 60_000,
    maxBytesPerPartition: 1_048_576,
    maxWaitTimeInMs,
  });
}

/** Resolves once the consumer has joined its group (or rejects after timeoutMs). */
function joined(consumer: Consumer, timeoutMs = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('kafka consumer did not join its group in time')), timeoutMs);
    const off = consumer.on(consumer.events.GROUP_JOIN, () => {
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

export async function run(opts: KafkaRawOptions): Promise<Figure[]> {
  const rate = opts.rate ?? 1000;
  const maxWait = opts.maxWaitTimeInMs ?? 100;
  const total = opts.messages ?? 300_000;
  const produceBatch = opts.produceBatch ?? APP_MAX_BATCH;
  const id = runId();
  const latencyTopic = `bench-raw-lat-${id}`;
  const throughputTopic = `bench-raw-tput-${id}`;
  const kafka = new Kafka({
    clientId: `bench-raw-${id}`,
    brokers: opts.brokers ?? ['127.0.0.1:9092'],
    logLevel: logLevel.WARN,
    logCreator: stderrLogs,
    connectionTimeout: 3000,
    requestTimeout: 10_000,
  });
  const admin = kafka.admin();
  await admin.connect();
  const figures: Figure[] = [];
  const toClose: { disconnect(): Promise<void> }[] = [];
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [latencyTopic, ...(total > 0 ? [throughputTopic] : [])].map((topic) => ({
        topic,
        numPartitions: PARTITIONS,
        replicationFactor: 1,
      })),
    });
    figures.push(
      await latencyPhase(kafka, latencyTopic, `bench-raw-lat-${id}`, rate, opts.durationMs, maxWait, false, toClose),
    );
    if (opts.autoCommitVariant ?? false) {
      figures.push(
        await latencyPhase(kafka, latencyTopic, `bench-raw-latac-${id}`, rate, opts.durationMs, maxWait, true, toClose),
      );
    }
    if (total > 0)
      figures.push(
        ...(await throughputPhase(
          kafka,
          throughputTopic,
          `bench-raw-tput-${id}`,
          total,
          produceBatch,
          maxWait,
          toClose,
        )),
      );
  } finally {
    for (const c of toClose.reverse()) await c.disconnect().catch(() => undefined);
    await admin
      .deleteTopics({ topics: [latencyTopic, ...(total > 0 ? [throughputTopic] : [])], timeout: 5000 })
      .catch(() => undefined);
    await admin.disconnect();
  }
  return figures;
}

async function latencyPhase(
  kafka: Kafka,
  topic: string,
  groupId: string,
  rate: number,
  durationMs: number,
  maxWait: number,
  autoCommit: boolean,
  toClose: { disconnect(): Promise<void> }[],
): Promise<Figure> {
  const producer = appProducer(kafka);
  const consumer = appConsumer(kafka, groupId, maxWait);
  toClose.push(producer, consumer);
  await Promise.all([producer.connect(), consumer.connect()]);
  // A second latency run reuses the topic: its new group starts after what is already there.
  await consumer.subscribe({ topic, fromBeginning: false });

  const samples = new Samples();
  let measuring = false;
  let received = 0;
  let warmReceived = 0;
  const isJoined = joined(consumer);
  await consumer.run({
    autoCommit,
    partitionsConsumedConcurrently: 3,
    eachBatch: async ({ batch }) => {
      const at = nowMs();
      for (const m of batch.messages) {
        const { sentAt } = JSON.parse(m.value!.toString()) as { sentAt: number };
        if (sentAt < 0) warmReceived++;
        else {
          received++;
          if (measuring) samples.add(at - sentAt);
        }
      }
    },
  });
  await isJoined;

  // The app's producer loop: messages queue, and leave in one send whenever none is in flight.
  const queue: { key: string; value: string }[] = [];
  let flushing = false;
  let sent = 0;
  let seq = 0;
  let sendError: Error | undefined;
  const flush = async (): Promise<void> => {
    if (flushing) return;
    flushing = true;
    try {
      while (queue.length > 0) {
        const batch = queue.splice(0, APP_MAX_BATCH);
        await producer.send({ topic, acks: -1, messages: batch });
        sent += batch.length;
      }
    } catch (err) {
      sendError = err as Error;
    } finally {
      flushing = false;
    }
  };

  // Warm-up: connections, metadata and the first fetch, out of the measurement.
  // Repeated until one arrives: a new group starting at "latest" may resolve that offset after the first ones.
  const warmDeadline = performance.now() + 15_000;
  for (let round = 0; warmReceived === 0; round++) {
    if (performance.now() > warmDeadline) throw new Error('kafka warm-up messages not consumed');
    for (let i = 0; i < 12; i++)
      queue.push({ key: sensorIds[(round * 12 + i) % SENSORS]!, value: readingValue(i, -1) });
    await flush();
    await waitFor(() => warmReceived > 0, 300);
  }
  await sleep(200);

  measuring = true;
  const load = await openLoop(rate, durationMs, (n) => {
    const t = nowMs();
    for (let i = 0; i < n; i++, seq++) queue.push({ key: sensorIds[seq % SENSORS]!, value: readingValue(seq, t) });
    void flush();
  });
  await waitFor(() => (received >= load.issued && !flushing) || sendError !== undefined, 10_000);
  measuring = false;
  if (sendError) throw sendError;
  await Promise.all([producer.disconnect(), consumer.disconnect()]);
  const latency = samples.percentiles();
  return {
    name: autoCommit ? 'raw.kafka.latency.autoCommit' : 'raw.kafka.latency',
    latency,
    unit: 'ms',
    notes:
      `kafkajs produce->eachBatch alone, open loop ${rate}/s for ${durationMs} ms (achieved ${load.achievedRate.toFixed(0)}/s), ` +
      `${PARTITIONS} partitions, idempotent acks=-1 maxInFlight 1 (ticks batched into one send), eachBatch x3 concurrent, maxWaitTimeInMs ${maxWait}, ` +
      `${autoCommit ? 'autoCommit on (kafkajs commits offsets after every batch)' : 'autoCommit off (like the app; no offset commits here)'}; ` +
      `received ${received}/${load.issued}, sent ${sent}`,
  };
}

async function throughputPhase(
  kafka: Kafka,
  topic: string,
  groupId: string,
  total: number,
  produceBatch: number,
  maxWait: number,
  toClose: { disconnect(): Promise<void> }[],
): Promise<Figure[]> {
  const producer = appProducer(kafka);
  toClose.push(producer);
  await producer.connect();
  // A pool of pre-encoded values: the figure is kafkajs + broker, not JSON.stringify.
  const t0 = nowMs();
  const pool = Array.from({ length: 2000 }, (_, i) => ({ key: sensorIds[i % SENSORS]!, value: readingValue(i, t0) }));
  const produceCapMs = 30_000;
  let produced = 0;
  const start = performance.now();
  while (produced < total && performance.now() - start < produceCapMs) {
    const n = Math.min(produceBatch, total - produced);
    const messages = new Array<{ key: string; value: string }>(n);
    for (let i = 0; i < n; i++) messages[i] = pool[(produced + i) % pool.length]!;
    await producer.send({ topic, acks: -1, messages });
    produced += n;
  }
  const produceSeconds = (performance.now() - start) / 1000;
  await producer.disconnect();

  const consumer = appConsumer(kafka, groupId, maxWait);
  toClose.push(consumer);
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let count = 0;
  let joinedAt = 0;
  let lastAt = 0;
  let firstAt = 0;
  const isJoined = joined(consumer).then(() => {
    joinedAt = performance.now();
  });
  await consumer.run({
    autoCommit: false,
    partitionsConsumedConcurrently: 3,
    eachBatch: async ({ batch }) => {
      if (firstAt === 0) firstAt = performance.now();
      count += batch.messages.length;
      lastAt = performance.now();
    },
  });
  await isJoined;
  await waitFor(() => count >= produced, 60_000, 2);
  const consumeSeconds = (lastAt - joinedAt) / 1000;
  return [
    {
      name: 'raw.kafka.produceRate',
      rate: produced / produceSeconds,
      unit: 'msg/s',
      notes: `${produced} messages (~${Buffer.byteLength(pool[0]!.value)} B) in ${produceSeconds.toFixed(2)} s, idempotent acks=-1 maxInFlight 1, sends of ${produceBatch}`,
    },
    {
      name: 'raw.kafka.consumeRate',
      rate: count / consumeSeconds,
      unit: 'msg/s',
      notes:
        `fresh group read ${count}/${produced} in ${consumeSeconds.toFixed(2)} s from group join (first batch after ${((firstAt - joinedAt) / 1000).toFixed(2)} s), ` +
        `eachBatch only counting (no offset commits), 3 partitions concurrently, 1 MiB/partition, maxWaitTimeInMs ${maxWait}`,
    },
  ];
}

if (isMain(import.meta.url)) {
  runCli<KafkaRawOptions>(run, { maxWaitTimeInMs: true, messages: true, produceBatch: true, autoCommitVariant: true });
}
