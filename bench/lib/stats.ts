/** Latency samples and the figures every benchmark reports. */
import os from 'node:os';

export interface Percentiles {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** Collects samples (milliseconds, fractional) in a growable Float64Array. */
export class Samples {
  private data = new Float64Array(1024);
  private n = 0;

  add(value: number): void {
    if (this.n === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.n++] = value;
  }

  get count(): number {
    return this.n;
  }

  percentiles(): Percentiles {
    const sorted = this.data.slice(0, this.n).sort();
    const at = (q: number): number =>
      this.n === 0 ? Number.NaN : sorted[Math.min(this.n - 1, Math.ceil(q * this.n) - 1)]!;
    let sum = 0;
    for (let i = 0; i < this.n; i++) sum += sorted[i]!;
    return {
      count: this.n,
      mean: this.n ? sum / this.n : Number.NaN,
      p50: at(0.5),
      p90: at(0.9),
      p99: at(0.99),
      p999: at(0.999),
      max: this.n ? sorted[this.n - 1]! : Number.NaN,
    };
  }
}

/** One row of the report. `latency` in ms; `rate` in operations per second. */
export interface Figure {
  name: string;
  /** What the figure is compared with (the raw limit measured in the same run), by figure name. */
  limit?: string;
  latency?: Percentiles;
  rate?: number;
  unit?: string;
  value?: number;
  notes?: string;
  /** Filled by the runner: this figure divided by its limit (latency p50 or rate or value). */
  ratio?: number;
}

export function machine(): Record<string, unknown> {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${os.platform()} ${os.release()}`,
    node: process.version,
  };
}

/** Monotonic wall time in ms with sub-ms precision, comparable across processes on one host. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
