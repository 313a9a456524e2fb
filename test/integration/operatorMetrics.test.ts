/**
 * What operators see in /metrics, against the real Kafka, FerretDB and Redis: consumer lag per group
 * and partition (a topic of its own, offsets committed by hand so the expected figures are known),
 * a scrape that stays whole while Kafka cannot be reached, and on a running replica the lag of its
 * two groups, the open incidents and the delivery latency of each subscription kind.
 */
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestReadingsDocument } from '../../client/index.js';
import { createLogger } from '../../src/logger.js';
import { cachedReading } from '../../src/observability/cachedReading.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createConsumerLagReader, type ConsumerLagReader } from '../../src/stream/consumerLag.js';
import { createKafka, ensureTopics } from '../../src/stream/kafka.js';
import { collectAlerts } from '../support/alertCollector.js';
import { alertsCaughtUp, historyCaughtUp } from '../support/consumerLag.js';
import { isolatedEnv, uniqueName } from '../support/env.js';
import { codesOf, wsGraphQL } from '../support/graphqlCalls.js';
import { startReplica, type InProcessReplica } from '../support/pipeline.js';
import { recentReading } from '../support/readings.js';
import { eventually } from '../support/wait.js';

const logger = createLogger('silent');

/** The samples of one metric in a Prometheus text exposition, by their labels as written. */
function samples(text: string, name: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (m) found.set(m[1] ?? '', Number(m[2]));
  }
  return found;
}

describe('consumer lag read from Kafka', () => {
  const topic = `${uniqueName('lag')}.readings`;
  const groupId = `${uniqueName('lag')}-group`;
  const kafka = createKafka({ brokers: ['127.0.0.1:9092'], clientId: 'lag-test', logger });
  const admin = kafka.admin();
  let reader: ConsumerLagReader;

  beforeAll(async () => {
    await ensureTopics(kafka, [{ topic, partitions: 2, replicationFactor: 1 }]);
    const producer = kafka.producer();
    await producer.connect();
    const messages = (n: number, partition: number) =>
      Array.from({ length: n }, (_, i) => ({ partition, key: `s${i}`, value: `m${i}` }));
    await producer.send({ topic, messages: [...messages(10, 0), ...messages(4, 1)] });
    await producer.disconnect();
    await admin.connect();
    reader = createConsumerLagReader({
      kafka,
      topic,
      groups: [
        { name: 'alerts', groupId },
        { name: 'history', groupId: `${groupId}.history` },
      ],
      logger,
    });
  });
  afterAll(async () => {
    await reader?.dispose();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  });

  it('reports per group and partition the messages written and not yet committed', async () => {
    // The alert group committed 6 of partition 0's 10 messages; the history group nothing yet.
    await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '6' }] });
    const lag = await reader.read();
    expect([...lag].sort((x, y) => x.group.localeCompare(y.group) || x.partition - y.partition)).toEqual([
      { group: 'alerts', partition: 0, messages: 4 },
      { group: 'alerts', partition: 1, messages: 4 },
      { group: 'history', partition: 0, messages: 10 },
      { group: 'history', partition: 1, messages: 4 },
    ]);
  });

  it('exposes the figures as iot_consumer_lag_messages{group,partition}, following the commits', async () => {
    const metrics = createMetrics();
    metrics.bind({
      consumerLag: cachedReading(() => reader.read(), {
        maxAgeMs: 0,
        waitMs: 10_000,
        staleAfterMs: 10_000,
        onError: (err) => {
          throw err;
        },
      }),
    });
    await admin.setOffsets({
      groupId: `${groupId}.history`,
      topic,
      partitions: [
        { partition: 0, offset: '10' },
        { partition: 1, offset: '1' },
      ],
    });
    expect(Object.fromEntries(samples(await metrics.render(), 'iot_consumer_lag_messages'))).toEqual({
      '{group="alerts",partition="0"}': 4,
      '{group="alerts",partition="1"}': 4,
      '{group="history",partition="0"}': 0,
      '{group="history",partition="1"}': 3,
    });
  });

  it('leaves the lag out of a scrape that still answers while Kafka cannot be reached', async () => {
    // Nothing listens on port 1 of loopback: every connection is refused.
    const unreachable = new Kafka({ clientId: 'lag-test-down', brokers: ['127.0.0.1:1'], logLevel: logLevel.NOTHING });
    const down = createConsumerLagReader({ kafka: unreachable, topic, groups: [{ name: 'alerts', groupId }], logger });
    let failed!: (err: unknown) => void;
    const failure = new Promise<unknown>((resolve) => (failed = resolve));
    const metrics = createMetrics();
    metrics.bind({
      consumerLag: cachedReading(() => down.read(), {
        maxAgeMs: 4000,
        waitMs: 200,
        staleAfterMs: 30_000,
        onError: failed,
      }),
    });
    const text = await metrics.render();
    expect(samples(text, 'iot_consumer_lag_messages').size).toBe(0);
    expect(text).toContain('# TYPE iot_consumer_lag_messages gauge');
    expect(text).toMatch(/^iot_process_heap_used_bytes \d+/m);
    expect(String(await failure)).toMatch(/ECONNREFUSED|Connection/i);
    expect(samples(await metrics.render(), 'iot_consumer_lag_messages').size).toBe(0);
    await down.dispose();
  });
});

describe("a replica's /metrics", () => {
  const hot = uniqueName('hot');
  const VIEWER_KEY = 'scoped-viewer-secret-0001';
  const env = isolatedEnv('operator-metrics', { API_KEYS: `viewer:${VIEWER_KEY}:${hot}` });
  let replica: InProcessReplica;
  const scrape = async (): Promise<string> => (await fetch(replica.app.url().replace('/graphql', '/metrics'))).text();

  beforeAll(async () => {
    replica = await startReplica(env);
  });
  afterAll(async () => {
    await replica?.stop();
  });

  it('times deliveries per subscription kind, counts the open incident and the live readings published, and shows both groups caught up', async () => {
    const all = collectAlerts(replica.client);
    const filtered = collectAlerts(replica.client, { sensorIds: [hot] });
    // A fragment keeps this one off the fast path: the regular graphql-js path is timed too.
    const scoped = wsGraphQL(
      replica.app.url(),
      {
        query: 'subscription { overheatAlerts { ...A } } fragment A on OverheatAlert { id sensorId }',
      },
      { authorization: `Bearer ${VIEWER_KEY}` },
      (o) => o.results.length > 0,
      60_000,
    );
    // Subscriptions are open once the feed counts them (one per subscriber).
    await eventually(scrape, (t) => samples(t, 'iot_subscriptions').get('') === 3, { what: 'three subscriptions' });

    await replica.client.request(IngestReadingsDocument, { readings: [recentReading(hot, 97)] });
    await eventually(
      () => Math.min(all.alerts.length, filtered.alerts.length),
      (n) => n > 0,
      { what: 'the alert at both client subscribers', timeoutMs: 60_000 },
    );
    const scopedOutcome = await scoped;
    expect(codesOf(scopedOutcome)).toEqual([]);
    expect(scopedOutcome.results[0]?.data).toMatchObject({ overheatAlerts: { sensorId: hot } });
    all.stop();
    filtered.stop();

    const delivered = samples(await scrape(), 'iot_alert_delivery_seconds_count');
    for (const kind of ['all', 'filtered', 'scoped'])
      expect(delivered.get(`{kind="${kind}"}`), kind).toBeGreaterThanOrEqual(1);
    // The judged reading went to the live readings' fan-out too: published once, then muted while
    // nobody listens to readingUpdates.
    expect(samples(await scrape(), 'iot_live_reading_batches_published_total').get('')).toBeGreaterThanOrEqual(1);
    await eventually(
      async () => samples(await scrape(), 'iot_incidents_open').get(''),
      (n) => n === 1,
      { what: 'one open incident' },
    );

    await Promise.all([alertsCaughtUp(env), historyCaughtUp(env)]);
    const lag = await eventually(
      async () => samples(await scrape(), 'iot_consumer_lag_messages'),
      (s) => s.size === 6 && [...s.values()].every((v) => v === 0),
      { what: 'both groups caught up in the lag figures' },
    );
    expect([...lag.keys()].sort()).toEqual(
      ['alerts', 'history'].flatMap((g) => [0, 1, 2].map((p) => `{group="${g}",partition="${p}"}`)),
    );
  });
});
