import { Arg, ID, Int, Mutation, Query, Resolver } from 'type-graphql';
import { badUserInput, limitExceeded } from '../errors.js';
import { Scenario, Sensor, SensorStatus, SpawnSensorsInput, SpawnSensorsPayload } from '../schema/sensor.type.js';
import type { SensorDoc } from '../store/mongoStore.js';
import type { Services } from './services.js';
import { checkSensorIds } from './validate.js';

const DEFAULT_INTERVAL_MS = 1000;

function toSensor(doc: SensorDoc): Sensor {
  return {
    id: doc._id,
    scenario: doc.scenario as Scenario,
    intervalMs: doc.intervalMs,
    seed: doc.seed,
    status: doc.status as SensorStatus,
    replicaId: doc.replicaId,
    createdAt: doc.createdAt,
    stoppedAt: doc.stoppedAt,
  };
}

@Resolver(() => Sensor)
export class SensorResolver {
  constructor(private readonly services: Services) {}

  @Query(() => [Sensor], { description: 'Every simulated sensor, running or stopped, across all replicas.' })
  async sensors(): Promise<Sensor[]> {
    return (await this.services.store.sensors.list()).map(toSensor);
  }

  @Mutation(() => SpawnSensorsPayload, { description: 'Starts simulated sensors on the replica that receives the request.' })
  async spawnSensors(@Arg('input', () => SpawnSensorsInput) input: SpawnSensorsInput): Promise<SpawnSensorsPayload> {
    const { limits } = this.services.config;
    if (!Number.isInteger(input.count) || input.count < 1) throw badUserInput('input.count', 'input.count must be at least 1');
    if (input.count > limits.maxSpawnPerRequest) {
      throw limitExceeded('input.count', `input.count may be at most ${limits.maxSpawnPerRequest} per request`, limits.maxSpawnPerRequest);
    }
    const intervalMs = input.intervalMs ?? DEFAULT_INTERVAL_MS;
    if (intervalMs < limits.minIntervalMs || intervalMs > 3_600_000) {
      throw badUserInput('input.intervalMs', `input.intervalMs must be within ${limits.minIntervalMs}..3600000`);
    }
    const seed = input.seed ?? Math.floor(Math.random() * 2 ** 31);
    if (!Number.isInteger(seed) || seed < 0) throw badUserInput('input.seed', 'input.seed must be a non-negative integer');

    const running = await this.services.store.sensors.countRunning();
    if (running + input.count > limits.maxSensors) {
      throw limitExceeded('input.count', `at most ${limits.maxSensors} sensors may run at once (${running} running)`, limits.maxSensors);
    }
    const addedRate = (input.count * 1000) / intervalMs;
    const rate = this.services.fleet.localRate();
    if (rate + addedRate > limits.maxSimulatedRate) {
      throw limitExceeded(
        'input.intervalMs',
        `simulated sensors of this replica may produce at most ${limits.maxSimulatedRate} readings/s (now ${Math.round(rate)}, this request adds ${Math.round(addedRate)})`,
        limits.maxSimulatedRate,
      );
    }
    const docs = await this.services.fleet.spawn({ count: input.count, intervalMs, scenario: input.scenario ?? Scenario.NORMAL, seed });
    return { sensors: docs.map(toSensor) };
  }

  @Mutation(() => Int, { description: 'Stops the given sensors (all when ids is omitted), on any replica. Returns how many stopped.' })
  async stopSensors(@Arg('ids', () => [ID], { nullable: true }) ids?: string[] | null): Promise<number> {
    return this.services.fleet.stop(checkSensorIds(ids, 'ids', 100_000));
  }
}
