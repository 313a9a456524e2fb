import { Field, Float, ID, Int, ObjectType } from 'type-graphql';
import type { Reading } from '../domain/reading.js';
import { DateTimeScalar } from './dateTime.scalar.js';
import { Location } from './reading.type.js';

@ObjectType({
  description:
    'A live reading, as the alert path judges it (before it is stored). At most once: no cursor, no resume; after a reconnection, read `readings` for what was missed.',
})
export class ReadingUpdate {
  @Field(() => ID)
  sensorId!: string;

  @Field(() => DateTimeScalar, { description: 'When the sensor took the reading.' })
  ts!: Date;

  @Field(() => Float, { description: 'Temperature, °C' })
  temperature!: number;

  @Field(() => Float, { description: 'Relative humidity, %' })
  humidity!: number;

  @Field(() => Location)
  location!: Location;

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
