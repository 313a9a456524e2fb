import { GraphQLError } from 'graphql';
import { Arg, Ctx, Float, ID, Int, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import { AlertCursor } from '../domain/alertCursor.js';
import type { IncidentUpdate as DomainIncidentUpdate } from '../domain/incident.js';
import type { Delivered } from '../fanout/alertFeed.js';
import { checkScope, principalOf } from '../auth/policy.js';
import type { Incident as DomainIncident } from '../domain/incident.js';
import { MAX_NOTE_LENGTH, type SensorCommand } from '../domain/sensorCommand.js';
import { ErrorCode, badUserInput } from '../errors.js';
import { sleep } from '../shared/retry.js';
import {
  Incident,
  IncidentConnection,
  IncidentStatus,
  IncidentUpdate,
  SensorThreshold,
  incidentView,
} from '../schema/incident.type.js';
import { incidentPageCursor, parseIncidentPageCursor } from './pageCursor.js';
import type { GraphQLContext, Services } from './services.js';
import { checkPageSize, checkSensorId, checkSensorIds } from './validate.js';

/** How long acknowledgeIncident waits for the alert path to apply the acknowledgement. */
const ACK_WAIT_MS = 5000;
const MAX_ABS_TEMPERATURE_C = 1000;

@Resolver(() => Incident)
export class IncidentResolver {
  constructor(private readonly services: Services) {}

  @Query(() => IncidentConnection, { description: 'Incidents, newest first (by opening time).' })
  async incidents(
    @Arg('status', () => IncidentStatus, { nullable: true }) status?: IncidentStatus | null,
    @Arg('sensorId', () => ID, { nullable: true }) sensorId?: string | null,
    @Arg('first', () => Int, { nullable: true, description: 'Page size, default 50.' }) first?: number | null,
    @Arg('after', () => String, { nullable: true, description: '`endCursor` of the previous page.' })
    after?: string | null,
    @Ctx() ctx?: GraphQLContext,
  ): Promise<IncidentConnection> {
    const principal = principalOf(ctx ?? {});
    if (sensorId) {
      checkSensorId(sensorId, 'sensorId');
      checkScope(principal, [sensorId], 'sensorId');
    }
    const query = {
      status: status ?? undefined,
      sensorIds: sensorId ? [sensorId] : principal.sensors ? [...principal.sensors] : undefined,
      first: checkPageSize(first, this.services.config.limits.historyMaxPage),
      before: after ? parseIncidentPageCursor(after) : undefined,
    };
    const page = await this.services.readGate.run(() => this.services.store.incidents.page(query));
    const edges = page.items.map((i) => ({ cursor: incidentPageCursor(i.openedAt, i.id), node: incidentView(i) }));
    return {
      edges,
      nodes: edges.map((e) => e.node),
      pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null },
    };
  }

  @Query(() => [SensorThreshold], { description: "Each sensor's limits: its own, or the fleet default." })
  async sensorThresholds(
    @Arg('sensorIds', () => [ID]) sensorIds: string[],
    @Ctx() ctx?: GraphQLContext,
  ): Promise<SensorThreshold[]> {
    const ids = checkSensorIds(sensorIds, 'sensorIds', 100) ?? [];
    checkScope(principalOf(ctx ?? {}), ids, 'sensorIds');
    const own = await this.services.readGate.run(() => this.services.store.incidents.limitsOf(ids));
    const { config } = this.services;
    return ids.map((sensorId) => {
      const r = own.get(sensorId);
      return r
        ? {
            sensorId,
            thresholdC: r.thresholdC,
            hysteresisC: r.hysteresisC,
            custom: true,
            setBy: r.setBy,
            setAt: r.setAt,
          }
        : {
            sensorId,
            thresholdC: config.alerts.thresholdC,
            hysteresisC: config.incidents.hysteresisC,
            custom: false,
            setBy: null,
            setAt: null,
          };
    });
  }

  @Mutation(() => [SensorThreshold], {
    description:
      'Sets the limits of these sensors. They travel in line with the readings, so every reading sent after this returns is judged by them, on every replica.',
  })
  async setThreshold(
    @Arg('sensorIds', () => [ID]) sensorIds: string[],
    @Arg('thresholdC', () => Float) thresholdC: number,
    @Arg('hysteresisC', () => Float, { nullable: true, description: 'Default INCIDENT_HYSTERESIS_C.' })
    hysteresisC?: number | null,
    @Ctx() ctx?: GraphQLContext,
  ): Promise<SensorThreshold[]> {
    const ids = [...new Set(checkSensorIds(sensorIds, 'sensorIds', 1000) ?? [])];
    if (ids.length === 0) throw badUserInput('sensorIds', 'name at least one sensor');
    const principal = principalOf(ctx ?? {});
    checkScope(principal, ids, 'sensorIds');
    if (!Number.isFinite(thresholdC) || Math.abs(thresholdC) > MAX_ABS_TEMPERATURE_C)
      throw badUserInput('thresholdC', `thresholdC must be within ±${MAX_ABS_TEMPERATURE_C} °C`);
    const hysteresis = hysteresisC ?? this.services.config.incidents.hysteresisC;
    if (!Number.isFinite(hysteresis) || hysteresis < 0 || hysteresis > MAX_ABS_TEMPERATURE_C)
      throw badUserInput('hysteresisC', 'hysteresisC must be a non-negative number of °C');
    const setAt = new Date();
    const commands: SensorCommand[] = ids.map((sensorId) => ({
      kind: 'threshold',
      sensorId,
      thresholdC,
      hysteresisC: hysteresis,
      issuedBy: principal.id,
      issuedAt: setAt,
    }));
    await this.services.producer.sendCommands(commands);
    return ids.map((sensorId) => ({
      sensorId,
      thresholdC,
      hysteresisC: hysteresis,
      custom: true,
      setBy: principal.id,
      setAt,
    }));
  }

  @Mutation(() => Incident, {
    description:
      'Acknowledges an incident (who and when are recorded; the first acknowledgement wins). It does not clear it: only the temperature does.',
  })
  async acknowledgeIncident(
    @Arg('id', () => ID) id: string,
    @Arg('note', () => String, { nullable: true }) note?: string | null,
    @Ctx() ctx?: GraphQLContext,
  ): Promise<Incident> {
    if (id.length === 0 || id.length > 200) throw badUserInput('id', 'id is not an incident id');
    if (note !== null && note !== undefined && note.length > MAX_NOTE_LENGTH)
      throw badUserInput('note', `note may be at most ${MAX_NOTE_LENGTH} characters`);
    const principal = principalOf(ctx ?? {});
    const notFound = (): GraphQLError =>
      new GraphQLError(`No incident ${id.slice(0, 200)}`, { extensions: { code: ErrorCode.NOT_FOUND, field: 'id' } });
    const { store, producer } = this.services;
    const incident = await store.incidents.get(id);
    if (!incident) throw notFound();
    if (principal.sensors && !principal.sensors.has(incident.sensorId)) throw notFound();
    if (incident.acknowledgedBy !== null) return incidentView(incident);
    await producer.sendCommands([
      {
        kind: 'acknowledge',
        sensorId: incident.sensorId,
        incidentId: id,
        note: note ?? null,
        issuedBy: principal.id,
        issuedAt: new Date(),
      },
    ]);
    const deadline = Date.now() + ACK_WAIT_MS;
    let latest: DomainIncident | undefined = incident;
    while (Date.now() < deadline) {
      await sleep(100);
      latest = await store.incidents.get(id);
      if (latest?.acknowledgedBy) return incidentView(latest);
    }
    throw new GraphQLError('The acknowledgement is accepted and will apply shortly; read the incident again', {
      extensions: { code: ErrorCode.NOT_APPLIED_YET, retryable: false },
    });
  }

  @Subscription(() => IncidentUpdate, {
    description:
      'Incident changes (opened, updated, acknowledged, cleared) as they happen, over graphql-ws. With `after`, first replays every change stored after that cursor, then continues live, without gap or duplicate.',
    subscribe: ({ args, context }) => {
      const ctx = context as GraphQLContext;
      const principal = principalOf(ctx);
      const a = args as { sensorIds?: string[] | null; after?: string | null };
      let sensorIds = checkSensorIds(a.sensorIds, 'sensorIds');
      if (sensorIds) checkScope(principal, sensorIds, 'sensorIds');
      else if (principal.sensors) sensorIds = [...principal.sensors];
      let after: AlertCursor | undefined;
      if (a.after !== null && a.after !== undefined) {
        after = AlertCursor.decode(a.after);
        if (!after)
          throw badUserInput('after', 'after is not a cursor received from incidentUpdates or overheatAlerts');
      }
      return ctx.services.incidentFeed.open({ sensorIds, after, budget: ctx.budget });
    },
  })
  incidentUpdates(
    @Root() update: Delivered<DomainIncidentUpdate>,
    @Arg('sensorIds', () => [ID], { nullable: true, description: 'Only these sensors; all when omitted.' })
    _sensorIds?: string[] | null,
    @Arg('after', () => String, { nullable: true, description: 'Resume after this cursor (from a previous delivery).' })
    _after?: string | null,
  ): IncidentUpdate {
    return { change: update.change, incident: incidentView(update.incident), cursor: update.cursor };
  }
}
