/**
 * The `overheatAlerts` feed, and any feed over one stream (`incidentUpdates` too): each subscriber
 * gets history from MongoDB up to the stored watermark, then live items from Redis, joined without
 * gap or duplicate by its AlertCursor. Its parts, each with one reason to change:
 * - feed.ts: what callers see (the request, the Sink, the error codes);
 * - feedSubscription.ts: one subscription, hearing live items and progress notices, and why the
 *   join is gap-free;
 * - partitionState.ts: what a subscription knows of one partition;
 * - feedReplay.ts: the replay from the store, page by page (resuming from an old cursor);
 * - subscriberOutbox.ts: handing items over at the subscriber's pace, its budget, its end (slow
 *   subscribers);
 * - openSubscriptions.ts: the replica's open subscriptions, and which hear which progress notice.
 */
import { AlertCursor } from '../domain/alertCursor.js';
import type { Logger } from '../logger.js';
import type { MongoStore } from '../store/mongoStore.js';
import type { StreamHistory } from '../store/streamHistory.js';
import type { AlertFanout, Fanout } from './alertFanout.js';
import { REPLAY_PAGE, type AlertFeed, type Delivered, type Feed, type Positioned } from './feed.js';
import { FeedSubscription } from './feedSubscription.js';
import { OpenSubscriptions } from './openSubscriptions.js';
import { queuedAlertBytes } from './socketBudget.js';

export {
  CURSOR_EXPIRED,
  REPLAY_PAGE,
  SINK_LOW_WATER_BYTES,
  SUBSCRIBER_TOO_SLOW,
  type AlertFeed,
  type AlertSink,
  type Delivered,
  type DeliveredAlert,
  type Feed,
  type FeedRequest,
  type Positioned,
  type Sink,
} from './feed.js';

/** What the alert feed reads from the store: stored alerts by position, and the stream watermarks. */
export interface AlertHistory {
  readonly alerts: Pick<MongoStore['alerts'], 'between' | 'purgedUpTo'>;
  readonly progress: Pick<MongoStore['progress'], 'watermarks'>;
}

export function createAlertFeed(deps: {
  fanout: AlertFanout;
  store: AlertHistory;
  topic: string;
  maxPending: number;
  logger: Logger;
}): AlertFeed {
  return createFeed({
    fanout: deps.fanout,
    history: deps.store.alerts,
    progress: deps.store.progress,
    topic: deps.topic,
    maxPending: deps.maxPending,
    logger: deps.logger,
    itemBytes: queuedAlertBytes,
  });
}

/**
 * A feed over one stream (overheat alerts, incident updates): every stream is stored before its
 * partition watermark moves and published after, which is all the join (feedSubscription.ts) relies on.
 */
export function createFeed<T extends Positioned>(deps: {
  fanout: Fanout<T>;
  history: StreamHistory<T>;
  progress: Pick<MongoStore['progress'], 'watermarks'>;
  topic: string;
  maxPending: number;
  logger: Logger;
  /** Heap held by one queued item, charged to its socket's budget. */
  itemBytes: (item: Delivered<T>) => number;
}): Feed<T> {
  const subscriptions = new OpenSubscriptions<FeedSubscription<T>>();
  let delivered = 0;
  const context = {
    fanout: deps.fanout,
    history: deps.history,
    progress: deps.progress,
    topic: deps.topic,
    maxPending: deps.maxPending,
    // A page plus what may still be queued must fit under maxPending.
    pageSize: Math.max(1, Math.min(REPLAY_PAGE, Math.floor(deps.maxPending / 2))),
    log: deps.logger.child({ module: 'fanout.feed' }),
    itemBytes: deps.itemBytes,
    subscriptions,
    onDelivered: () => void delivered++,
  };
  deps.fanout.onProgress((progress) => subscriptions.heard(progress));

  return {
    open(request) {
      const s = new FeedSubscription(request, context);
      subscriptions.add(s);
      return s.outbox;
    },
    async currentCursor() {
      return AlertCursor.fromWatermarks(await deps.progress.watermarks(deps.topic)).encode();
    },
    size: () => subscriptions.open.size,
    delivered: () => delivered,
    closeAll() {
      for (const s of [...subscriptions.open]) void s.outbox.return();
    },
  };
}
