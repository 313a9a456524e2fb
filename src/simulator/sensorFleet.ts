/**
 * The simulated sensors run by this replica.
 *
 * A sensor is recorded in MongoDB and runs on the replica that spawned it. Each replica renews one
 * lease document of its own (not one per sensor: the work does not grow with the fleet); when it
 * lapses, one survivor claims it and runs that replica's sensors, from the same seed. A sensor's
 * document is written at its spawn and at its stop, and by nothing else, so a stop can never be
 * overwritten by a renewal or an adoption: it sticks. Replicas poll a change stamp each second and
 * re-read the running sensors only when it moved (spawn, stop, adoption) or every 30 s.
 * Readings go through the producer's bounded queue; when Kafka cannot keep up a tick is skipped
 * (counted) rather than buffered without limit.
 */
import { randomBytes } from 'node:crypto';
import type { Reading } from '../domain/reading.js';
import type { Logger } from '../logger.js';
import { SpanKind, traceparentOf, type Tracing } from '../observability/tracing.js';
import type { FleetStore, ReplicaLease, SensorStore } from '../store/fleetStore.js';
import type { ReadingProducer } from '../stream/readingProducer.js';
import { deriveSeed } from './random.js';
import { VirtualSensor } from './virtualSensor.js';
import type { ReplaySpec, Scenario, SimulatedSensor } from '../domain/sensor.js';
import { badUserInput, limitExceeded } from '../errors.js';

/** Slowest simulated sensor: one reading an hour. */
const MAX_INTERVAL_MS = 3_600_000;

export interface SpawnRequest {
  count: number;
  intervalMs: number;
  scenario: Scenario;
  seed: number;
  /** REPLAY only. */
  replay?: ReplaySpec | undefined;
  /** Credential spawning them (per-key caps). */
  owner?: string;
}

/**
 * Which replica runs the sensors spawned by `replicaId`: itself while its lease holds, else whoever
 * adopted it (following adoptions), else nobody yet (waiting for adoption).
 */
export function resolveOwner(
  replicaId: string,
  leases: ReadonlyMap<string, ReplicaLease>,
  now: number,
): string | undefined {
  const seen = new Set<string>();
  let current: string | undefined = replicaId;
  while (current !== undefined && !seen.has(current)) {
    seen.add(current);
    const lease = leases.get(current);
    if (lease && lease.until.getTime() > now) return current;
    current = lease?.adoptedBy ?? undefined;
  }
  return undefined;
}

export interface SensorFleet {
  spawn(request: SpawnRequest): Promise<SimulatedSensor[]>;
  /** Every sensor, with `replicaId` set to the replica running it now. */
  list(): Promise<SimulatedSensor[]>;
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
  doc: SimulatedSensor;
  timer: NodeJS.Timeout;
}

/** How much simulation the fleet accepts (from the configuration). */
export interface FleetCapacity {
  /** Sensors running at once across the fleet. */
  maxSensors: number;
  maxSpawnPerRequest: number;
  minIntervalMs: number;
  /** Readings/s the simulated sensors of one replica may produce together. */
  maxReplicaRate: number;
  /** Running sensors, and their readings/s, one credential (SpawnRequest.owner) may have. */
  maxSensorsPerOwner: number;
  maxRatePerOwner: number;
}

export function createSensorFleet(deps: {
  producer: ReadingProducer;
  /** The sensors and replica leases it keeps in the store. */
  store: { readonly sensors: SensorStore; readonly fleet: FleetStore };
  replicaId: string;
  logger: Logger;
  capacity: FleetCapacity;
  reconcileEveryMs?: number;
  leaseMs?: number;
  /** Each reading is the root of a trace, kept as the sampler decides (OTEL_TRACES_SAMPLER). */
  tracing?: Tracing;
}): SensorFleet {
  const log = deps.logger.child({ module: 'simulator' });
  const running = new Map<string, RunningSensor>();
  let produced = 0;
  let skippedTicks = 0;
  let disposed = false;

  const leaseMs = deps.leaseMs ?? 10_000;
  const tracing = deps.tracing?.enabled ? deps.tracing : undefined;
  const startLocal = (doc: SimulatedSensor): void => {
    if (running.has(doc.id)) return;
    const sensor = new VirtualSensor(
      doc.scenario,
      deriveSeed(doc.seed, doc.index),
      doc.replay ? { spec: doc.replay, intervalMs: doc.intervalMs } : undefined,
    );
    let tick = 0;
    const timer = setInterval(() => {
      // Nominal elapsed time, not wall-clock: the values depend only on the seed and the tick.
      const sample = sensor.sample(++tick * doc.intervalMs);
      const reading: Reading = { sensorId: doc.id, ts: new Date(), ...sample };
      if (deps.producer.offer(reading, tracing && simulatedTrace(tracing, reading))) produced++;
      else skippedTicks++;
    }, doc.intervalMs);
    timer.unref();
    running.set(doc.id, { doc, timer });
  };

  const stopLocal = (id: string): boolean => {
    const s = running.get(id);
    if (!s) return false;
    clearInterval(s.timer);
    running.delete(id);
    return true;
  };

  // Renews our lease, adopts lapsed replicas, and runs exactly the running sensors we own.
  let reconciling = false;
  let rounds = 0;
  let seenVersion: string | undefined;
  let renewedUntil = 0;
  const reconcile = setInterval(() => {
    if (reconciling || disposed) return;
    reconciling = true;
    const now = Date.now();
    void (async () => {
      if (renewedUntil - now < (leaseMs * 2) / 3) {
        await deps.store.fleet.renewLease(deps.replicaId, new Date(now + leaseMs));
        renewedUntil = now + leaseMs;
      }
      let changed = false;
      if (rounds % 3 === 0) {
        for (const lease of await deps.store.fleet.leases()) {
          if (lease._id === deps.replicaId || lease.adoptedBy || lease.until.getTime() > now) continue;
          if (await deps.store.fleet.claimLease(lease, deps.replicaId)) {
            log.info({ replica: lease._id }, 'adopted the sensors of a replica that stopped renewing its lease');
            changed = true;
          }
        }
      }
      if (changed) await deps.store.fleet.bumpVersion();
      const version = await deps.store.fleet.version();
      if (changed || version !== seenVersion || rounds % 30 === 0) {
        seenVersion = version;
        await syncLocal(now);
      }
      rounds++;
    })()
      .catch((err: Error) => log.warn({ err: err.message }, 'sensor reconcile failed'))
      .finally(() => (reconciling = false));
  }, deps.reconcileEveryMs ?? 1000);
  reconcile.unref();

  /** Starts what we own and is running, stops the rest. */
  const syncLocal = async (now: number): Promise<void> => {
    const [leases, runningDocs] = await Promise.all([deps.store.fleet.leases(), deps.store.sensors.running()]);
    const byId = new Map(leases.map((l) => [l._id, l]));
    // Our own lease counts as held from our side: we renewed it this round.
    byId.set(deps.replicaId, { _id: deps.replicaId, until: new Date(Math.max(renewedUntil, now + 1)) });
    const mine = new Set<string>();
    for (const doc of runningDocs) {
      if (resolveOwner(doc.replicaId, byId, now) !== deps.replicaId) continue;
      mine.add(doc.id);
      startLocal(doc);
    }
    for (const id of [...running.keys()]) if (!mine.has(id)) stopLocal(id);
  };

  const localRate = (): number => {
    let rate = 0;
    for (const s of running.values()) rate += 1000 / s.doc.intervalMs;
    return rate;
  };

  /**
   * Refuses a spawn past any capacity, with LIMIT_EXCEEDED (or BAD_USER_INPUT for a malformed one).
   * The fleet and per-owner counts come from the store, so they hold across replicas; two spawns
   * racing on two replicas may pass a cap by one request.
   */
  const checkCapacity = async (req: SpawnRequest): Promise<void> => {
    const cap = deps.capacity;
    if (!Number.isInteger(req.count) || req.count < 1)
      throw badUserInput('input.count', 'input.count must be at least 1');
    if (req.count > cap.maxSpawnPerRequest) {
      throw limitExceeded(
        'input.count',
        `input.count may be at most ${cap.maxSpawnPerRequest} per request`,
        cap.maxSpawnPerRequest,
      );
    }
    if (req.intervalMs < cap.minIntervalMs || req.intervalMs > MAX_INTERVAL_MS) {
      throw badUserInput(
        'input.intervalMs',
        `input.intervalMs must be within ${cap.minIntervalMs}..${MAX_INTERVAL_MS}`,
      );
    }
    const running = await deps.store.sensors.countRunning();
    if (running + req.count > cap.maxSensors) {
      throw limitExceeded(
        'input.count',
        `at most ${cap.maxSensors} sensors may run at once (${running} running)`,
        cap.maxSensors,
      );
    }
    const addedRate = (req.count * 1000) / req.intervalMs;
    const rate = localRate();
    if (rate + addedRate > cap.maxReplicaRate) {
      throw limitExceeded(
        'input.intervalMs',
        `simulated sensors of this replica may produce at most ${cap.maxReplicaRate} readings/s (now ${Math.round(rate)}, this request adds ${Math.round(addedRate)})`,
        cap.maxReplicaRate,
      );
    }
    if (!req.owner) return;
    const usage = await deps.store.sensors.usageOf(req.owner);
    if (usage.count + req.count > cap.maxSensorsPerOwner) {
      throw limitExceeded(
        'input.count',
        `this credential may run at most ${cap.maxSensorsPerOwner} sensors (${usage.count} running)`,
        cap.maxSensorsPerOwner,
      );
    }
    if (usage.rate + addedRate > cap.maxRatePerOwner) {
      throw limitExceeded(
        'input.intervalMs',
        `this credential's simulated sensors may produce at most ${cap.maxRatePerOwner} readings/s (now ${Math.round(usage.rate)}, this request adds ${Math.round(addedRate)})`,
        cap.maxRatePerOwner,
      );
    }
  };

  return {
    async spawn(req) {
      await checkCapacity(req);
      const batchId = randomBytes(4).toString('hex');
      const now = new Date();
      const docs: SimulatedSensor[] = Array.from({ length: req.count }, (_, i) => ({
        id: `sim-${batchId}-${i}`,
        scenario: req.scenario,
        intervalMs: req.intervalMs,
        seed: req.seed,
        index: i,
        status: 'RUNNING',
        replicaId: deps.replicaId,
        createdAt: now,
        stoppedAt: null,
        ...(req.owner ? { owner: req.owner } : {}),
        ...(req.replay ? { replay: req.replay } : {}),
      }));
      if (renewedUntil < Date.now() + 1000) {
        await deps.store.fleet.renewLease(deps.replicaId, new Date(Date.now() + leaseMs));
        renewedUntil = Date.now() + leaseMs;
      }
      await deps.store.sensors.insert(docs);
      for (const doc of docs) startLocal(doc);
      await deps.store.fleet.bumpVersion();
      log.info(
        { count: req.count, scenario: req.scenario, intervalMs: req.intervalMs, seed: req.seed },
        'sensors spawned',
      );
      return docs;
    },
    async stop(ids) {
      const changed = await deps.store.sensors.stop(ids);
      for (const id of changed) stopLocal(id);
      // The owners (any replica) see the stamp move within a reconcile period and stop theirs.
      await deps.store.fleet.bumpVersion();
      log.info({ requested: ids?.length ?? 'all', stopped: changed.length }, 'sensors stopped');
      return changed.length;
    },
    async list() {
      const [docs, leases] = await Promise.all([deps.store.sensors.list(), deps.store.fleet.leases()]);
      const byId = new Map(leases.map((l) => [l._id, l]));
      const now = Date.now();
      return docs.map((d) =>
        d.status === 'RUNNING' ? { ...d, replicaId: resolveOwner(d.replicaId, byId, now) ?? d.replicaId } : d,
      );
    },
    localCount: () => running.size,
    localRate,
    stats: () => ({ produced, skippedTicks }),
    async dispose() {
      if (disposed) return;
      disposed = true;
      clearInterval(reconcile);
      const ids = [...running.keys()];
      for (const id of ids) stopLocal(id);
      if (ids.length > 0) {
        // Hand over rather than stop: another replica adopts them at once (rolling restarts keep the load).
        await deps.store.fleet
          .renewLease(deps.replicaId, new Date(0))
          .catch((err: Error) => log.warn({ err: err.message }, 'could not release the lease; it expires on its own'));
        log.info({ count: ids.length }, 'released sensors for adoption by other replicas');
      }
    },
  };
}

/** A simulated reading's root span (its sensor "measuring"), and the trace it carries on if sampled. */
function simulatedTrace(tracing: Tracing, reading: Reading): string | undefined {
  const span = tracing.start('simulate reading', undefined, {
    kind: SpanKind.PRODUCER,
    attributes: { 'sensor.id': reading.sensorId },
  });
  span.end();
  return traceparentOf(span);
}
