import { describe, expect, it } from 'vitest';
import { VirtualSensor } from '../../src/simulator/virtualSensor.js';

const run = (scenario: 'NORMAL' | 'OVERHEAT', seed: number, ticks: number, intervalMs: number) => {
  const s = new VirtualSensor(scenario, seed);
  return Array.from({ length: ticks }, (_, i) => s.sample((i + 1) * intervalMs));
};

describe('virtual sensor', () => {
  it('gives the same readings for the same seed, and different ones for another seed', () => {
    expect(run('NORMAL', 42, 50, 1000)).toEqual(run('NORMAL', 42, 50, 1000));
    expect(run('NORMAL', 42, 50, 1000)).not.toEqual(run('NORMAL', 43, 50, 1000));
  });

  it('keeps NORMAL readings in a room-like range, never critical', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      for (const r of run('NORMAL', seed, 600, 1000)) {
        expect(r.temperature).toBeLessThan(60);
        expect(r.humidity).toBeGreaterThanOrEqual(0);
        expect(r.humidity).toBeLessThanOrEqual(100);
      }
    }
  });

  it('crosses 80 °C within a few seconds in OVERHEAT, whatever the interval', () => {
    for (const intervalMs of [100, 250, 1000]) {
      const readings = run('OVERHEAT', 9, Math.ceil(10_000 / intervalMs), intervalMs);
      const firstHot = readings.findIndex((r) => r.temperature > 80);
      expect(firstHot).toBeGreaterThanOrEqual(0);
      expect((firstHot + 1) * intervalMs).toBeLessThanOrEqual(4000);
      expect(readings.at(-1)!.temperature).toBeGreaterThan(85);
    }
  });

  it('reports locations within valid coordinates', () => {
    for (const r of run('OVERHEAT', 3, 100, 100)) {
      expect(Math.abs(r.location.lat)).toBeLessThanOrEqual(90);
      expect(Math.abs(r.location.lon)).toBeLessThanOrEqual(180);
    }
  });
});
