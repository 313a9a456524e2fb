/**
 * Run before every test file (vitest.config.ts setupFiles): the Kafka clients that tests make
 * themselves get what the replicas' get in stream/kafka.ts createKafka, connections that do not poll
 * every millisecond while nothing waits (and no TimeoutNegativeWarning on Node 24).
 */
import { stopIdlePolling } from '../../src/stream/kafka.js';

stopIdlePolling();
