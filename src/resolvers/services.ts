/** What resolvers depend on: a few small interfaces, handed to each resolver's constructor. */
import type { Principal } from '../auth/credentials.js';
import type { Config } from '../config.js';
import type { RateLimiter } from '../limits/rateLimiter.js';
import type { ReadGate } from '../limits/readGate.js';
import type { PipelineObserver } from '../observability/metrics.js';
import type { Tracing } from '../observability/tracing.js';
import type { AlertFeed, Feed } from '../fanout/alertFeed.js';
import type { IncidentUpdate } from '../domain/incident.js';
import type { ReadingFanout } from '../fanout/readingFanout.js';
import type { SocketBudget } from '../fanout/socketBudget.js';
import type { SensorFleet } from '../simulator/sensorFleet.js';
import type { AlertStore } from '../store/alertStore.js';
import type { HistoryReader } from '../store/historyReader.js';
import type { IncidentStore } from '../store/incidentStore.js';
import type { ReadingProducer } from '../stream/readingProducer.js';

export interface Services {
  readonly config: Config;
  /** The slices of the store the resolvers read (store/mongoStore.ts); every write goes through Kafka. */
  readonly store: {
    readonly alerts: Pick<AlertStore, 'page'>;
    readonly incidents: Pick<IncidentStore, 'get' | 'page' | 'limitsOf'>;
    readonly readings: HistoryReader;
  };
  readonly producer: ReadingProducer;
  readonly fleet: SensorFleet;
  readonly feed: AlertFeed;
  /** The incidentUpdates stream, joined like overheatAlerts. */
  readonly incidentFeed: Feed<IncidentUpdate>;
  /** Live readings from every replica's alert path (readingUpdates). */
  readonly liveReadings: Pick<ReadingFanout, 'listen'>;
  readonly rateLimiter: RateLimiter;
  /** Every history read goes through it (see limits/readGate.ts). */
  readonly readGate: ReadGate;
  /** Told of each overheat alert handed to a subscriber (delivery latency); absent, nothing is timed. */
  readonly deliveries?: Pick<PipelineObserver, 'alertDelivered'> | undefined;
  /** OpenTelemetry tracing (observability/tracing.ts); absent or off, nothing is traced. */
  readonly tracing?: Tracing | undefined;
}

/** The GraphQL context of every operation, over HTTP and WebSocket alike. */
export interface GraphQLContext {
  readonly services: Services;
  /** Who is calling; set by the front door for every operation (see http/admission.ts). */
  readonly principal?: Principal;
  /** WebSocket operations only: the memory budget of the socket the operation runs on. */
  readonly budget?: SocketBudget;
  /** HTTP operations only: the caller's W3C `traceparent` header, when it sent one. */
  readonly traceparent?: string;
}
