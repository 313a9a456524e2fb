import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { decodeBatch } from '../../src/stream/batchIntake.js';
import { encodeCommand } from '../../src/domain/sensorCommand.js';

const limits = {
  temperatureMinC: -60,
  temperatureMaxC: 200,
  maxAgeMs: 7 * 86400_000,
  maxFutureMs: 300_000,
  maxMessageBytes: 4096,
};
const now = Date.parse('2026-11-28T07:00:00Z');
const reading = (sensorId: string, temperature: number) => ({
  sensorId,
  ts: '2026-11-28T06:59:00.000Z',
  temperature,
  humidity: 40,
  location: { lat: 52.5, lon: 13.4 },
});

/** A message as kafkajs hands it over, at `offset`. */
const message = (offset: number, key: string, value: string, headers: Record<string, string> = {}): KafkaMessage => ({
  key: Buffer.from(key),
  value: Buffer.from(value),
  timestamp: String(now),
  attributes: 0,
  offset: String(offset),
  headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v)])),
});

const threshold = encodeCommand({
  kind: 'threshold',
  sensorId: 'press-7',
  thresholdC: 90,
  hysteresisC: 2,
  issuedBy: 'operator',
  issuedAt: new Date(now - 1000),
});

describe('a batch as both consumers take it in', () => {
  it('keeps readings and commands in offset order, and the valid readings apart', () => {
    const batch = [
      message(10, 'press-7', JSON.stringify(reading('press-7', 81.5))),
      message(11, threshold.key, threshold.value, threshold.headers),
      message(12, 'press-8', JSON.stringify(reading('press-8', 95))),
    ];
    const { items, readings, rejected } = decodeBatch(batch, limits, now);
    expect(items.map((i) => [i.offset, 'reading' in i ? 'reading' : 'command'])).toEqual([
      [10, 'reading'],
      [11, 'command'],
      [12, 'reading'],
    ]);
    expect(readings.map((r) => [r.sensorId, r.temperature])).toEqual([
      ['press-7', 81.5],
      ['press-8', 95],
    ]);
    expect(rejected).toEqual([]);
  });

  it('rejects a bad reading with its reason and keeps the readings after it', () => {
    const bad = message(20, 'press-7', '{"sensorId":');
    const { items, readings, rejected } = decodeBatch(
      [bad, message(21, 'press-7', JSON.stringify(reading('press-7', 70)))],
      limits,
      now,
    );
    expect(rejected.map((r) => [r.message, r.rejection.code])).toEqual([[bad, 'MALFORMED_JSON']]);
    expect(items.map((i) => i.offset)).toEqual([21]);
    expect(readings).toHaveLength(1);
  });

  it('rejects a command it cannot decode as BAD_COMMAND, naming the field', () => {
    const unknown = message(30, 'press-7', '{}', { 'iot-command': 'reboot' });
    const broken = message(31, threshold.key, '{"sensorId":"press-7"}', threshold.headers);
    const { items, readings, rejected } = decodeBatch([unknown, broken], limits, now);
    expect(items).toEqual([]);
    expect(readings).toEqual([]);
    expect(rejected.map((r) => [r.message.offset, r.rejection.code])).toEqual([
      ['30', 'BAD_COMMAND'],
      ['31', 'BAD_COMMAND'],
    ]);
    expect(rejected[0]!.rejection.field).toBe('iot-command');
  });
});
