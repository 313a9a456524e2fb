/**
 * A histogram with one label and a fixed set of its values, for what is observed once per
 * delivery to each subscriber rather than once per alert: observing is a bucket search and three
 * additions. prom-client's Histogram hashes its labels and checks them on every observe (about 1 µs
 * here, measured, as much as handing the alert to the socket), which per delivery is a cost
 * fan-out pays for every subscriber.
 *
 * It is exposed through the registry like prom-client's own histograms (the registry reads a
 * metric's `getForPromString()`, or `get()` for JSON, and calls `reset()`), so /metrics shows the
 * usual `_bucket{le}`, `_sum` and `_count` series, every label value from the start.
 */
import type { Metric, Registry } from 'prom-client';

interface Series {
  /** Observations per bucket (not cumulative); the last slot counts those above every bound. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

interface ExportedValue {
  value: number;
  labels: Record<string, string | number>;
  metricName: string;
}

export interface KindHistogram<K extends string> {
  /** Returns the observer of one label value, bound once. */
  of(value: K): (x: number) => void;
}

export function kindHistogram<K extends string>(o: {
  name: string;
  help: string;
  label: string;
  values: readonly K[];
  /** Upper bounds, ascending. */
  buckets: readonly number[];
  registry: Registry;
}): KindHistogram<K> {
  const fresh = (): Series => ({ counts: new Float64Array(o.buckets.length + 1), sum: 0, count: 0 });
  const series = new Map<K, Series>(o.values.map((v) => [v, fresh()]));
  const bounds = Float64Array.from(o.buckets);

  const values = (): ExportedValue[] => {
    const out: ExportedValue[] = [];
    for (const [value, s] of series) {
      let cumulative = 0;
      for (let i = 0; i < bounds.length; i++) {
        cumulative += s.counts[i]!;
        out.push({ value: cumulative, labels: { le: bounds[i]!, [o.label]: value }, metricName: `${o.name}_bucket` });
      }
      out.push(
        { value: s.count, labels: { le: '+Inf', [o.label]: value }, metricName: `${o.name}_bucket` },
        { value: s.sum, labels: { [o.label]: value }, metricName: `${o.name}_sum` },
        { value: s.count, labels: { [o.label]: value }, metricName: `${o.name}_count` },
      );
    }
    return out;
  };
  const exported = () =>
    Promise.resolve({ name: o.name, help: o.help, type: 'histogram', aggregator: 'sum', values: values() });
  const metric = {
    name: o.name,
    help: o.help,
    type: 'histogram',
    aggregator: 'sum',
    get: exported,
    getForPromString: exported,
    reset() {
      for (const v of o.values) series.set(v, fresh());
    },
  };
  o.registry.registerMetric(metric as unknown as Metric);

  return {
    of(value) {
      return (x) => {
        const s = series.get(value)!;
        let i = 0;
        while (i < bounds.length && x > bounds[i]!) i++;
        s.counts[i] = s.counts[i]! + 1;
        s.sum += x;
        s.count++;
      };
    },
  };
}
