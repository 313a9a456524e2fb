/**
 * Delivery latency of overheat alerts, per subscription kind: from the critical reading's timestamp
 * (as iot_alert_latency_seconds measures up to publishing) to the alert handed to the subscriber's
 * transport on this replica: the socket's buffer on the fast path, graphql-js on the regular one.
 *
 * Only alerts detected once the subscription had begun are counted: a subscription resuming from
 * an old cursor replays history, whose age says nothing about how fast the pipeline delivers.
 */
import type { PipelineObserver, SubscriptionKind } from './metrics.js';
import { SpanKind, traceOf, type Tracing } from './tracing.js';

/** What the latency is read from: the fields every overheat alert has. */
interface TimedAlert {
  readonly ts: Date;
  readonly detectedAt: Date;
}

/** A push transport (fanout/alertFeed.ts's Sink), as far as timing it goes. */
interface PushTarget<T> {
  push(item: T, cursor: string): void;
  backlog(): number;
  readonly pauseLineBytes: number;
  end(error?: unknown): void;
}

export function subscriptionKindOf(o: { scopedCredential: boolean; sensorIdsGiven: boolean }): SubscriptionKind {
  if (o.scopedCredential) return 'scoped';
  return o.sensorIdsGiven ? 'filtered' : 'all';
}

/** Observes each alert handed over, from the moment the subscription begins. */
export function deliveryClock(
  observer: Pick<PipelineObserver, 'alertDelivered'>,
  kind: SubscriptionKind,
  now: () => number = Date.now,
): (alert: TimedAlert) => void {
  const begunAt = now();
  return (alert) => {
    if (alert.detectedAt.getTime() < begunAt) return;
    observer.alertDelivered(kind, now() - alert.ts.getTime());
  };
}

/**
 * A span for each traced alert handed over (child of its publish span, observability/tracing.ts),
 * for a subscription picked for them (TRACING_SUBSCRIBER_RATIO). An alert a subscription catches
 * up on from the store has no trace: the stored form carries none.
 */
export function deliverySpans(tracing: Tracing, kind: SubscriptionKind): (alert: TimedAlert) => void {
  return (alert) => {
    const parent = traceOf(alert);
    if (parent === undefined) return;
    tracing
      .start('deliver alert', parent, { kind: SpanKind.CONSUMER, attributes: { 'subscription.kind': kind } })
      .end();
  };
}

/** The same sink, timing each alert as it is pushed. */
export function timedPushes<T extends TimedAlert>(sink: PushTarget<T>, clock: (alert: T) => void): PushTarget<T> {
  return {
    push(item, cursor) {
      sink.push(item, cursor);
      clock(item);
    },
    backlog: () => sink.backlog(),
    get pauseLineBytes() {
      return sink.pauseLineBytes;
    },
    end: (error) => sink.end(error),
  };
}

/** The same iterator, timing each alert as it is pulled. */
export function timedPulls<T extends TimedAlert>(
  iterator: AsyncIterableIterator<T>,
  clock: (alert: T) => void,
): AsyncIterableIterator<T> {
  const timed: AsyncIterableIterator<T> = {
    next: () =>
      iterator.next().then((r) => {
        if (!r.done) clock(r.value);
        return r;
      }),
    return: (value?: unknown) => iterator.return?.(value) ?? Promise.resolve({ value: undefined, done: true }),
    throw: (err?: unknown) =>
      iterator.throw?.(err) ?? Promise.reject(err instanceof Error ? err : new Error(String(err))),
    [Symbol.asyncIterator]: () => timed,
  };
  return timed;
}
