import { Arg, Ctx, ID, Int, Query, Resolver, Root, Subscription } from 'type-graphql';
import type { Principal } from '../auth/credentials.js';
import { checkScope, forbidden, principalOf } from '../auth/policy.js';
import { AlertCursor } from '../domain/alertCursor.js';
import { badUserInput } from '../errors.js';
import type { AlertSink, DeliveredAlert } from '../fanout/alertFeed.js';
import { alertView, OverheatAlert } from '../schema/alert.type.js';
import { AlertConnection } from '../schema/connection.type.js';
import { alertPageCursor, parseAlertPageCursor } from './pageCursor.js';
import type { GraphQLContext, Services } from './services.js';
import type { SocketBudget } from '../fanout/socketBudget.js';
import { checkPageSize, checkSensorId, checkSensorIds } from './validate.js';
import {
  deliveryClock,
  deliverySpans,
  subscriptionKindOf,
  timedPulls,
  timedPushes,
} from '../observability/deliveryLatency.js';

interface OverheatAlertsArgs {
  sensorIds?: string[] | null;
  after?: string | null;
}

/** Checks the arguments and opens this subscriber's feed (history after `after`, then live). */
export function overheatAlertsSubscribe(
  services: Services,
  principal: Principal,
  delivery: { budget?: SocketBudget | undefined; sink?: AlertSink | undefined } = {},
) {
  return (args: OverheatAlertsArgs): AsyncIterable<DeliveredAlert> => {
    let sensorIds = checkSensorIds(args.sensorIds, 'sensorIds');
    const kind = subscriptionKindOf({ scopedCredential: principal.sensors !== undefined, sensorIdsGiven: !!sensorIds });
    // A scoped credential sees its sensors only: without a filter, its scope is the filter.
    if (sensorIds) checkScope(principal, sensorIds, 'sensorIds');
    else if (principal.sensors) sensorIds = [...principal.sensors];
    let after: AlertCursor | undefined;
    if (args.after !== null && args.after !== undefined) {
      after = AlertCursor.decode(args.after);
      if (!after) throw badUserInput('after', 'after is not a cursor received from overheatAlerts');
    }
    const timed = services.deliveries && deliveryClock(services.deliveries, kind);
    const traced =
      services.tracing?.enabled && services.tracing.sampleSubscriber()
        ? deliverySpans(services.tracing, kind)
        : undefined;
    const clock: ((alert: DeliveredAlert) => void) | undefined =
      timed && traced
        ? (alert) => {
            timed(alert);
            traced(alert);
          }
        : (timed ?? traced);
    if (!clock) return services.feed.open({ sensorIds, after, budget: delivery.budget, sink: delivery.sink });
    if (delivery.sink)
      return services.feed.open({ sensorIds, after, budget: delivery.budget, sink: timedPushes(delivery.sink, clock) });
    return timedPulls(services.feed.open({ sensorIds, after, budget: delivery.budget }), clock);
  };
}

@Resolver(() => OverheatAlert)
export class AlertResolver {
  constructor(private readonly services: Services) {}

  @Query(() => AlertConnection, { description: 'Stored overheat alerts, newest first.' })
  async alerts(
    @Arg('sensorId', () => ID, { nullable: true }) sensorId?: string | null,
    @Arg('first', () => Int, { nullable: true, description: 'Page size, default 50.' }) first?: number | null,
    @Arg('after', () => String, { nullable: true, description: '`endCursor` of the previous page.' })
    after?: string | null,
    @Ctx() ctx?: GraphQLContext,
  ): Promise<AlertConnection> {
    const principal = principalOf(ctx ?? {});
    if (sensorId) checkSensorId(sensorId, 'sensorId');
    if (principal.sensors && !sensorId)
      throw forbidden('A credential scoped to sensors must name one (sensorId)', { field: 'sensorId' });
    if (sensorId) checkScope(principal, [sensorId], 'sensorId');
    const query = {
      sensorId: sensorId ?? undefined,
      first: checkPageSize(first, this.services.config.limits.historyMaxPage),
      before: after ? parseAlertPageCursor(after) : undefined,
    };
    const page = await this.services.readGate.run(() => this.services.store.alerts.page(query));
    const edges = page.items.map((a) => ({ cursor: alertPageCursor(a.ts, a.id), node: alertView(a, null) }));
    return {
      edges,
      nodes: edges.map((e) => e.node),
      pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null },
    };
  }

  @Query(() => String, {
    description:
      'A subscription cursor for "now": subscribe to overheatAlerts with `after` set to it to get every alert stored from this point on.',
  })
  async alertsCursor(): Promise<string> {
    return this.services.feed.currentCursor();
  }

  @Subscription(() => OverheatAlert, {
    description:
      'Overheat alerts as they are detected, over graphql-ws. With `after`, first replays every stored alert after that cursor, then continues live, without gap or duplicate.',
    subscribe: ({ args, context }) => {
      const ctx = context as GraphQLContext;
      return overheatAlertsSubscribe(ctx.services, principalOf(ctx), { budget: ctx.budget })(
        args as OverheatAlertsArgs,
      );
    },
  })
  overheatAlerts(
    @Root() alert: DeliveredAlert,
    @Arg('sensorIds', () => [ID], { nullable: true, description: 'Only these sensors; all when omitted.' })
    _sensorIds?: string[] | null,
    @Arg('after', () => String, { nullable: true, description: 'Resume after this cursor (from a previous delivery).' })
    _after?: string | null,
  ): OverheatAlert {
    return alertView(alert, alert.cursor);
  }
}
