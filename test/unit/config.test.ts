import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('configuration', () => {
  it('defaults to the local services on loopback', () => {
    const c = loadConfig({});
    expect(c.http).toMatchObject({ host: '127.0.0.1', port: 4000 });
    expect(c.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(c.kafka.readingsTopic).toBe('sensor.readings');
    expect(c.kafka.deadLetterTopic).toBe('sensor.readings.dlq');
    expect(c.mongo.url).toBe('mongodb://127.0.0.1:27017');
    expect(c.redis.url).toBe('redis://127.0.0.1:6379');
    expect(c.alerts.thresholdC).toBe(80);
  });

  it('reads every variable once and freezes the result', () => {
    const c = loadConfig({ PORT: '4100', ALERT_THRESHOLD_C: '75.5', KAFKA_BROKERS: 'k1:9092, k2:9092' });
    expect(c.http.port).toBe(4100);
    expect(c.alerts.thresholdC).toBe(75.5);
    expect(c.kafka.brokers).toEqual(['k1:9092', 'k2:9092']);
    expect(Object.isFrozen(c.kafka)).toBe(true);
  });

  it('reports every problem in one error', () => {
    let error: unknown;
    try {
      loadConfig({ PORT: 'eighty', ALERT_THRESHOLD_C: 'hot', MONGODB_URL: 'http://x', KAFKA_BROKRS: 'typo:1' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/PORT/);
    expect(problems).toMatch(/ALERT_THRESHOLD_C/);
    expect(problems).toMatch(/MONGODB_URL/);
    expect(problems).toMatch(/KAFKA_BROKRS: unknown variable/);
    expect((error as ConfigError).problems).toHaveLength(4);
  });

  it('refuses an impossible temperature range', () => {
    expect(() => loadConfig({ READING_TEMPERATURE_MIN_C: '50', READING_TEMPERATURE_MAX_C: '10' })).toThrow(/must be below/);
  });
});

describe('history configuration', () => {
  it('reads READINGS_RETENTION as a duration, 30 days by default', () => {
    expect(loadConfig({}).history.retentionMs).toBe(30 * 86_400_000);
    expect(loadConfig({ READINGS_RETENTION: '12d' }).history.retentionMs).toBe(12 * 86_400_000);
    expect(() => loadConfig({ READINGS_RETENTION: 'a month' })).toThrow(/READINGS_RETENTION: "a month" is not a duration/);
  });

  it('refuses a retention that could delete a day a valid late reading may still reach', () => {
    expect(() => loadConfig({ READINGS_RETENTION: '7d' })).toThrow(/READINGS_RETENTION .* must be at least READING_MAX_AGE_MS \+ 1 day/);
    expect(loadConfig({ READINGS_RETENTION: '2d', READING_MAX_AGE_MS: '3600000' }).history.retentionMs).toBe(2 * 86_400_000);
  });

  it('refuses misspelt READINGS_ variables', () => {
    expect(() => loadConfig({ READINGS_RETENTON: '30d' })).toThrow(/READINGS_RETENTON: unknown variable/);
  });
});
