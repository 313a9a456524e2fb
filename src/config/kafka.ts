/** Kafka: the brokers, the topics, the consumer groups this replica joins, the producer's buffer. */
import { bool, HOST_PORT, int, list, NAME, oneOf, text, TOPIC, type Declarations, type Parsed } from './values.js';

export const KAFKA_VARIABLES = {
  KAFKA_BROKERS: { schema: list(['127.0.0.1:9092'], HOST_PORT), doc: 'comma-separated host:port' },
  KAFKA_CLIENT_ID: { schema: text('iot-realtime-pipeline', NAME), doc: 'Kafka client id prefix' },
  KAFKA_READINGS_TOPIC: { schema: text('sensor.readings', TOPIC), doc: 'readings topic' },
  KAFKA_DLQ_TOPIC: { schema: text('sensor.readings.dlq', TOPIC), doc: 'dead-letter topic' },
  KAFKA_GROUP_ID: { schema: text('iot-realtime-pipeline', NAME), doc: 'alert-path consumer group' },
  KAFKA_PARTITIONS: { schema: int(6, 1, 1000), doc: 'partitions when the API creates the topics' },
  KAFKA_REPLICATION_FACTOR: { schema: int(1, 1, 10), doc: 'replication factor when the API creates the topics' },
  KAFKA_CONSUMER_ENABLED: { schema: bool(true), doc: 'false for API-only replicas (as KAFKA_CONSUMERS=none)' },
  KAFKA_CONSUMERS: {
    schema: oneOf(['all', 'alerts', 'history', 'none'] as const, 'all'),
    doc: 'consumer groups this replica joins: the alert path, reading history, both (all) or none',
  },
  KAFKA_SESSION_TIMEOUT_MS: {
    schema: int(10_000, 6000, 300_000),
    doc: 'how long the group waits for a silent replica',
  },
  KAFKA_PRODUCER_BUFFER_LIMIT: {
    schema: int(50_000, 100, 10_000_000),
    doc: 'readings queued while Kafka is slow or down',
  },
} as const satisfies Declarations;

export interface KafkaSettings {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly readingsTopic: string;
  readonly deadLetterTopic: string;
  readonly groupId: string;
  /** Partitions used when the project creates its topics. */
  readonly partitions: number;
  readonly replicationFactor: number;
  /**
   * The consumer groups this replica joins: the alert path, reading history, both, or neither (an
   * API-only replica). History apart keeps its store writes and their memory out of the processes
   * that publish alerts and serve subscriptions.
   */
  readonly consumers: { readonly alerts: boolean; readonly history: boolean };
  /** How long the group waits for a silent replica before giving its partitions to others. */
  readonly sessionTimeoutMs: number;
  /** Readings buffered in memory while Kafka is slow or down; beyond it producers get backpressure. */
  readonly producerBufferLimit: number;
}

export function kafkaSettings(e: Parsed<typeof KAFKA_VARIABLES>): KafkaSettings {
  return {
    brokers: e.KAFKA_BROKERS,
    clientId: e.KAFKA_CLIENT_ID,
    readingsTopic: e.KAFKA_READINGS_TOPIC,
    deadLetterTopic: e.KAFKA_DLQ_TOPIC,
    groupId: e.KAFKA_GROUP_ID,
    partitions: e.KAFKA_PARTITIONS,
    replicationFactor: e.KAFKA_REPLICATION_FACTOR,
    consumers: {
      alerts: e.KAFKA_CONSUMER_ENABLED !== false && ['all', 'alerts'].includes(e.KAFKA_CONSUMERS),
      history: e.KAFKA_CONSUMER_ENABLED !== false && ['all', 'history'].includes(e.KAFKA_CONSUMERS),
    },
    sessionTimeoutMs: e.KAFKA_SESSION_TIMEOUT_MS,
    producerBufferLimit: e.KAFKA_PRODUCER_BUFFER_LIMIT,
  };
}
