/**
 * (e) A malformed message written straight to the Kafka topic lands in the dead-letter topic with
 * its original bytes and a reason; valid readings sent after it are still processed.
 */
import { Kafka, logLevel, type Consumer, type KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isolatedEnv, uniqueName } from '../support/env.js';
import { startReplica, type InProcessReplica } from '../support/pipeline.js';
import { eventually } from '../support/wait.js';

const env = isolatedEnv('dlq');
let replica: InProcessReplica;
let dlqConsumer: Consumer;
const deadLetters: KafkaMessage[] = [];
const kafka = new Kafka({ clientId: 'dlq-test', brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING });
const producer = kafka.producer();

beforeAll(async () => {
  replica = await startReplica(env);
  await producer.connect();
  dlqConsumer = kafka.consumer({ groupId: uniqueName('dlq-reader') });
  await dlqConsumer.connect();
  await dlqConsumer.subscribe({ topic: env.KAFKA_DLQ_TOPIC!, fromBeginning: true });
  await dlqConsumer.run({ eachMessage: async ({ message }) => void deadLetters.push(message) });
});
afterAll(async () => {
  await dlqConsumer?.disconnect();
  await producer.disconnect();
  await replica?.stop();
});

const header = (m: KafkaMessage, name: string): string | undefined => m.headers?.[name]?.toString();

describe('dead-letter topic', () => {
  it('dead-letters a malformed message with its bytes and reason, and keeps processing valid readings after it', async () => {
    const sensorId = uniqueName('after-poison');
    const poison = '{"sensorId": "broken", "temperature": 9'; // truncated JSON
    const now = Date.now();
    const valid = Array.from({ length: 5 }, (_, i) => ({
      key: sensorId,
      value: JSON.stringify({
        sensorId,
        ts: new Date(now - 5000 + i).toISOString(),
        temperature: 85 + i,
        humidity: 30,
        location: { lat: 1, lon: 2 },
      }),
    }));
    // Same key, hence same partition: the poison message sits before the valid ones.
    await producer.send({ topic: env.KAFKA_READINGS_TOPIC!, messages: [{ key: sensorId, value: poison }, ...valid] });

    const letter = await eventually(() => deadLetters.find((m) => m.value?.toString() === poison), Boolean, {
      what: 'dead letter',
    });
    expect(header(letter!, 'dlq.code')).toBe('MALFORMED_JSON');
    expect(header(letter!, 'dlq.reason')).toMatch(/not valid JSON/);
    expect(header(letter!, 'dlq.source.topic')).toBe(env.KAFKA_READINGS_TOPIC);
    expect(letter!.key?.toString()).toBe(sensorId);

    const store = replica.parts.store;
    await eventually(
      () => store.readings.count([sensorId]),
      (n) => n === 5,
      { what: 'valid readings stored' },
    );
    await eventually(
      () => store.alerts.count([sensorId]),
      (n) => n === 5,
      { what: 'alerts for the valid critical readings' },
    );
  });

  it.each([
    ['an unknown field', { extra: 1 }, 'UNKNOWN_FIELD'],
    ['humidity above 100 %', { humidity: 140 }, 'OUT_OF_RANGE'],
    ['a latitude out of range', { location: { lat: 91, lon: 0 } }, 'OUT_OF_RANGE'],
    ['a temperature as a string', { temperature: '81' }, 'WRONG_TYPE'],
    [
      'a timestamp a year ahead',
      { ts: new Date(Date.now() + 365 * 86400_000).toISOString() },
      'TIMESTAMP_OUT_OF_WINDOW',
    ],
  ])('dead-letters a reading with %s', async (_label, patch, code) => {
    const sensorId = uniqueName('bad');
    const value = JSON.stringify({
      sensorId,
      ts: new Date().toISOString(),
      temperature: 20,
      humidity: 30,
      location: { lat: 1, lon: 2 },
      ...patch,
    });
    await producer.send({ topic: env.KAFKA_READINGS_TOPIC!, messages: [{ key: sensorId, value }] });
    const letter = await eventually(() => deadLetters.find((m) => m.value?.toString() === value), Boolean, {
      what: `dead letter (${code})`,
    });
    expect(header(letter!, 'dlq.code')).toBe(code);
    expect(await replica.parts.store.readings.count([sensorId])).toBe(0);
  });
});
