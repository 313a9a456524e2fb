/**
 * Property-based flood of the consumer: 10,000 generated messages, bad and valid mixed, written
 * straight to Kafka. Nothing crashes, every bad message is in the dead-letter topic with a reason,
 * and every valid one is stored.
 */
import fc from 'fast-check';
import { Kafka, Partitioners, logLevel, type Consumer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isolatedEnv, uniqueName } from '../support/env.js';
import { startReplica, type InProcessReplica } from '../support/pipeline.js';
import { eventually } from '../support/wait.js';

const TOTAL = 10_000;
const env = isolatedEnv('fuzz', { KAFKA_PARTITIONS: '3' });
const kafka = new Kafka({ clientId: 'fuzz-test', brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING });
const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
let replica: InProcessReplica;
let dlq: Consumer;
const deadLetters = new Map<string, { code?: string; reason?: string }>();
const run = uniqueName('fz');
// Every sensor id a case can carry, valid or not: none of the bad ones may be stored.
const fuzzSensors = Array.from({ length: 40 }, (_, i) => [`${run}-${i}`, `${run}-bad-${i}`]).flat();

type Case = { kind: 'valid' | 'bad'; key: string | null; value: Buffer };

const now = Date.now();
const validReading = (i: number) =>
  fc
    .record({
      temperature: fc.double({ min: -60, max: 200, noNaN: true }),
      humidity: fc.double({ min: 0, max: 100, noNaN: true }),
      lat: fc.double({ min: -90, max: 90, noNaN: true }),
      lon: fc.double({ min: -180, max: 180, noNaN: true }),
      epochTs: fc.boolean(),
    })
    .map(({ temperature, humidity, lat, lon, epochTs }): Case => {
      const sensorId = `${run}-${i % 40}`;
      const t = now - 3600_000 + i; // unique per message: each valid message is a distinct reading
      const body = {
        sensorId,
        ts: epochTs ? t : new Date(t).toISOString(),
        temperature,
        humidity,
        location: { lat, lon },
      };
      return { kind: 'valid', key: sensorId, value: Buffer.from(JSON.stringify(body)) };
    });

const good = (i: number) => ({
  sensorId: `${run}-bad-${i % 40}`,
  ts: new Date(now - 1000).toISOString(),
  temperature: 20,
  humidity: 50,
  location: { lat: 1, lon: 1 },
});
const bad = (i: number): fc.Arbitrary<Case> => {
  const json = (v: unknown): Case => ({
    kind: 'bad',
    key: `${run}-bad-${i % 40}`,
    value: Buffer.from(JSON.stringify(v)),
  });
  return fc.oneof(
    // not JSON at all, or truncated JSON
    fc
      .string({ minLength: 1, maxLength: 60 })
      .filter((s) => {
        try {
          JSON.parse(s);
          return false;
        } catch {
          return true;
        }
      })
      .map((s): Case => ({ kind: 'bad', key: null, value: Buffer.from(s) })),
    fc
      .uint8Array({ minLength: 1, maxLength: 80 })
      .filter((b) => {
        try {
          JSON.parse(Buffer.from(b).toString());
          return false;
        } catch {
          return true;
        }
      })
      .map((b): Case => ({ kind: 'bad', key: null, value: Buffer.from(b) })),
    // JSON, but not an object
    fc.oneof(fc.integer(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 })).map(json),
    // wrong types
    fc
      .constantFrom('sensorId', 'ts', 'temperature', 'humidity', 'location')
      .chain((field) =>
        fc
          .oneof(fc.boolean(), fc.constant('x'), fc.constant({}), fc.constant([]))
          .map((v) => json({ ...good(i), [field]: field === 'ts' && v === 'x' ? 'yesterday' : v })),
      ),
    // missing fields
    fc.constantFrom('sensorId', 'ts', 'temperature', 'humidity', 'location').map((field) => {
      const o: Record<string, unknown> = { ...good(i) };
      delete o[field];
      return json(o);
    }),
    // unknown fields
    fc
      .string({ minLength: 1, maxLength: 10 })
      .filter((k) => !['sensorId', 'ts', 'temperature', 'humidity', 'location', '__proto__'].includes(k))
      .map((k) => json({ ...good(i), [k]: 1 })),
    // out of range
    fc
      .oneof(
        fc.double({ min: 100.0001, max: 1e9, noNaN: true }).map((h) => ({ humidity: h })),
        fc.double({ min: -1e9, max: -0.0001, noNaN: true }).map((h) => ({ humidity: h })),
        fc.double({ min: 90.0001, max: 1e6, noNaN: true }).map((lat) => ({ location: { lat, lon: 0 } })),
        fc.double({ min: 180.0001, max: 1e6, noNaN: true }).map((lon) => ({ location: { lat: 0, lon: -lon } })),
        fc.double({ min: 200.0001, max: 1e12, noNaN: true }).map((t) => ({ temperature: t })),
        fc.double({ min: -1e12, max: -60.0001, noNaN: true }).map((t) => ({ temperature: t })),
      )
      .map((patch) => json({ ...good(i), ...patch })),
    // timestamps far away
    fc
      .integer({ min: 1, max: 100_000 })
      .map((days) =>
        json({ ...good(i), ts: new Date(now + (days % 2 ? 1 : -1) * (days + 8) * 86400_000).toISOString() }),
      ),
    // oversized
    fc.integer({ min: 4097, max: 20_000 }).map((n): Case => ({ kind: 'bad', key: null, value: Buffer.alloc(n, 0x41) })),
  );
};

// Seeded: the same 10,000 cases every run, so a failure can be replayed.
const cases: Case[] = Array.from(
  { length: TOTAL },
  (_, i) => fc.sample(fc.oneof(validReading(i), bad(i)), { numRuns: 1, seed: 4242 + i })[0]!,
);

beforeAll(async () => {
  replica = await startReplica(env);
  await producer.connect();
  dlq = kafka.consumer({ groupId: uniqueName('fuzz-dlq') });
  await dlq.connect();
  await dlq.subscribe({ topic: env.KAFKA_DLQ_TOPIC!, fromBeginning: true });
  await dlq.run({
    eachMessage: async ({ message }) => {
      const id = message.headers?.['fuzz-id']?.toString();
      if (id)
        deadLetters.set(id, {
          code: message.headers?.['dlq.code']?.toString(),
          reason: message.headers?.['dlq.reason']?.toString(),
        });
    },
  });
});
afterAll(async () => {
  await dlq?.disconnect();
  await producer.disconnect();
  await replica?.stop();
});

describe(`consumer under ${TOTAL} generated messages`, () => {
  it('never crashes, dead-letters every bad message with a reason, and stores every valid one', async () => {
    const badIds = cases.flatMap((c, i) => (c.kind === 'bad' ? [String(i)] : []));
    const validCount = cases.length - badIds.length;
    expect(badIds.length).toBeGreaterThan(TOTAL / 4);
    expect(validCount).toBeGreaterThan(TOTAL / 4);

    for (let from = 0; from < cases.length; from += 500) {
      await producer.send({
        topic: env.KAFKA_READINGS_TOPIC!,
        acks: -1,
        messages: cases
          .slice(from, from + 500)
          .map((c, j) => ({ key: c.key, value: c.value, headers: { 'fuzz-id': String(from + j) } })),
      });
    }

    const store = replica.parts.store;
    await eventually(
      () => deadLetters.size,
      (n) => n >= badIds.length,
      { timeoutMs: 120_000, intervalMs: 500, what: `${badIds.length} dead letters` },
    );
    await eventually(
      () => store.readings.count(fuzzSensors),
      (n) => n >= validCount,
      {
        timeoutMs: 180_000,
        intervalMs: 1000,
        what: `${validCount} stored readings`,
      },
    );

    expect(await store.readings.count(fuzzSensors)).toBe(validCount);
    expect([...deadLetters.keys()].sort()).toEqual([...badIds].sort());
    for (const id of badIds) {
      const letter = deadLetters.get(id)!;
      expect(letter.code, `message ${id}`).toMatch(/^[A-Z_]+$/);
      expect(letter.reason, `message ${id}`).toBeTruthy();
    }
    const health = await fetch(replica.app.url().replace('/graphql', '/readyz'));
    expect(health.status).toBe(200);
    expect(replica.parts.consumer?.stats().deadLettered).toBe(badIds.length);
  }, 400_000);
});
