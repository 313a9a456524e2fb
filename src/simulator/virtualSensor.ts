/**
 * A virtual sensor: temperature (°C), humidity (%) and location, generated from a seed.
 *
 * Scenarios:
 * - NORMAL: temperature wanders around 20-30 °C, never above 60 °C.
 * - OVERHEAT: starts around 65 °C and climbs about 6 °C/s, crossing 80 °C within ~3 s of start,
 *   then holds around 88-95 °C.
 * - REPLAY: a shipped dataset of real readings (simulator/datasets.ts), one sample per tick from
 *   the chosen one, wrapping around at the end; humidity is not in the data and stays near 45 %.
 * The trajectory depends on elapsed time, not on the tick count, so the interval does not change
 * when the threshold is crossed. Same seed and same elapsed times give the same readings.
 */
import type { Location } from '../domain/reading.js';
import type { ReplaySpec, Scenario } from '../domain/sensor.js';
import { loadDataset, type DatasetSeries } from './datasets.js';
import { gaussian, seededRandom, type Random } from './random.js';

export interface SensorSample {
  temperature: number;
  humidity: number;
  location: Location;
}

const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;
const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));

/** Default site the virtual fleet is scattered around (Berlin). */
const HOME: Location = { lat: 52.52, lon: 13.405 };

export class VirtualSensor {
  private readonly random: Random;
  private readonly baseTemperature: number;
  private readonly baseHumidity: number;
  private location: Location;
  private readonly moving: boolean;
  private drift = 0;

  private readonly replay: { series: DatasetSeries; fromIndex: number; intervalMs: number } | undefined;

  constructor(
    readonly scenario: Scenario,
    seed: number,
    replay?: { spec: ReplaySpec; intervalMs: number },
  ) {
    this.random = seededRandom(seed);
    this.replay =
      scenario === 'REPLAY' && replay
        ? { series: loadDataset(replay.spec.dataset), fromIndex: replay.spec.fromIndex, intervalMs: replay.intervalMs }
        : undefined;
    this.baseTemperature = scenario === 'OVERHEAT' ? 64 + this.random() * 2 : 20 + this.random() * 8;
    this.baseHumidity = 35 + this.random() * 30;
    this.location = {
      lat: round(HOME.lat + (this.random() - 0.5) * 0.2, 6),
      lon: round(HOME.lon + (this.random() - 0.5) * 0.3, 6),
    };
    // About one sensor in four is mobile (a truck, a drone) and drifts a little each tick.
    this.moving = this.random() < 0.25;
  }

  /** The sample at `elapsedMs` since the sensor started. Call with non-decreasing times. */
  sample(elapsedMs: number): SensorSample {
    const seconds = elapsedMs / 1000;
    let temperature: number;
    if (this.replay) {
      const { series, fromIndex, intervalMs } = this.replay;
      // Tick n (elapsed n × interval) replays sample fromIndex + n - 1.
      const n = Math.max(1, Math.round(elapsedMs / intervalMs));
      temperature = series.temperaturesC[(fromIndex + n - 1) % series.temperaturesC.length]!;
    } else if (this.scenario === 'OVERHEAT') {
      const ramp = Math.min(seconds * 6, 28);
      temperature = this.baseTemperature + ramp + gaussian(this.random) * 0.4;
    } else {
      this.drift = clamp(this.drift + gaussian(this.random) * 0.05, -3, 3);
      temperature = clamp(this.baseTemperature + this.drift + gaussian(this.random) * 0.3, -20, 60);
    }
    const humidity = clamp(this.baseHumidity + gaussian(this.random) * 1.5 - (temperature - 25) * 0.1, 0, 100);
    if (this.moving) {
      this.location = {
        lat: round(clamp(this.location.lat + gaussian(this.random) * 0.0002, -90, 90), 6),
        lon: round(clamp(this.location.lon + gaussian(this.random) * 0.0003, -180, 180), 6),
      };
    }
    return { temperature: round(temperature, 2), humidity: round(humidity, 2), location: this.location };
  }
}
