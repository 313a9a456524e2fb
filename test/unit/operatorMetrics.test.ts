/**
 * The parts of what operators see that need no outside system: the bounded scrape-time reading
 * (consumer lag), the delivery clock and its subscription kinds, and the metrics they end up in.
 * test/integration/operatorMetrics.test.ts runs them against Kafka and a replica.
 */
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { kindHistogram } from '../../src/observability/kindHistogram.js';
import { cachedReading } from '../../src/observability/cachedReading.js';
import { deliveryClock, subscriptionKindOf, timedPulls, timedPushes } from '../../src/observability/deliveryLatency.js';
import { createMetrics, type SubscriptionKind } from '../../src/observability/metrics.js';

/** A read the test finishes by hand, counting how many were started. */
function manualReads<T>() {
  const pending: { resolve: (v: T) => void; reject: (e: unknown) => void }[] = [];
  return {
    pending,
    read: () => new Promise<T>((resolve, reject) => pending.push({ resolve, reject })),
  };
}

describe('a reading taken at scrape time', () => {
  it('reads once for scrapes that come together, and reuses the result while it is young', async () => {
    let clock = 0;
    const reads = manualReads<number>();
    const scrape = cachedReading(reads.read, {
      maxAgeMs: 4000,
      waitMs: 60_000,
      staleAfterMs: 30_000,
      onError: () => undefined,
      now: () => clock,
    });
    const first = [scrape(), scrape()];
    expect(reads.pending).toHaveLength(1);
    reads.pending[0]!.resolve(7);
    expect(await Promise.all(first)).toEqual([7, 7]);
    clock = 3999;
    expect(await scrape()).toBe(7);
    expect(reads.pending).toHaveLength(1);
    clock = 4000;
    const later = scrape();
    expect(reads.pending).toHaveLength(2);
    reads.pending[1]!.resolve(9);
    expect(await later).toBe(9);
  });

  it('serves the last result when a new read is slower than a scrape may wait, and nothing once it is stale', async () => {
    let clock = 0;
    const reads = manualReads<number>();
    const scrape = cachedReading(reads.read, {
      maxAgeMs: 1000,
      waitMs: 5,
      staleAfterMs: 10_000,
      onError: () => undefined,
      now: () => clock,
    });
    const first = scrape();
    reads.pending[0]!.resolve(3);
    expect(await first).toBe(3);
    clock = 2000;
    // The read that follows never answers: the scrape gives up waiting and serves what it had.
    expect(await scrape()).toBe(3);
    expect(reads.pending).toHaveLength(2);
    clock = 10_000;
    expect(await scrape()).toBeUndefined();
    // Still one read in flight, not one per scrape.
    expect(reads.pending).toHaveLength(2);
  });

  it('serves nothing after a failed read, says so once per failure, and says when it recovers', async () => {
    const reads = manualReads<number>();
    const errors: unknown[] = [];
    let recovered = 0;
    const scrape = cachedReading(reads.read, {
      maxAgeMs: 0,
      waitMs: 60_000,
      staleAfterMs: 60_000,
      onError: (err) => errors.push(err),
      onRecovered: () => recovered++,
    });
    const ok = scrape();
    reads.pending[0]!.resolve(1);
    expect(await ok).toBe(1);
    const failed = scrape();
    reads.pending[1]!.reject(new Error('broker down'));
    expect(await failed).toBeUndefined();
    expect(errors.map(String)).toEqual(['Error: broker down']);
    const back = scrape();
    reads.pending[2]!.resolve(2);
    expect(await back).toBe(2);
    expect(recovered).toBe(1);
  });
});

const alert = (tsMs: number, detectedAtMs: number) => ({ ts: new Date(tsMs), detectedAt: new Date(detectedAtMs) });

describe('delivery latency', () => {
  it('names the kind of a subscription: scoped by its credential, filtered by its sensorIds, or all', () => {
    expect(subscriptionKindOf({ scopedCredential: false, sensorIdsGiven: false })).toBe('all');
    expect(subscriptionKindOf({ scopedCredential: false, sensorIdsGiven: true })).toBe('filtered');
    expect(subscriptionKindOf({ scopedCredential: true, sensorIdsGiven: false })).toBe('scoped');
    expect(subscriptionKindOf({ scopedCredential: true, sensorIdsGiven: true })).toBe('scoped');
  });

  it("measures from the reading's timestamp, and leaves out alerts detected before the subscription began", () => {
    let clock = 10_000;
    const seen: [SubscriptionKind, number][] = [];
    const time = deliveryClock({ alertDelivered: (kind, ms) => seen.push([kind, ms]) }, 'filtered', () => clock);
    clock = 10_500;
    time(alert(9_000, 9_990)); // replayed history: detected before the subscription
    time(alert(10_200, 10_250));
    clock = 11_000;
    time(alert(10_900, 10_950));
    expect(seen).toEqual([
      ['filtered', 300],
      ['filtered', 100],
    ]);
  });

  it('times pushed alerts after handing them on, and leaves the rest of the sink as it was', () => {
    const pushed: string[] = [];
    const timed: string[] = [];
    const ended: unknown[] = [];
    const sink = {
      push: (a: { ts: Date; detectedAt: Date }, cursor: string) => pushed.push(cursor),
      backlog: () => 42,
      pauseLineBytes: 1024,
      end: (e?: unknown) => ended.push(e),
    };
    const wrapped = timedPushes(sink, () => timed.push(`after ${pushed.length}`));
    wrapped.push(alert(1, 2), 'c1');
    expect([pushed, timed]).toEqual([['c1'], ['after 1']]);
    expect([wrapped.backlog(), wrapped.pauseLineBytes]).toEqual([42, 1024]);
    wrapped.end('done');
    expect(ended).toEqual(['done']);
  });

  it('times pulled alerts, and passes return() through to the feed', async () => {
    const items = [alert(1, 2), alert(3, 4)];
    let returned = false;
    const source: AsyncIterableIterator<ReturnType<typeof alert>> = {
      next: () =>
        Promise.resolve(items.length ? { value: items.shift()!, done: false } : { value: undefined, done: true }),
      return: () => {
        returned = true;
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]: () => source,
    };
    const timed: number[] = [];
    const wrapped = timedPulls(source, (a) => timed.push(a.ts.getTime()));
    const got: number[] = [];
    for await (const a of wrapped) {
      got.push(a.ts.getTime());
      if (got.length === 2) break;
    }
    expect([got, timed, returned]).toEqual([[1, 3], [1, 3], true]);
  });

  it('lands in iot_alert_delivery_seconds by kind, with every kind exposed from the start', async () => {
    const metrics = createMetrics();
    const before = await metrics.render();
    for (const kind of ['all', 'filtered', 'scoped'])
      expect(before).toContain(`iot_alert_delivery_seconds_count{kind="${kind}"} 0`);
    metrics.observer.alertDelivered('scoped', 40);
    metrics.observer.alertDelivered('scoped', 3000);
    const after = await metrics.render();
    expect(after).toContain('iot_alert_delivery_seconds_count{kind="scoped"} 2');
    expect(after).toContain('iot_alert_delivery_seconds_bucket{le="0.05",kind="scoped"} 1');
    expect(after).toContain('iot_alert_delivery_seconds_count{kind="all"} 0');
  });
});

describe('the per-delivery histogram', () => {
  it("exposes what prom-client's own Histogram would, as text and as JSON, and resets with the registry", async () => {
    const buckets = [0.01, 0.1, 1];
    const ours = new Registry();
    const reference = new Registry();
    const fast = kindHistogram({ name: 'h', help: 'help', label: 'kind', values: ['a', 'b'], buckets, registry: ours });
    const slow = new Histogram({ name: 'h', help: 'help', labelNames: ['kind'], buckets, registers: [reference] });
    slow.zero({ kind: 'a' });
    slow.zero({ kind: 'b' });
    for (const [kind, x] of [
      ['a', 0.005],
      ['a', 0.01],
      ['a', 0.5],
      ['a', 7],
      ['b', 0.1],
    ] as const) {
      fast.of(kind)(x);
      slow.observe({ kind }, x);
    }
    expect(await ours.metrics()).toBe(await reference.metrics());
    // As JSON too, but for exemplars, which this histogram does not keep.
    const withoutExemplars = (json: Awaited<ReturnType<Registry['getMetricsAsJSON']>>) =>
      json.map((m) => ({
        ...m,
        values: m.values.map((v) => ({
          value: v.value,
          labels: v.labels,
          metricName: (v as { metricName?: string }).metricName,
        })),
      }));
    expect(withoutExemplars(await ours.getMetricsAsJSON())).toEqual(
      withoutExemplars(await reference.getMetricsAsJSON()),
    );
    ours.resetMetrics();
    reference.resetMetrics();
    slow.zero({ kind: 'a' });
    slow.zero({ kind: 'b' });
    expect(await ours.metrics()).toBe(await reference.metrics());
  });
});

describe('open incidents and consumer lag in /metrics', () => {
  it('shows the open incidents and the lag figures as the sources give them', async () => {
    const metrics = createMetrics();
    let lag: { group: string; partition: number; messages: number }[] | undefined = [
      { group: 'alerts', partition: 0, messages: 5 },
      { group: 'history', partition: 1, messages: 12 },
    ];
    metrics.bind({ incidentsOpen: () => 3, consumerLag: () => Promise.resolve(lag) });
    const text = await metrics.render();
    expect(text).toMatch(/^iot_incidents_open 3$/m);
    expect(text).toMatch(/^iot_consumer_lag_messages\{group="alerts",partition="0"\} 5$/m);
    expect(text).toMatch(/^iot_consumer_lag_messages\{group="history",partition="1"\} 12$/m);
    // Figures that cannot be had are left out, not repeated from the last scrape.
    lag = undefined;
    expect(await metrics.render()).not.toMatch(/^iot_consumer_lag_messages\{/m);
  });
});
