/**
 * The simulated sensors run by this replica.
 *
 * A sensor is recorded in MongoDB and runs on the replica that spawned it, under a lease the
 * replica renews. `stop` works from any replica: it flips the sensor's status in MongoDB, and the
 * owning replica notices within one reconcile period. When a replica dies, its leases expire and
 * the surviving replicas adopt its sensors, which carry on from the same seed. Readings go through the producer's bounded queue; when Kafka cannot keep up
 * a tick is skipped (counted) rather than buffered without limit.
 */
import { randomBytes } from 'node:crypto';
import type { Reading } from '../domain/reading.js';
import type { Logger } from '../logger.js';
import type { MongoStore, SensorDoc } from '../store/mongoStore.js';
import type { ReadingProducer } from '../stream/readingProducer.js';
import { deriveSeed } from './random.js';
import { VirtualSensor, type Scenario } from './virtualSensor.js';

export interface SpawnRequest {
  count: number;
  intervalMs: number;
  scenario: Scenario;
  seed: number;
}

export interface SensorFleet {
  spawn(request: SpawnRequest): Promise<SensorDoc[]>;
  /** Stops sensors on whichever replica runs them; undefined stops all. Returns how many stopped. */
  stop(ids: readonly string[] | undefined): Promise<number>;
  /** Sensors running on this replica. */
  localCount(): number;
  /** Readings per second produced by this replica's sensors. */
  localRate(): number;
  stats(): { produced: number; skippedTicks: number };
  /** Stops simulating locally and releases the leases, so other replicas take the sensors over. */
  dispose(): Promise<void>;
}

interface RunningSensor {
  doc: SensorDoc;
  timer: NodeJS.Timeout;
}

export function createSensorFleet(deps: {
  producer: ReadingProducer;
  store: MongoStore;
  replicaId: string;
  logger: Logger;
  reconcileEveryMs?: number;
  leaseMs?: number;
}): SensorFleet {
  const log = deps.logger.child({ module: 'simulator' });
  const running = new Map<string, RunningSensor>();
  let produced = 0;
  let skippedTicks = 0;
  let disposed = false;

  const leaseMs = deps.leaseMs ?? 10_000;
  const startLocal = (doc: SensorDoc): void => {
    if (running.has(doc._id)) return;
    const sensor = new VirtualSensor(doc.scenario, deriveSeed(doc.seed, doc.index));
    let tick = 0;
    const timer = setInterval(() => {
      // Nominal elapsed time, not wall-clock: the values depend only on the seed and the tick.
      const sample = sensor.sample(++tick * doc.intervalMs);
      const reading: Reading = { sensorId: doc._id, ts: new Date(), ...sample };
      if (deps.producer.offer(reading)) produced++;
      else skippedTicks++;
    }, doc.intervalMs);
    timer.unref();
    running.set(doc._id, { doc, timer });
  };

  const stopLocal = (id: string): boolean => {
    const s = running.get(id);
    if (!s) return false;
    clearInterval(s.timer);
    running.delete(id);
    return true;
  };

  // Renews our leases, picks up stops made on other replicas, adopts orphaned sensors.
  let reconciling = false;
  let rounds = 0;
  const reconcile = setInterval(() => {
    if (reconciling || disposed) return;
    reconciling = true;
    const now = Date.now();
    const until = new Date(now + leaseMs);
    void (async () => {
      if (running.size > 0) {
        await deps.store.sensors.renewLeases(deps.replicaId, until);
        const stillRunning = new Set((await deps.store.sensors.runningOn(deps.replicaId)).map((d) => d._id));
        for (const id of [...running.keys()]) {
          if (!stillRunning.has(id)) stopLocal(id);
        }
      }
      if (rounds++ % 3 === 0) {
        const adopted = await deps.store.sensors.adoptExpired(deps.replicaId, new Date(now), until, 100);
        for (const doc of adopted) startLocal(doc);
        if (adopted.length > 0) log.info({ count: adopted.length }, 'adopted sensors of a replica that stopped renewing');
      }
    })()
      .catch((err: Error) => log.warn({ err: err.message }, 'sensor reconcile failed'))
      .finally(() => (reconciling = false));
  }, deps.reconcileEveryMs ?? 1000);
  reconcile.unref();

  return {
    async spawn(req) {
      const batchId = randomBytes(4).toString('hex');
      const now = new Date();
      const docs: SensorDoc[] = Array.from({ length: req.count }, (_, i) => ({
        _id: `sim-${batchId}-${i}`,
        scenario: req.scenario,
        intervalMs: req.intervalMs,
        seed: req.seed,
        index: i,
        status: 'RUNNING',
        replicaId: deps.replicaId,
        leaseUntil: new Date(now.getTime() + leaseMs),
        createdAt: now,
        stoppedAt: null,
      }));
      await deps.store.sensors.insert(docs);
      for (const doc of docs) startLocal(doc);
      log.info({ count: req.count, scenario: req.scenario, intervalMs: req.intervalMs, seed: req.seed }, 'sensors spawned');
      return docs;
    },
    async stop(ids) {
      const changed = await deps.store.sensors.stop(ids);
      for (const id of changed) stopLocal(id);
      log.info({ requested: ids?.length ?? 'all', stopped: changed.length }, 'sensors stopped');
      return changed.length;
    },
    localCount: () => running.size,
    localRate: () => {
      let rate = 0;
      for (const s of running.values()) rate += 1000 / s.doc.intervalMs;
      return rate;
    },
    stats: () => ({ produced, skippedTicks }),
    async dispose() {
      if (disposed) return;
      disposed = true;
      clearInterval(reconcile);
      const ids = [...running.keys()];
      for (const id of ids) stopLocal(id);
      if (ids.length > 0) {
        // Hand over rather than stop: another replica adopts them at once (rolling restarts keep the load).
        await deps.store.sensors
          .renewLeases(deps.replicaId, new Date(0))
          .catch((err: Error) => log.warn({ err: err.message }, 'could not release sensor leases; they expire on their own'));
        log.info({ count: ids.length }, 'released sensors for adoption by other replicas');
      }
    },
  };
}
