import { Arg, Ctx, ID, Int, Mutation, Query, Resolver } from 'type-graphql';
import { checkScope, forbidden, principalOf } from '../auth/policy.js';
import { badUserInput } from '../errors.js';
import { Scenario, Sensor, SensorStatus, SpawnSensorsInput, SpawnSensorsPayload } from '../schema/sensor.type.js';
import type { SimulatedSensor } from '../domain/sensor.js';
import type { GraphQLContext, Services } from './services.js';
import { checkPageSize, checkSensorIds } from './validate.js';
import { parseSensorPageCursor, sensorPageCursor } from './pageCursor.js';
import { SensorConnection } from '../schema/connection.type.js';

const DEFAULT_INTERVAL_MS = 1000;

function toSensor(s: SimulatedSensor): Sensor {
  const { id, scenario, intervalMs, seed, status, replicaId, createdAt, stoppedAt } = s;
  return { id, scenario, intervalMs, seed, status, replicaId, createdAt, stoppedAt };
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
          (d.createdAt.getTime() === from.createdAt && d.id > from.id),
      );
    const edges = all
      .slice(0, pageSize)
      .map((d) => ({ cursor: sensorPageCursor(d.createdAt, d.id), node: toSensor(d) }));
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
    // Shape of the request here; capacity (fleet, replica, credential) is the fleet's rule.
    const intervalMs = input.intervalMs ?? DEFAULT_INTERVAL_MS;
    const seed = input.seed ?? Math.floor(Math.random() * 2 ** 31);
    if (!Number.isInteger(seed) || seed < 0)
      throw badUserInput('input.seed', 'input.seed must be a non-negative integer');
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
