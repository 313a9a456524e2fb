/**
 * The composition root of one API replica: connects each outside system, wires the pipeline,
 * and owns the lifecycle (starting -> started -> stopping -> stopped) with an ordered shutdown.
 */
// type-graphql decorators need the metadata polyfill before any schema class loads.
import 'reflect-metadata';
import { createAuthenticator } from './auth/credentials.js';
import type { Config } from './config.js';
import { createAdmission } from './http/admission.js';
import { connectRateLimiter, type RateLimiter } from './limits/rateLimiter.js';
import { createReadGate } from './limits/readGate.js';
import { createAlertFeed, type AlertFeed } from './fanout/alertFeed.js';
import { connectAlertFanout, type AlertFanout } from './fanout/alertFanout.js';
import { startHttpServer, type HttpFrontDoor, type ReadinessReport } from './http/server.js';
import type { Logger } from './logger.js';
import type { Services } from './resolvers/services.js';
import { buildAppSchema } from './schema/buildSchema.js';
import { startReadingRetention, type ReadingRetention } from './jobs/readingRetention.js';
import { createSensorFleet, type SensorFleet } from './simulator/sensorFleet.js';
import { connectMongoStore, type MongoStore } from './store/mongoStore.js';
import { createKafka, ensureTopics } from './stream/kafka.js';
import { connectReadingProducer, type ReadingProducer } from './stream/readingProducer.js';
import { startReadingConsumer, type ReadingConsumer } from './stream/readingConsumer.js';

export type AppState = 'idle' | 'starting' | 'started' | 'stopping' | 'stopped';

export interface App {
  readonly config: Config;
  state(): AppState;
  /** The GraphQL endpoint, once started. */
  url(): string;
  readiness(): ReadinessReport;
  /** Idempotent; concurrent calls share one shutdown. */
  stop(reason?: string): Promise<void>;
  /** For tests and benchmarks: the live parts. */
  readonly parts: () => Readonly<{
    store: MongoStore;
    producer: ReadingProducer;
    fanout: AlertFanout;
    consumer?: ReadingConsumer;
    historyConsumer?: ReadingConsumer;
    fleet: SensorFleet;
    feed: AlertFeed;
  }>;
}

export async function startApp(config: Config, logger: Logger): Promise<App> {
  const log = logger.child({ module: 'app' });
  let state: AppState = 'starting';
  let store: MongoStore | undefined;
  let producer: ReadingProducer | undefined;
  let fanout: AlertFanout | undefined;
  let consumer: ReadingConsumer | undefined;
  let historyConsumer: ReadingConsumer | undefined;
  let fleet: SensorFleet | undefined;
  let feed: AlertFeed | undefined;
  let http: HttpFrontDoor | undefined;
  let retention: ReadingRetention | undefined;
  let rateLimiter: RateLimiter | undefined;
  let stopping: Promise<void> | undefined;
  let mongoUp = true;

  const kafka = createKafka({
    brokers: config.kafka.brokers,
    clientId: `${config.kafka.clientId}-${config.replicaId}`,
    logger,
  });

  const readiness = (): ReadinessReport => {
    const checks: ReadinessReport['checks'] = {
      mongodb: mongoUp ? 'up' : 'down',
      redis: fanout?.isReady() ? 'up' : 'degraded',
      kafkaProducer: producer?.isHealthy() ? 'up' : 'down',
      kafkaConsumer: consumer
        ? consumer.isHealthy() && historyConsumer?.isHealthy() !== false
          ? 'up'
          : 'down'
        : 'disabled',
    };
    // Redis down degrades live delivery only (subscribers catch up later): still ready.
    const ready =
      state === 'started' &&
      checks.mongodb === 'up' &&
      checks.kafkaProducer === 'up' &&
      checks.kafkaConsumer !== 'down';
    return { ready, checks };
  };

  const metrics = (): string => {
    const alertPath = consumer?.stats();
    const history = historyConsumer?.stats();
    const c = alertPath && {
      ...alertPath,
      readingsStored: history?.readingsStored ?? 0,
      readingsPending: history?.readingsPending ?? 0,
      storeRetries: alertPath.storeRetries + (history?.storeRetries ?? 0),
    };
    const f = fanout?.stats();
    const p = producer?.stats();
    const s = fleet?.stats();
    const lines: string[] = [];
    const gauge = (name: string, help: string, value: number | undefined, type = 'counter'): void => {
      if (value === undefined) return;
      lines.push(`# HELP iot_${name} ${help}`, `# TYPE iot_${name} ${type}`, `iot_${name} ${value}`);
    };
    gauge('readings_stored_total', 'Readings newly stored by this replica.', c?.readingsStored);
    gauge('alerts_raised_total', 'Overheat alerts stored by this replica.', c?.alertsRaised);
    gauge('dead_lettered_total', 'Messages sent to the dead-letter topic.', c?.deadLettered);
    gauge('readings_pending', 'Valid readings consumed but not yet stored.', c?.readingsPending, 'gauge');
    gauge('store_retries_total', 'Durable steps retried because the store failed.', c?.storeRetries);
    gauge('alerts_published_total', 'Alerts published on Redis.', f?.published);
    gauge(
      'alert_publish_failures_total',
      'Alerts not published on Redis (recovered through cursors).',
      f?.publishFailures,
    );
    gauge('readings_produced_total', 'Readings acknowledged by Kafka from this replica.', p?.sent);
    gauge('producer_pending', 'Readings waiting for Kafka.', producer?.pending(), 'gauge');
    gauge(
      'simulated_skipped_ticks_total',
      'Simulator ticks skipped because the producer queue was full.',
      s?.skippedTicks,
    );
    gauge('simulated_sensors', 'Sensors simulated by this replica.', fleet?.localCount(), 'gauge');
    gauge('subscriptions', 'Open overheatAlerts subscriptions.', feed?.size(), 'gauge');
    gauge('websocket_connections', 'Open WebSocket connections.', http?.connections(), 'gauge');
    gauge(
      'websockets_closed_over_budget_total',
      'WebSockets closed (4008) because alerts queued for them exceeded LIMIT_SOCKET_BUDGET_BYTES.',
      http?.socketsOverBudget(),
    );
    const memory = process.memoryUsage();
    gauge('process_resident_memory_bytes', 'Resident set size of this replica.', memory.rss, 'gauge');
    gauge('process_heap_used_bytes', 'V8 heap in use.', memory.heapUsed, 'gauge');
    gauge('alert_deliveries_total', 'Alerts handed to subscribers on this replica.', feed?.delivered(), 'counter');
    return `${lines.join('\n')}\n`;
  };

  const stop = (reason = 'stop requested'): Promise<void> => {
    stopping ??= (async () => {
      state = 'stopping';
      log.info({ reason }, 'shutting down');
      const step = async (name: string, fn: () => Promise<void> | void): Promise<void> => {
        try {
          await fn();
        } catch (err) {
          log.warn({ err: (err as Error).message, step: name }, 'shutdown step failed');
        }
      };
      // Order matters: readiness is already off (state), then sources, then sinks.
      await step('simulators', () => fleet?.dispose());
      await step('http', () => http?.drain(Math.min(5000, config.shutdownTimeoutMs / 3)));
      await step('subscriptions', () => feed?.closeAll());
      await step('consumer', () =>
        Promise.all([consumer?.dispose(), historyConsumer?.dispose()]).then(() => undefined),
      );
      await step('retention', () => retention?.dispose());
      await step('producer', () => producer?.dispose(2000));
      await step('redis', () => Promise.all([fanout?.dispose(), rateLimiter?.dispose()]).then(() => undefined));
      await step('mongodb', () => store?.dispose());
      state = 'stopped';
      log.info('stopped');
    })();
    return stopping;
  };

  try {
    store = await connectMongoStore({
      url: config.mongo.url,
      database: config.mongo.database,
      alertsDatabase: config.mongo.alertsDatabase,
      ferretSqliteDir: config.mongo.ferretSqliteDir,
      logger,
    });
    const sensorsStore = store.sensors;
    const alertsStore = store.alerts;
    retention = startReadingRetention({
      history: store.readings,
      retentionMs: config.history.retentionMs,
      checkEveryMs: config.history.retentionCheckMs,
      stoppedSensors: {
        retentionMs: config.history.stoppedSensorsRetentionMs,
        purge: (before) => sensorsStore.purgeStopped(before),
      },
      alerts: {
        retentionMs: config.alerts.retentionMs,
        purge: (before) => alertsStore.purgeBefore(config.kafka.readingsTopic, before),
      },
      logger,
    });
    await ensureTopics(kafka, [
      {
        topic: config.kafka.readingsTopic,
        partitions: config.kafka.partitions,
        replicationFactor: config.kafka.replicationFactor,
      },
      {
        topic: config.kafka.deadLetterTopic,
        partitions: config.kafka.partitions,
        replicationFactor: config.kafka.replicationFactor,
      },
    ]);
    producer = await connectReadingProducer({
      kafka,
      topic: config.kafka.readingsTopic,
      bufferLimit: config.kafka.producerBufferLimit,
      logger,
    });
    fanout = await connectAlertFanout({ url: config.redis.url, channelPrefix: config.redis.channelPrefix, logger });
    feed = createAlertFeed({
      fanout,
      store,
      topic: config.kafka.readingsTopic,
      maxPending: config.limits.subscriberMaxPending,
      logger,
    });
    fleet = createSensorFleet({ producer, store, replicaId: config.replicaId, logger });
    if (config.kafka.consumerEnabled) {
      const common = {
        kafka,
        topic: config.kafka.readingsTopic,
        deadLetterTopic: config.kafka.deadLetterTopic,
        thresholdC: config.alerts.thresholdC,
        sessionTimeoutMs: config.kafka.sessionTimeoutMs,
        limits: { ...config.readings },
        store,
        fanout,
        logger,
      };
      // Two groups over the same topic: the alert path never waits for reading storage.
      [consumer, historyConsumer] = await Promise.all([
        startReadingConsumer({ ...common, role: 'alerts', groupId: config.kafka.groupId }),
        startReadingConsumer({ ...common, role: 'history', groupId: `${config.kafka.groupId}.history` }),
      ]);
    }
    rateLimiter = await connectRateLimiter({
      url: config.redis.url,
      prefix: config.redis.channelPrefix,
      limits: config.security.rates,
      logger,
    });
    const readGate = createReadGate(config.security.storeReadConcurrency, config.security.storeReadQueue);
    const services: Services = { config, store, producer, fleet, feed, rateLimiter, readGate };
    const schema = await buildAppSchema(services);
    http = await startHttpServer({
      schema,
      context: { services },
      host: config.http.host,
      port: config.http.port,
      maxBodyBytes: config.http.maxBodyBytes,
      maxSocketBufferBytes: 8 * 1_048_576,
      socketBudgetBytes: config.limits.socketBudgetBytes,
      maxSubscriptionsPerSocket: config.limits.subscriptionsPerSocket,
      production: config.nodeEnv === 'production',
      security: config.security,
      authenticator: createAuthenticator(config.auth),
      admission: createAdmission({
        schema,
        limits: config.security.operations,
        introspection: config.security.introspection,
        rateLimiter,
      }),
      logger,
      readiness,
      metrics,
    });
  } catch (err) {
    log.error({ err }, 'start failed; releasing what was opened');
    await stop('start failed');
    throw err;
  }

  // Store liveness for readiness, sampled rather than checked per probe.
  const storeProbe = setInterval(() => {
    store?.ping().then(
      () => (mongoUp = true),
      () => (mongoUp = false),
    );
  }, 2000);
  storeProbe.unref();
  void stopping?.then(() => clearInterval(storeProbe));

  state = 'started';
  const started = {
    store: store,
    producer: producer,
    fanout: fanout,
    consumer,
    historyConsumer,
    fleet: fleet,
    feed: feed,
  };
  return {
    config,
    state: () => state,
    url: () => http.url,
    readiness,
    stop: async (reason) => {
      clearInterval(storeProbe);
      await stop(reason);
    },
    parts: () => started,
  };
}
