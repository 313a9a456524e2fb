/**
 * The reading load: an idempotent kafkajs producer, configured like the API's, writing readings of
 * many sensors straight to the readings topic at a fixed arrival rate. `ts` is the send time, so a
 * subscriber's arrival time minus `ts` is the end-to-end alert latency.
 */
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { idempotentProducer } from '../../src/stream/kafka.js';
import { openLoop } from './openLoop.js';

export interface ReadingLoad {
  /** Sends `rate` readings/s for `durationMs`; one reading in `criticalEvery` is above 80 °C. */
  run(
    rate: number,
    durationMs: number,
  ): Promise<{
    issued: number;
    achievedRate: number;
    sent: number;
    critical: number;
    criticalBySensor: Map<string, number>;
    /** Readings sent per sensor in this run. */
    sentBySensor: Map<string, number>;
  }>;
  close(): Promise<void>;
}

/**
 * `tracedEvery`: one reading in that many carries a sampled W3C `traceparent` header of its own
 * trace, as one ingested with a traceparent does (0: none), to measure the cost of tracing.
 */
export async function createReadingLoad(
  topic: string,
  sensors = 1000,
  criticalEvery = 100,
  tracedEvery = 0,
): Promise<ReadingLoad> {
  const kafka = new Kafka({ clientId: 'bench-load', brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING });
  const producer: Producer = idempotentProducer(kafka);
  await producer.connect();
  const ids = Array.from({ length: sensors }, (_, i) => `bench-${i}`);
  const lastTs = new Array<number>(sensors).fill(0);
  let seq = 0;
  let critical = 0;
  let criticalBySensor = new Map<string, number>();
  let sentBySensor = new Map<string, number>();
  let sent = 0;
  let queue: { key: string; value: string; headers?: Record<string, string> }[] = [];
  let inFlight: Promise<void> | undefined;

  const flush = (): void => {
    if (inFlight || queue.length === 0) return;
    const batch = queue;
    queue = [];
    inFlight = producer
      .send({ topic, acks: -1, messages: batch })
      .then(() => void (sent += batch.length))
      .finally(() => {
        inFlight = undefined;
        flush();
      });
  };

  return {
    async run(rate, durationMs) {
      critical = 0;
      criticalBySensor = new Map();
      sentBySensor = new Map();
      sent = 0;
      const result = await openLoop(
        rate,
        durationMs,
        (n) => {
          const now = Date.now();
          for (let i = 0; i < n; i++) {
            const k = seq++;
            const s = k % ids.length;
            // One reading in criticalEvery, spread over every sensor (each is hot once every criticalEvery rounds).
            const hot = (s + Math.floor(k / ids.length)) % criticalEvery === 0;
            if (hot) {
              critical++;
              criticalBySensor.set(ids[s]!, (criticalBySensor.get(ids[s]!) ?? 0) + 1);
            }
            const sensorId = ids[s]!;
            sentBySensor.set(sensorId, (sentBySensor.get(sensorId) ?? 0) + 1);
            // A sensor's readings get distinct milliseconds: two in one millisecond would be one reading.
            const tsMs = Math.max(now, lastTs[s]! + 1);
            lastTs[s] = tsMs;
            queue.push({
              key: sensorId,
              value: `{"sensorId":"${sensorId}","ts":"${new Date(tsMs).toISOString()}","temperature":${hot ? 85.5 : 21.5},"humidity":40,"location":{"lat":52.5,"lon":13.4}}`,
              ...(tracedEvery > 0 && k % tracedEvery === 0
                ? {
                    headers: {
                      traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`,
                    },
                  }
                : {}),
            });
          }
          flush();
        },
        2,
      );
      while (inFlight || queue.length > 0) await (inFlight ?? Promise.resolve());
      return { ...result, sent, critical, criticalBySensor, sentBySensor };
    },
    async close() {
      await producer.disconnect();
    },
  };
}
