import { Arg, Ctx, ID, Int, Mutation, Query, Resolver } from 'type-graphql';
import { checkScope, forbidden, principalOf } from '../auth/policy.js';
import { badUserInput, limitExceeded } from '../errors.js';
import { Scenario, Sensor, SensorStatus, SpawnSensorsInput, SpawnSensorsPayload } from '../schema/sensor.type.js';
import type { SensorDoc } from '../store/mongoStore.js';
import type { GraphQLContext, Services } from './services.js';
import { checkPageSize, checkSensorIds } from './validate.js';
import { parseSensorPageCursor, sensorPageCursor } from './pageCursor.js';
import { SensorConnection } from '../schema/connection.type.js';

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

  @Query(() => SensorConnection, {
    description:
      'Simulated sensors across all replicas, oldest first, optionally only RUNNING or STOPPED ones. Stopped sensors are removed after SENSORS_STOPPED_RETENTION.',
  })
  async sensors(
    @Arg('status', () => SensorStatus, { nullable: true }) status?: SensorStatus | null,
    @Arg('first', () => Int, { nullable: true, description: 'Page size, default 50.' }) first?: number | null,
    @Arg('after', () => String, { nullable: true, description: '`endCursor` of the previous page.' })
    after?: string | null,
    @Ctx() ctx?: GraphQLContext,
  ): Promise<SensorConnection> {
    if (principalOf(ctx ?? {}).sensors) throw forbidden('A credential scoped to sensors may not list the fleet');
    const pageSize = checkPageSize(first, this.services.config.limits.historyMaxPage);
    const from = after ? parseSensorPageCursor(after) : undefined;
    const all = (await this.services.readGate.run(() => this.services.fleet.list()))
      .filter((d) => !status || d.status === (status as string))
      .filter(
        (d) =>
          !from ||
          d.createdAt.getTime() > from.createdAt ||
          (d.createdAt.getTime() === from.createdAt && d._id > from.id),
      );
    const edges = all
      .slice(0, pageSize)
      .map((d) => ({ cursor: sensorPageCursor(d.createdAt, d._id), node: toSensor(d) }));
    return {
      edges,
      nodes: edges.map((e) => e.node),
      pageInfo: { hasNextPage: all.length > pageSize, endCursor: edges.at(-1)?.cursor ?? null },
    };
  }

  @Mutation(() => SpawnSensorsPayload, {
    description: 'Starts simulated sensors on the replica that receives the request.',
  })
  async spawnSensors(
    @Arg('input', () => SpawnSensorsInput) input: SpawnSensorsInput,
    @Ctx() ctx?: GraphQLContext,
  ): Promise<SpawnSensorsPayload> {
    const principal = principalOf(ctx ?? {});
    const { limits } = this.services.config;
    if (!Number.isInteger(input.count) || input.count < 1)
      throw badUserInput('input.count', 'input.count must be at least 1');
    if (input.count > limits.maxSpawnPerRequest) {
      throw limitExceeded(
        'input.count',
        `input.count may be at most ${limits.maxSpawnPerRequest} per request`,
        limits.maxSpawnPerRequest,
      );
    }
    const intervalMs = input.intervalMs ?? DEFAULT_INTERVAL_MS;
    if (intervalMs < limits.minIntervalMs || intervalMs > 3_600_000) {
      throw badUserInput('input.intervalMs', `input.intervalMs must be within ${limits.minIntervalMs}..3600000`);
    }
    const seed = input.seed ?? Math.floor(Math.random() * 2 ** 31);
    if (!Number.isInteger(seed) || seed < 0)
      throw badUserInput('input.seed', 'input.seed must be a non-negative integer');

    const running = await this.services.store.sensors.countRunning();
    if (running + input.count > limits.maxSensors) {
      throw limitExceeded(
        'input.count',
        `at most ${limits.maxSensors} sensors may run at once (${running} running)`,
        limits.maxSensors,
      );
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
    // Per credential, across replicas (counted in the store; concurrent spawns may pass it by one request).
    const { security } = this.services.config;
    const usage = await this.services.store.sensors.usageOf(principal.id);
    if (usage.count + input.count > security.maxSensorsPerKey) {
      throw limitExceeded(
        'input.count',
        `this credential may run at most ${security.maxSensorsPerKey} sensors (${usage.count} running)`,
        security.maxSensorsPerKey,
      );
    }
    if (usage.rate + addedRate > security.maxSimulatedRatePerKey) {
      throw limitExceeded(
        'input.intervalMs',
        `this credential's simulated sensors may produce at most ${security.maxSimulatedRatePerKey} readings/s (now ${Math.round(usage.rate)}, this request adds ${Math.round(addedRate)})`,
        security.maxSimulatedRatePerKey,
      );
    }
    const docs = await this.services.fleet.spawn({
      count: input.count,
      intervalMs,
      scenario: input.scenario ?? Scenario.NORMAL,
      seed,
      owner: principal.id,
    });
    return { sensors: docs.map(toSensor) };
  }

  @Mutation(() => Int, {
    description:
      'Stops the given sensors, on any replica. Without ids it stops every sensor of every client: admin role only. Returns how many stopped.',
  })
  async stopSensors(
    @Arg('ids', () => [ID], { nullable: true }) ids?: string[] | null,
    @Ctx() ctx?: GraphQLContext,
  ): Promise<number> {
    const principal = principalOf(ctx ?? {});
    const checked = checkSensorIds(ids, 'ids', 100_000);
    if (checked === undefined && principal.role !== 'admin')
      throw forbidden(
        'stopSensors without ids stops every sensor of every client: admin role only; pass the ids to stop',
        { field: 'ids' },
      );
    if (checked) checkScope(principal, checked, 'ids');
    return this.services.fleet.stop(checked);
  }
}
