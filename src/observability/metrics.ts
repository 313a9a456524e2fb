/**
 * Prometheus metrics of one replica (prom-client), served at /metrics; the Grafana dashboard in
 * deploy/grafana reads them. Three kinds:
 * - Node's default process metrics, prefixed `iot_` (`iot_process_resident_memory_bytes`, ...);
 * - counters and gauges read from the parts' own stats at scrape time (`sources`), consumer lag
 *   included (read from Kafka, bounded by observability/cachedReading.ts);
 * - histograms observed as things happen: alert latency, delivery latency, consumer batch size,
 *   store write time.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { kindHistogram } from './kindHistogram.js';

/** What the pipeline reports while it runs (handed to the parts that observe). */
export interface PipelineObserver {
  /** From a critical reading's timestamp to its alert being published. */
  alertPublished(latencyMs: number): void;
  /** Messages in one consumed Kafka batch. */
  batchConsumed(role: 'alerts' | 'history', messages: number): void;
  /** One store write: what was written, and how long it took. */
  storeWrite(what: 'alerts' | 'incident updates' | 'incidents' | 'readings', ms: number): void;
  /** Where a batch with alerts spent its time on the alert path (see AlertStage). */
  alertStage(stage: AlertStage, ms: number): void;
  /** From a critical reading's timestamp to its alert handed to a subscriber (observability/deliveryLatency.ts). */
  alertDelivered(kind: SubscriptionKind, latencyMs: number): void;
}

/**
 * What an overheatAlerts subscription listens to: `all` sensors, `filtered` by the sensorIds it
 * named, or `scoped` by its credential (a device or scoped viewer sees its own sensors only).
 */
export type SubscriptionKind = 'all' | 'filtered' | 'scoped';

/** Messages of one partition a consumer group has not committed yet. */
export interface LagFigure {
  readonly group: string;
  readonly partition: number;
  readonly messages: number;
}

/**
 * The alert path of one batch, in order: `queued` from its oldest critical reading's timestamp to
 * the batch reaching the consumer (Kafka, and the wait for fetching); `judge` the thresholds and
 * incidents computed and the surely new alerts published; `backlog` the wait behind the store writes
 * of earlier batches; `store` alerts and their pages, incidents and their updates stored (with the
 * batches queued beside it); `watermark` the partition watermark moved, beside the tracker's state;
 * `publish` the alerts held for after storing, and the progress notice, handed to Redis.
 */
export type AlertStage = 'queued' | 'judge' | 'backlog' | 'store' | 'watermark' | 'publish';

/** Values read at scrape time; each may be absent (API-only replica, part not started yet). */
export interface MetricSources {
  readingsStored?: () => number;
  readingsPending?: () => number;
  alertsRaised?: () => number;
  deadLettered?: () => number;
  storeRetries?: () => number;
  storeClientReconnects?: () => number;
  alertsPublished?: () => number;
  alertPublishFailures?: () => number;
  readingsProduced?: () => number;
  producerPending?: () => number;
  simulatedSkippedTicks?: () => number;
  simulatedSensors?: () => number;
  subscriptions?: () => number;
  websocketConnections?: () => number;
  websocketsClosedOverBudget?: () => number;
  alertDeliveries?: () => number;
  /** Incidents not cleared on the partitions this replica's alert path holds. */
  incidentsOpen?: () => number;
  liveReadingBatchesPublished?: () => number;
  liveReadingBatchesMuted?: () => number;
  liveReadingPublishFailures?: () => number;
  liveReadingsReceived?: () => number;
  /** Undefined when the figures cannot be had (Kafka unreachable, or slower than a scrape may wait). */
  consumerLag?: () => Promise<readonly LagFigure[] | undefined>;
}

export interface Metrics {
  readonly observer: PipelineObserver;
  /** Adds (or replaces) scrape-time sources as the parts start. */
  bind(sources: MetricSources): void;
  render(): Promise<string>;
  readonly contentType: string;
}

export const NO_OBSERVER: PipelineObserver = {
  alertPublished: () => undefined,
  batchConsumed: () => undefined,
  storeWrite: () => undefined,
  alertStage: () => undefined,
  alertDelivered: () => undefined,
};

let heapAfterLastGc = 0;
let rssAfterLastGc = 0;
let forcedGcs = 0;
/**
 * Records the heap in use right after a forced full collection (read in the same tick as the
 * collection: a /metrics scrape later would also count what was allocated in between), and the
 * resident set read once the freed pages were given back (src/main.ts).
 */
export function noteMemoryAfterGc(memory: { heapUsed: number; rss: number }): void {
  heapAfterLastGc = memory.heapUsed;
  rssAfterLastGc = memory.rss;
  forcedGcs++;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'iot_' });
  const sources: MetricSources = {};

  const fromSource = (
    type: 'counter' | 'gauge',
    name: string,
    help: string,
    key: Exclude<keyof MetricSources, 'consumerLag'>,
  ): void => {
    const read = (): number | undefined => sources[key]?.();
    if (type === 'counter') {
      new Counter({
        name: `iot_${name}`,
        help,
        registers: [registry],
        collect() {
          const v = read();
          this.reset();
          if (v !== undefined) this.inc(v);
        },
      });
    } else {
      new Gauge({
        name: `iot_${name}`,
        help,
        registers: [registry],
        collect() {
          const v = read();
          if (v !== undefined) this.set(v);
        },
      });
    }
  };
  fromSource('counter', 'readings_stored_total', 'Readings newly stored by this replica.', 'readingsStored');
  fromSource('gauge', 'readings_pending', 'Valid readings consumed but not yet stored.', 'readingsPending');
  fromSource('counter', 'alerts_raised_total', 'Overheat alerts stored by this replica.', 'alertsRaised');
  fromSource('counter', 'dead_lettered_total', 'Messages sent to the dead-letter topic.', 'deadLettered');
  fromSource('counter', 'store_retries_total', 'Durable steps retried because the store failed.', 'storeRetries');
  fromSource(
    'counter',
    'store_client_reconnects_total',
    'Times the store client was found stuck while the server answered, and connected again.',
    'storeClientReconnects',
  );
  fromSource('counter', 'alerts_published_total', 'Alerts published on Redis.', 'alertsPublished');
  fromSource(
    'counter',
    'alert_publish_failures_total',
    'Alerts not published on Redis (recovered through cursors).',
    'alertPublishFailures',
  );
  fromSource(
    'counter',
    'readings_produced_total',
    'Readings acknowledged by Kafka from this replica.',
    'readingsProduced',
  );
  fromSource('gauge', 'producer_pending', 'Readings waiting for Kafka.', 'producerPending');
  fromSource(
    'counter',
    'simulated_skipped_ticks_total',
    'Simulator ticks skipped because the producer queue was full.',
    'simulatedSkippedTicks',
  );
  fromSource('gauge', 'simulated_sensors', 'Sensors simulated by this replica.', 'simulatedSensors');
  fromSource('gauge', 'subscriptions', 'Open overheatAlerts subscriptions.', 'subscriptions');
  fromSource('gauge', 'websocket_connections', 'Open WebSocket connections.', 'websocketConnections');
  fromSource(
    'counter',
    'websockets_closed_over_budget_total',
    'WebSockets closed (4008) because alerts queued for them exceeded LIMIT_SOCKET_BUDGET_BYTES.',
    'websocketsClosedOverBudget',
  );
  fromSource('counter', 'alert_deliveries_total', 'Alerts handed to subscribers on this replica.', 'alertDeliveries');
  fromSource(
    'gauge',
    'incidents_open',
    "Incidents open or acknowledged, not cleared, on the partitions this replica's alert path holds (sum over replicas for the fleet).",
    'incidentsOpen',
  );
  fromSource(
    'counter',
    'live_reading_batches_published_total',
    'Batches of judged readings published for readingUpdates (one PUBLISH each).',
    'liveReadingBatchesPublished',
  );
  fromSource(
    'counter',
    'live_reading_batches_muted_total',
    'Batches of judged readings not published: their partition reached nobody within the last second.',
    'liveReadingBatchesMuted',
  );
  fromSource(
    'counter',
    'live_reading_publish_failures_total',
    'Batches of live readings Redis refused (dropped: readingUpdates is at most once).',
    'liveReadingPublishFailures',
  );
  fromSource(
    'counter',
    'live_readings_received_total',
    'Live readings heard from Redis while this replica had readingUpdates subscribers.',
    'liveReadingsReceived',
  );
  new Gauge({
    name: 'iot_consumer_lag_messages',
    help: 'Messages of a readings partition not yet committed by a consumer group (alerts: KAFKA_GROUP_ID, history: <KAFKA_GROUP_ID>.history). Every replica reports the same figures: take max() by group and partition.',
    labelNames: ['group', 'partition'] as const,
    registers: [registry],
    async collect() {
      const figures = await sources.consumerLag?.();
      // Partitions and groups come and go with the figures: nothing is left from an older read.
      this.reset();
      for (const f of figures ?? []) this.set({ group: f.group, partition: String(f.partition) }, f.messages);
    },
  });
  // The V8 heap in use, under the name the benchmark and older dashboards read.
  new Gauge({
    name: 'iot_process_heap_used_bytes',
    help: 'V8 heap in use.',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage().heapUsed);
    },
  });

  new Gauge({
    name: 'iot_process_heap_after_gc_bytes',
    help: 'V8 heap in use right after the last forced full collection (SIGUSR2 with --expose-gc, benchmarks only; 0 before one).',
    registers: [registry],
    collect() {
      this.set(heapAfterLastGc);
    },
  });
  new Gauge({
    name: 'iot_process_rss_after_gc_bytes',
    help: 'Resident set right after the last forced full collection (benchmarks only; 0 before one).',
    registers: [registry],
    collect() {
      this.set(rssAfterLastGc);
    },
  });
  new Gauge({
    name: 'iot_process_forced_gcs',
    help: 'Forced full collections run so far (benchmarks only): a reader waits for it to move.',
    registers: [registry],
    collect() {
      this.set(forcedGcs);
    },
  });

  const alertLatency = new Histogram({
    name: 'iot_alert_latency_seconds',
    help: "From a critical reading's timestamp to its alert being published on Redis.",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const batchSize = new Histogram({
    name: 'iot_consumer_batch_messages',
    help: 'Messages per consumed Kafka batch.',
    labelNames: ['group'] as const,
    buckets: [1, 10, 50, 100, 500, 1000, 5000],
    registers: [registry],
  });
  const storeWrite = new Histogram({
    name: 'iot_store_write_seconds',
    help: 'Time of one store write: a batch of alerts with their pages, its incident updates, its incidents (with the updates beside them), or one bulk write of reading buckets.',
    labelNames: ['what'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });

  // Observed per delivery, to every subscriber: a histogram cheap to observe (kindHistogram.ts).
  const alertDelivery = kindHistogram({
    name: 'iot_alert_delivery_seconds',
    help: "From a critical reading's timestamp to its alert handed to a subscriber on this replica, by subscription kind (all, filtered, scoped); alerts detected before the subscription began (replayed history) are not counted.",
    label: 'kind',
    values: ['all', 'filtered', 'scoped'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registry,
  });
  const deliveryByKind: Record<SubscriptionKind, (seconds: number) => void> = {
    all: alertDelivery.of('all'),
    filtered: alertDelivery.of('filtered'),
    scoped: alertDelivery.of('scoped'),
  };

  const alertStage = new Histogram({
    name: 'iot_alert_stage_seconds',
    help: 'Time a batch with alerts spent in each stage of the alert path (queued, judge, store, watermark, publish).',
    labelNames: ['stage'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });

  return {
    observer: {
      alertPublished: (ms) => alertLatency.observe(Math.max(0, ms) / 1000),
      batchConsumed: (role, messages) => batchSize.observe({ group: role }, messages),
      storeWrite: (what, ms) => storeWrite.observe({ what }, ms / 1000),
      alertStage: (stage, ms) => alertStage.observe({ stage }, Math.max(0, ms) / 1000),
      alertDelivered: (kind, ms) => deliveryByKind[kind](Math.max(0, ms) / 1000),
    },
    bind(more) {
      Object.assign(sources, more);
    },
    render: () => registry.metrics(),
    contentType: registry.contentType,
  };
}
