/**
 * The composition root of one API replica: connects each outside system, wires the pipeline, and
 * owns the lifecycle (starting -> started -> stopping -> stopped). Metrics, readiness and the
 * shutdown steps live in their own modules; this file only decides what is built, in which order,
 * and in which order it is taken down. It stays whole (about 440 lines) on purpose: the start order
 * and the shutdown order must be read side by side, since each step of one answers a step of the other.
 */
// type-graphql decorators need the metadata polyfill before any schema class loads.
import 'reflect-metadata';
import { createAuthenticator } from './auth/credentials.js';
import type { Config } from './config.js';
import { createAlertFeed, createFeed, type AlertFeed, type Feed } from './fanout/alertFeed.js';
import { connectAlertFanout, connectFanout, type AlertFanout, type Fanout } from './fanout/alertFanout.js';
import { connectReadingFanout, type ReadingFanout } from './fanout/readingFanout.js';
import type { IncidentUpdate } from './domain/incident.js';
import { incidentUpdateCodec } from './store/incidentStore.js';
import { createAdmission } from './http/admission.js';
import { startHttpServer, type HttpFrontDoor } from './http/server.js';
import { startReadingRetention, type ReadingRetention } from './jobs/readingRetention.js';
import { runShutdown, type ShutdownStep } from './lifecycle/shutdown.js';
import { connectRateLimiter, type RateLimiter } from './limits/rateLimiter.js';
import { createReadGate } from './limits/readGate.js';
import type { Logger } from './logger.js';
import { cachedReading } from './observability/cachedReading.js';
import { createMetrics } from './observability/metrics.js';
import { createReadiness, type Readiness, type ReadinessReport } from './observability/readiness.js';
import { createTracing } from './observability/tracing.js';
import type { Services } from './resolvers/services.js';
import { buildAppSchema } from './resolvers/buildSchema.js';
import { createSensorFleet, type SensorFleet } from './simulator/sensorFleet.js';
import { connectMongoStore, type MongoStore } from './store/mongoStore.js';
import { createConsumerLagReader, type ConsumerLagReader } from './stream/consumerLag.js';
import { createKafka, ensureTopics } from './stream/kafka.js';
import { createIncidentTracker, type IncidentTracker } from './stream/incidentTracker.js';
import { startAlertPath } from './stream/alertPath.js';
import type { ReadingConsumer } from './stream/groupMember.js';
import { startHistoryConsumer } from './stream/historyConsumer.js';
import { connectReadingProducer, type ReadingProducer } from './stream/readingProducer.js';

export type AppState = 'starting' | 'started' | 'stopping' | 'stopped';

export interface App {
  readonly config: Config;
  state(): AppState;
  /** The GraphQL endpoint, once started. */
  url(): string;
  readiness(): ReadinessReport;
  /** Idempotent; concurrent calls share one shutdown. */
  stop(reason?: string): Promise<void>;
}

/** The running parts, for tests and benchmarks that look inside a replica (see startAppWithParts). */
export interface AppParts {
  store: MongoStore;
  producer: ReadingProducer;
  fanout: AlertFanout;
  consumer?: ReadingConsumer;
  historyConsumer?: ReadingConsumer;
  fleet: SensorFleet;
  feed: AlertFeed;
  readingFanout: ReadingFanout;
}

/** Time the HTTP front door gets to drain (in-flight requests; WebSockets are closed with 1001). */
const HTTP_DRAIN_MS = 5000;
/** Time the simulators get to stop (they hand their sensors over through the lease). */
const SIMULATORS_STOP_MS = 3000;
/** Time the producer gets to flush what the simulators and ingestion queued. */
const PRODUCER_FLUSH_MS = 2000;
/** Time each remaining step (consumers excepted) gets. */
const STEP_MS = 2000;
/** Consumer lag read from Kafka is reused this long (Prometheus scrapes every 5 s in deploy/). */
const LAG_MAX_AGE_MS = 4000;
/** A scrape waits this long for a new lag reading, then serves the last one if younger than LAG_STALE_MS. */
const LAG_WAIT_MS = 1000;
const LAG_STALE_MS = 30_000;

export async function startApp(config: Config, logger: Logger): Promise<App> {
  return (await startAppWithParts(config, logger)).app;
}

export async function startAppWithParts(config: Config, logger: Logger): Promise<{ app: App; parts: AppParts }> {
  const log = logger.child({ module: 'app' });
  let state: AppState = 'starting';
  let store: MongoStore | undefined;
  let producer: ReadingProducer | undefined;
  let fanout: AlertFanout | undefined;
  let consumer: ReadingConsumer | undefined;
  let historyConsumer: ReadingConsumer | undefined;
  let fleet: SensorFleet | undefined;
  let feed: AlertFeed | undefined;
  let incidentFanout: Fanout<IncidentUpdate> | undefined;
  let incidentFeed: Feed<IncidentUpdate> | undefined;
  let readingFanout: ReadingFanout | undefined;
  let http: HttpFrontDoor | undefined;
  let retention: ReadingRetention | undefined;
  let rateLimiter: RateLimiter | undefined;
  let lagReader: ConsumerLagReader | undefined;
  let readiness: Readiness | undefined;
  let stopping: Promise<void> | undefined;

  const kafka = createKafka({
    brokers: config.kafka.brokers,
    clientId: `${config.kafka.clientId}-${config.replicaId}`,
    logger,
  });
  const metrics = createMetrics();
  // Off (a no-op) unless an OTLP endpoint is configured.
  const tracing = createTracing(config.tracing);
  const report = (): ReadinessReport => readiness?.report() ?? { ready: false, checks: {} };

  // Order matters: readiness is off first (state), then sources, then sinks.
  const stop = (reason = 'stop requested'): Promise<void> => {
    stopping ??= (async () => {
      state = 'stopping';
      log.info({ reason }, 'shutting down');
      const consumersMs = Math.max(STEP_MS, config.shutdownTimeoutMs / 3);
      const steps: ShutdownStep[] = [
        { name: 'simulators', timeoutMs: SIMULATORS_STOP_MS, run: () => fleet?.dispose() },
        {
          name: 'http',
          timeoutMs: HTTP_DRAIN_MS + STEP_MS,
          run: () => http?.drain(Math.min(HTTP_DRAIN_MS, config.shutdownTimeoutMs / 3)),
        },
        {
          name: 'subscriptions',
          timeoutMs: STEP_MS,
          run: () => {
            feed?.closeAll();
            incidentFeed?.closeAll();
          },
        },
        {
          name: 'consumers',
          timeoutMs: consumersMs,
          // The alert path first, on its own: its partitions wait for it to leave the group, and alerts
          // with them, while history's last write (seconds of readings) would compete for the store.
          run: async () => {
            await consumer?.dispose();
            await historyConsumer?.dispose();
          },
          // Past the limit (the store is down): stop retrying; uncommitted readings go to another replica.
          onOverrun: () => historyConsumer?.abandon(),
        },
        { name: 'retention', timeoutMs: STEP_MS, run: () => retention?.dispose() },
        { name: 'producer', timeoutMs: PRODUCER_FLUSH_MS + STEP_MS, run: () => producer?.dispose(PRODUCER_FLUSH_MS) },
        { name: 'consumer lag', timeoutMs: STEP_MS, run: () => lagReader?.dispose() },
        {
          name: 'redis',
          timeoutMs: STEP_MS,
          run: () =>
            Promise.all([
              fanout?.dispose(),
              incidentFanout?.dispose(),
              readingFanout?.dispose(),
              rateLimiter?.dispose(),
            ]),
        },
        { name: 'readiness', timeoutMs: STEP_MS, run: () => readiness?.dispose() },
        { name: 'mongodb', timeoutMs: STEP_MS, run: () => store?.dispose() },
        // Last: the spans of every step above are exported.
        { name: 'tracing', timeoutMs: STEP_MS, run: () => tracing.shutdown() },
      ];
      await runShutdown(steps, log);
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
      alertPagesDatabase: config.mongo.alertPagesDatabase,
      incidentsDatabase: config.mongo.incidentsDatabase,
      ferretSqliteDir: config.mongo.ferretSqliteDir,
      logger,
    });
    const { sensors: sensorsStore, alerts: alertsStore, incidents: incidentsStore } = store;
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
      clearedIncidents: {
        retentionMs: config.incidents.retentionMs,
        purge: (before) => incidentsStore.purgeClearedBefore(before),
      },
      logger,
    });
    await ensureTopics(
      kafka,
      [config.kafka.readingsTopic, config.kafka.deadLetterTopic].map((topic) => ({
        topic,
        partitions: config.kafka.partitions,
        replicationFactor: config.kafka.replicationFactor,
      })),
    );
    producer = await connectReadingProducer({
      kafka,
      topic: config.kafka.readingsTopic,
      bufferLimit: config.kafka.producerBufferLimit,
      logger,
      tracing,
    });
    fanout = await connectAlertFanout({
      redis: config.redis,
      channelPrefix: config.redis.channelPrefix,
      logger,
      tracing,
    });
    incidentFanout = await connectFanout({
      redis: config.redis,
      channelPrefix: config.redis.channelPrefix,
      stream: 'incidents',
      codec: incidentUpdateCodec,
      logger,
    });
    readingFanout = await connectReadingFanout({
      url: config.redis.url,
      clusterNodes: config.redis.clusterNodes,
      channelPrefix: config.redis.channelPrefix,
      logger,
    });
    const liveReadings = readingFanout;
    incidentFeed = createFeed({
      fanout: incidentFanout,
      history: store.incidentUpdates,
      progress: store.progress,
      topic: config.kafka.readingsTopic,
      maxPending: config.limits.subscriberMaxPending,
      logger,
      // An update holds the whole incident (about twice an alert).
      itemBytes: (u) => 512 + 2 * u.cursor.length,
    });
    feed = createAlertFeed({
      fanout,
      store,
      topic: config.kafka.readingsTopic,
      maxPending: config.limits.subscriberMaxPending,
      logger,
    });
    fleet = createSensorFleet({
      producer,
      store,
      replicaId: config.replicaId,
      logger,
      tracing,
      capacity: {
        maxSensors: config.limits.maxSensors,
        maxSpawnPerRequest: config.limits.maxSpawnPerRequest,
        minIntervalMs: config.limits.minIntervalMs,
        maxReplicaRate: config.limits.maxSimulatedRate,
        maxSensorsPerOwner: config.security.maxSensorsPerKey,
        maxRatePerOwner: config.security.maxSimulatedRatePerKey,
      },
    });
    const joins = config.kafka.consumers;
    const incidents: IncidentTracker | undefined = joins.alerts
      ? createIncidentTracker({
          store: store.incidents,
          topic: config.kafka.readingsTopic,
          defaults: { thresholdC: config.alerts.thresholdC, hysteresisC: config.incidents.hysteresisC },
          rule: { clearReadings: config.incidents.clearReadings, clearAfterMs: config.incidents.clearAfterMs },
          refreshMs: config.incidents.refreshMs,
        })
      : undefined;
    if (joins.alerts || joins.history) {
      const common = {
        kafka,
        topic: config.kafka.readingsTopic,
        sessionTimeoutMs: config.kafka.sessionTimeoutMs,
        limits: { ...config.readings },
        store,
        logger,
        observer: metrics.observer,
      };
      // Two groups over the same topic: the alert path never waits for reading storage.
      [consumer, historyConsumer] = await Promise.all([
        // The tracker exists exactly when this replica joins the alert path.
        incidents
          ? startAlertPath({
              ...common,
              groupId: config.kafka.groupId,
              deadLetterTopic: config.kafka.deadLetterTopic,
              fanout,
              storeIntervalMs: config.alerts.storeIntervalMs,
              incidentFanout,
              incidents,
              tracing,
              // Live readings (readingUpdates), as judged: one message per batch, none while nobody listens.
              onJudged: (partition, readings) => liveReadings.publish(partition, readings),
            })
          : undefined,
        joins.history
          ? startHistoryConsumer({
              ...common,
              groupId: `${config.kafka.groupId}.history`,
              writeIntervalMs: config.history.writeIntervalMs,
            })
          : undefined,
      ]);
    }
    rateLimiter = await connectRateLimiter({
      redis: config.redis,
      prefix: config.redis.channelPrefix,
      limits: config.security.rates,
      logger,
    });
    const readGate = createReadGate(config.security.storeReadConcurrency, config.security.storeReadQueue);
    const services: Services = {
      config,
      store,
      producer,
      fleet,
      feed,
      incidentFeed,
      liveReadings,
      rateLimiter,
      readGate,
      deliveries: metrics.observer,
      tracing,
    };
    const schema = await buildAppSchema(services);
    const ready = { store, fanout, producer, consumer, historyConsumer };
    readiness = createReadiness({
      started: () => state === 'started',
      pingStore: () => ready.store.ping(),
      redisReady: () => ready.fanout.isReady(),
      producerHealthy: () => ready.producer.isHealthy(),
      consumersHealthy:
        ready.consumer || ready.historyConsumer
          ? () => ready.consumer?.isHealthy() !== false && ready.historyConsumer?.isHealthy() !== false
          : undefined,
    });
    http = await startHttpServer({
      schema,
      context: { services },
      host: config.http.host,
      port: config.http.port,
      maxBodyBytes: config.http.maxBodyBytes,
      keepAliveMs: config.http.wsKeepAliveMs,
      connectionInitWaitMs: config.http.wsInitTimeoutMs,
      maxSocketBufferBytes: 8 * 1_048_576,
      socketBudgetBytes: config.limits.socketBudgetBytes,
      maxSubscriptionsPerSocket: config.limits.subscriptionsPerSocket,
      security: config.security,
      openAccess: config.auth.anonymousRole !== undefined,
      authenticator: createAuthenticator(config.auth),
      admission: createAdmission({
        schema,
        limits: config.security.operations,
        introspection: config.security.introspection,
        rateLimiter,
      }),
      logger,
      readiness: report,
      metrics,
    });
    // Every replica reports the groups' lag, whether or not it consumes: they are the groups' figures.
    lagReader = createConsumerLagReader({
      kafka,
      topic: config.kafka.readingsTopic,
      groups: [
        { name: 'alerts', groupId: config.kafka.groupId },
        { name: 'history', groupId: `${config.kafka.groupId}.history` },
      ],
      logger,
    });
    bindMetrics(metrics, {
      store,
      consumer,
      historyConsumer,
      fanout,
      producer,
      fleet,
      feed,
      http,
      incidents,
      readingFanout,
    });
    metrics.bind({ consumerLag: lagFromKafka(lagReader, log) });
  } catch (err) {
    log.error({ err }, 'start failed; releasing what was opened');
    await stop('start failed');
    throw err;
  }

  state = 'started';
  const app: App = {
    config,
    state: () => state,
    url: () => http.url,
    readiness: report,
    stop,
  };
  return { app, parts: { store, producer, fanout, consumer, historyConsumer, fleet, feed, readingFanout } };
}

/** Scrape-time sources of /metrics, from the parts' own counters. */
function bindMetrics(
  metrics: ReturnType<typeof createMetrics>,
  p: {
    store: MongoStore;
    consumer?: ReadingConsumer;
    historyConsumer?: ReadingConsumer;
    fanout: AlertFanout;
    producer: ReadingProducer;
    fleet: SensorFleet;
    feed: AlertFeed;
    http: HttpFrontDoor;
    incidents?: IncidentTracker;
    readingFanout: ReadingFanout;
  },
): void {
  metrics.bind({
    readingsStored: p.historyConsumer && (() => p.historyConsumer!.stats().readingsStored),
    readingsPending: p.historyConsumer && (() => p.historyConsumer!.stats().readingsPending),
    alertsRaised: p.consumer && (() => p.consumer!.stats().alertsRaised),
    deadLettered: p.consumer && (() => p.consumer!.stats().deadLettered),
    storeRetries:
      p.consumer && (() => p.consumer!.stats().storeRetries + (p.historyConsumer?.stats().storeRetries ?? 0)),
    storeClientReconnects: () => p.store.clientReconnects(),
    alertsPublished: () => p.fanout.stats().published,
    alertPublishFailures: () => p.fanout.stats().publishFailures,
    readingsProduced: () => p.producer.stats().sent,
    producerPending: () => p.producer.pending(),
    simulatedSkippedTicks: () => p.fleet.stats().skippedTicks,
    simulatedSensors: () => p.fleet.localCount(),
    subscriptions: () => p.feed.size(),
    websocketConnections: () => p.http.connections(),
    websocketsClosedOverBudget: () => p.http.socketsOverBudget(),
    alertDeliveries: () => p.feed.delivered(),
    incidentsOpen: p.incidents && (() => p.incidents!.running()),
    liveReadingBatchesPublished: () => p.readingFanout.stats().published,
    liveReadingBatchesMuted: () => p.readingFanout.stats().skipped,
    liveReadingPublishFailures: () => p.readingFanout.stats().publishFailures,
    liveReadingsReceived: () => p.readingFanout.stats().received,
  });
}

/** Consumer lag for /metrics: read at scrape time, bounded, and never failing the scrape. */
function lagFromKafka(reader: ConsumerLagReader, log: Logger) {
  let failing = false;
  return cachedReading(() => reader.read(), {
    maxAgeMs: LAG_MAX_AGE_MS,
    waitMs: LAG_WAIT_MS,
    staleAfterMs: LAG_STALE_MS,
    // Once per outage at warn: while Kafka is down every scrape would say it again.
    onError: (err) => {
      const message = (err as Error).message;
      if (failing) log.debug({ err: message }, 'consumer lag still unreadable');
      else log.warn({ err: message }, 'consumer lag unreadable; /metrics goes without it until Kafka answers');
      failing = true;
    },
    onRecovered: () => {
      failing = false;
      log.info('consumer lag readable again');
    },
  });
}
