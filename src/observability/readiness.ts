/**
 * Readiness of one replica (/readyz): ready once started, while MongoDB answers, the producer is
 * healthy and the consumers (when enabled) are. Redis down only degrades live delivery (subscribers
 * catch up from the store later), so it does not make the replica unready. MongoDB is probed every
 * PROBE_MS rather than per request, so a probe storm never reaches the store.
 */
export type CheckState = 'up' | 'down' | 'degraded' | 'disabled';

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, CheckState>;
}

export interface ReadinessSources {
  started: () => boolean;
  pingStore: () => Promise<void>;
  redisReady?: () => boolean;
  producerHealthy?: () => boolean;
  /** Undefined: this replica runs no consumer. */
  consumersHealthy?: () => boolean;
}

export interface Readiness {
  report(): ReadinessReport;
  dispose(): void;
}

const PROBE_MS = 2000;

export function createReadiness(s: ReadinessSources): Readiness {
  let storeUp = true;
  const probe = setInterval(() => {
    s.pingStore().then(
      () => (storeUp = true),
      () => (storeUp = false),
    );
  }, PROBE_MS);
  probe.unref();
  return {
    report() {
      const checks: Record<string, CheckState> = {
        mongodb: storeUp ? 'up' : 'down',
        redis: s.redisReady?.() ? 'up' : 'degraded',
        kafkaProducer: s.producerHealthy?.() ? 'up' : 'down',
        kafkaConsumer: s.consumersHealthy ? (s.consumersHealthy() ? 'up' : 'down') : 'disabled',
      };
      const ready =
        s.started() && checks.mongodb === 'up' && checks.kafkaProducer === 'up' && checks.kafkaConsumer !== 'down';
      return { ready, checks };
    },
    dispose: () => clearInterval(probe),
  };
}
