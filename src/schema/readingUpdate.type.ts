import { Field, Int, ObjectType } from 'type-graphql';
import type { Reading } from '../domain/reading.js';
import { Reading as ReadingType } from './reading.type.js';

/** A reading's fields (the `Reading` type's), and what conflation let go before it. */
@ObjectType({
  description:
    'A live reading, as the alert path judges it (before it is stored). At most once: no cursor, no resume; after a reconnection, read `readings` for what was missed.',
})
export class ReadingUpdate extends ReadingType {
  @Field(() => Int, {
    description:
      'Readings of this sensor let go since its previous update: conflated to the latest for `maxPerSecond`, or because the subscriber did not keep up. 0 when none.',
  })
  skipped!: number;
}

export function readingUpdateView(reading: Reading, skipped: number): ReadingUpdate {
  return {
    sensorId: reading.sensorId,
    ts: reading.ts,
    temperature: reading.temperature,
    humidity: reading.humidity,
    location: reading.location,
    skipped,
  };
}
