import { Arg, ID, Int, Resolver, Root, Subscription } from 'type-graphql';
import type { Principal } from '../auth/credentials.js';
import { checkScope, principalOf } from '../auth/policy.js';
import { badUserInput } from '../errors.js';
import { openLiveReadings, type LiveReading } from '../fanout/liveReadings.js';
import type { SocketBudget } from '../fanout/socketBudget.js';
import { ReadingUpdate, readingUpdateView } from '../schema/readingUpdate.type.js';
import type { GraphQLContext, Services } from './services.js';
import { checkSensorIds } from './validate.js';

/** The highest `maxPerSecond` a subscriber may ask for (per sensor). */
export const MAX_UPDATES_PER_SECOND = 100;
/**
 * Without `maxPerSecond`: readings queued for a subscriber that does not keep up before they are
 * conflated to the latest per sensor (about 200 KB, charged to the socket's budget).
 */
export const MAX_QUEUED_READINGS = 1000;

interface ReadingUpdatesArgs {
  sensorIds?: string[] | null;
  maxPerSecond?: number | null;
}

/** Checks the arguments and starts this subscriber's live readings. */
export function readingUpdatesSubscribe(services: Services, principal: Principal, budget?: SocketBudget) {
  return (args: ReadingUpdatesArgs): AsyncIterableIterator<LiveReading> => {
    let sensorIds = checkSensorIds(args.sensorIds, 'sensorIds');
    // A scoped credential sees its sensors only: without a filter, its scope is the filter.
    if (sensorIds) checkScope(principal, sensorIds, 'sensorIds');
    else if (principal.sensors) sensorIds = [...principal.sensors];
    const maxPerSecond = args.maxPerSecond ?? undefined;
    if (
      maxPerSecond !== undefined &&
      (!Number.isInteger(maxPerSecond) || maxPerSecond < 1 || maxPerSecond > MAX_UPDATES_PER_SECOND)
    )
      throw badUserInput('maxPerSecond', `maxPerSecond must be an integer from 1 to ${MAX_UPDATES_PER_SECOND}`);
    return openLiveReadings(services.liveReadings, {
      sensorIds,
      maxPerSecond,
      maxQueued: MAX_QUEUED_READINGS,
      budget,
    });
  };
}

@Resolver(() => ReadingUpdate)
export class ReadingUpdatesResolver {
  @Subscription(() => ReadingUpdate, {
    description:
      "Live readings as the alert path judges them, before they are stored, over graphql-ws. At most once: no cursor, no resume (read `readings` for the past). Conflated per sensor, the latest value winning: with `maxPerSecond`, at most that many updates per sensor a second; without it every reading, unless the subscriber falls behind. A new subscription's first readings may take up to a second.",
    subscribe: ({ args, context }) => {
      const ctx = context as GraphQLContext;
      return readingUpdatesSubscribe(ctx.services, principalOf(ctx), ctx.budget)(args as ReadingUpdatesArgs);
    },
  })
  readingUpdates(
    @Root() live: LiveReading,
    @Arg('sensorIds', () => [ID], { nullable: true, description: 'Only these sensors; all when omitted.' })
    _sensorIds?: string[] | null,
    @Arg('maxPerSecond', () => Int, {
      nullable: true,
      description: `At most this many updates per sensor a second (1..${MAX_UPDATES_PER_SECOND}), the latest reading winning; every reading when omitted.`,
    })
    _maxPerSecond?: number | null,
  ): ReadingUpdate {
    return readingUpdateView(live.reading, live.skipped);
  }
}
