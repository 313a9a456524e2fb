/** The published schema (schema.graphql) is what the code builds: third parties generate clients from it. */
import { readFileSync } from 'node:fs';
import { lexicographicSortSchema, printSchema } from 'graphql';
import { describe, expect, it } from 'vitest';
import { buildAppSchema } from '../../src/resolvers/buildSchema.js';

describe('published schema', () => {
  it('matches the schema built from the resolvers (run `npm run schema` after a change)', async () => {
    const built = `${printSchema(lexicographicSortSchema(await buildAppSchema()))}\n`;
    expect(readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8')).toBe(built);
  });

  it('keeps the operation names clients depend on', async () => {
    const schema = await buildAppSchema();
    expect(Object.keys(schema.getMutationType()!.getFields())).toEqual(
      expect.arrayContaining(['spawnSensors', 'stopSensors', 'ingestReadings', 'setThreshold', 'acknowledgeIncident']),
    );
    expect(Object.keys(schema.getQueryType()!.getFields())).toEqual(
      expect.arrayContaining(['sensors', 'readings', 'alerts', 'incidents', 'sensorThresholds']),
    );
    expect(Object.keys(schema.getSubscriptionType()!.getFields())).toEqual([
      'overheatAlerts',
      'incidentUpdates',
      'readingUpdates',
    ]);
  });
});
