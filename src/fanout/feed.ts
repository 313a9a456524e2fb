/**
 * What a feed is to its callers: the request that opens a subscription, how items reach the
 * subscriber (an iterator, or a push Sink), and the errors that end it. The feed itself:
 * fanout/alertFeed.ts.
 */
import type { OverheatAlert, StreamPosition } from '../domain/alert.js';
import type { AlertCursor } from '../domain/alertCursor.js';
import type { SocketBudget } from './socketBudget.js';

/** What a feed carries: items of one sensor, at a position in the readings stream. */
export interface Positioned {
  readonly sensorId: string;
  readonly position: StreamPosition;
}

/** An item as delivered to one subscriber, with the cursor to resume after it. */
export type Delivered<T> = T & { readonly cursor: string };
export type DeliveredAlert = Delivered<OverheatAlert>;

/**
 * Push delivery: instead of queueing for an iterator, the feed hands each item to the sink at once,
 * with the subscriber's cursor after it. The transport keeps the backlog (its send buffer), the sink
 * reports it, and replay waits while it is high. What the transport holds is bounded by it.
 */
export interface Sink<T> {
  push(item: T, cursor: string): void;
  /** Bytes handed to the transport and not yet sent. */
  backlog(): number;
  /**
   * Unsent bytes at which the feed stops handing the transport more (at most SINK_LOW_WATER_BYTES);
   * a subscriber that sits there without reading is closed by its transport.
   */
  readonly pauseLineBytes: number;
  /**
   * The feed ended: with an error (it failed: SUBSCRIBER_TOO_SLOW, CURSOR_EXPIRED, ...), or without
   * (it was closed). A sink is told here, so nothing has to wait on the iterator for it.
   */
  end(error?: unknown): void;
}
export type AlertSink = Sink<OverheatAlert>;

/** Replay pauses while a push subscriber's transport holds more than this (and pull subscribers are not pulled). */
export const SINK_LOW_WATER_BYTES = 256 * 1024;

export interface FeedRequest<T = OverheatAlert> {
  sensorIds?: readonly string[] | undefined;
  after?: AlertCursor | undefined;
  /** The memory budget of the subscriber's socket, charged for every item queued here. */
  budget?: SocketBudget | undefined;
  /** Push delivery (see Sink): the sink is told the end; the iterator is then only for `return()`. */
  sink?: Sink<T> | undefined;
}

export interface Feed<T> {
  open(request: FeedRequest<T>): AsyncIterableIterator<Delivered<T>>;
  /** Current stored position: a cursor that resumes from "now". */
  currentCursor(): Promise<string>;
  /** Open subscriptions on this replica. */
  size(): number;
  /** Items handed to subscribers so far. */
  delivered(): number;
  /** Ends every open subscription (shutdown). */
  closeAll(): void;
}
export type AlertFeed = Feed<OverheatAlert>;

export const SUBSCRIBER_TOO_SLOW = 'SUBSCRIBER_TOO_SLOW';
/** The cursor points before alerts that retention removed: resuming from it would skip some. */
export const CURSOR_EXPIRED = 'CURSOR_EXPIRED';
/** Stored items read per replay query. */
export const REPLAY_PAGE = 500;
