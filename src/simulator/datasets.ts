/**
 * Shipped datasets of real sensor data, for the REPLAY scenario (see datasets/SOURCES.md).
 * A dataset is a series of temperatures in °C at a fixed spacing, plus the windows its authors
 * labelled as anomalies. Loaded once, on first use.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Dataset } from '../domain/sensor.js';

export interface DatasetSeries {
  readonly name: Dataset;
  /** Time between two samples in the original recording. */
  readonly spacingMs: number;
  /** Original time of each sample. */
  readonly times: readonly Date[];
  readonly temperaturesC: Float64Array;
  /** Anomaly windows labelled by the dataset's authors, in original time. */
  readonly labelledWindows: readonly { readonly start: Date; readonly end: Date }[];
}

const fahrenheitToCelsius = (f: number): number => ((f - 32) * 5) / 9;

/** The repository (or image) root: the nearest ancestor of this module that holds `datasets/`. */
function datasetsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'datasets');
    if (existsSync(join(candidate, 'SOURCES.md'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('datasets/ not found next to the application');
    dir = parent;
  }
}

/** NAB timestamps are local wall-clock times without a zone; read as UTC. */
const nabTime = (text: string): Date => new Date(`${text.trim().replace(' ', 'T').slice(0, 19)}Z`);

function loadNabMachineTemperature(): DatasetSeries {
  const dir = join(datasetsDir(), 'nab');
  const lines = readFileSync(join(dir, 'machine_temperature_system_failure.csv'), 'utf8').trim().split('\n');
  const times: Date[] = [];
  const temperatures: number[] = [];
  for (const line of lines.slice(1)) {
    const [ts, value] = line.split(',');
    const t = nabTime(ts ?? '');
    const f = Number(value);
    if (Number.isNaN(t.getTime()) || !Number.isFinite(f)) throw new Error(`bad NAB line: ${line.slice(0, 80)}`);
    times.push(t);
    temperatures.push(Math.round(fahrenheitToCelsius(f) * 100) / 100);
  }
  const windows = JSON.parse(readFileSync(join(dir, 'machine_temperature_windows.json'), 'utf8')) as Record<
    string,
    [string, string][]
  >;
  return {
    name: Dataset.NAB_MACHINE_TEMPERATURE,
    spacingMs: 5 * 60_000,
    times,
    temperaturesC: Float64Array.from(temperatures),
    labelledWindows: Object.values(windows)
      .flat()
      .map(([start, end]) => ({ start: nabTime(start), end: nabTime(end) })),
  };
}

const loaded = new Map<Dataset, DatasetSeries>();

export function loadDataset(name: Dataset): DatasetSeries {
  let series = loaded.get(name);
  if (!series) {
    series = loadNabMachineTemperature();
    loaded.set(name, series);
  }
  return series;
}

/** Index of the first sample at or after `from` (0 when undefined or before the start). */
export function sampleIndexAt(series: DatasetSeries, from: Date | undefined): number {
  if (!from) return 0;
  const i = series.times.findIndex((t) => t.getTime() >= from.getTime());
  return i < 0 ? series.times.length - 1 : i;
}
