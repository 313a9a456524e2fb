import { Arg, Ctx, ID, Int, Mutation, Query, Resolver } from 'type-graphql';
import { checkScope, forbidden, principalOf } from '../auth/policy.js';
import { badUserInput } from '../errors.js';
import { Scenario, Sensor, SensorStatus, SpawnSensorsInput, SpawnSensorsPayload } from '../schema/sensor.type.js';
import type { ReplaySpec, SimulatedSensor } from '../domain/sensor.js';
import { loadDataset, sampleIndexAt } from '../simulator/datasets.js';
import type { GraphQLContext, Services } from './services.js';
import { checkPageSize, checkSensorIds } from './validate.js';
import { parseSensorPageCursor, sensorPageCursor } from './pageCursor.js';
import { SensorConnection } from '../schema/connection.type.js';

const DEFAULT_INTERVAL_MS = 1000;

function toSensor(s: SimulatedSensor): Sensor {
  const { id, scenario, intervalMs, seed, status, replicaId, createdAt, stoppedAt } = s;
  const replay = s.replay
    ? {
        dataset: s.replay.dataset,
        speedup: s.replay.speedup,
        from: loadDataset(s.replay.dataset).times[s.replay.fromIndex]!,
      }
    : null;
  return { id, scenario, intervalMs, seed, status, replicaId, createdAt, stoppedAt, replay };
}

/** The interval and replay of a REPLAY request: one sample per reading, so the speed-up sets the interval. */
function replayOf(input: SpawnSensorsInput): { intervalMs: number; replay: ReplaySpec } | undefined {
  if (input.scenario !== Scenario.REPLAY) {
    if (input.replay) throw badUserInput('input.replay', 'input.replay goes with scenario REPLAY only');
    return undefined;
  }
  const r = input.replay;
  if (!r) throw badUserInput('input.replay', 'scenario REPLAY needs input.replay (dataset, speedup)');
  if (input.intervalMs !== null && input.intervalMs !== undefined)
    throw badUserInput(
      'input.intervalMs',
      'a REPLAY sensor reads one sample per reading: set input.replay.speedup instead',
    );
  const series = loadDataset(r.dataset);
  if (!Number.isInteger(r.speedup) || r.speedup < 1 || r.speedup > series.spacingMs)
    throw badUserInput('input.replay.speedup', `input.replay.speedup must be an integer in 1..${series.spacingMs}`);
  const first = series.times[0]!;
  const last = series.times.at(-1)!;
  if (r.from && (r.from < first || r.from > last))
    throw badUserInput(
      'input.replay.from',
      `input.replay.from must be within the dataset: ${first.toISOString()} .. ${last.toISOString()}`,
    );
  return {
    intervalMs: Math.max(1, Math.round(series.spacingMs / r.speedup)),
    replay: { dataset: r.dataset, speedup: r.speedup, fromIndex: sampleIndexAt(series, r.from ?? undefined) },
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
    const replaying = replayOf(input);
    const intervalMs = replaying?.intervalMs ?? input.intervalMs ?? DEFAULT_INTERVAL_MS;
    const seed = input.seed ?? Math.floor(Math.random() * 2 ** 31);
    if (!Number.isInteger(seed) || seed < 0)
      throw badUserInput('input.seed', 'input.seed must be a non-negative integer');
    const docs = await this.services.fleet.spawn({
      count: input.count,
      intervalMs,
      scenario: input.scenario ?? Scenario.NORMAL,
      seed,
      owner: principal.id,
      replay: replaying?.replay,
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
