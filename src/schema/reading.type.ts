import { Field, Float, ID, InputType, Int, ObjectType } from 'type-graphql';
import { DateTimeScalar } from './dateTime.scalar.js';

@ObjectType({ description: 'A geographic position (WGS 84).' })
export class Location {
  @Field(() => Float, { description: 'Latitude, -90..90' })
  lat!: number;

  @Field(() => Float, { description: 'Longitude, -180..180' })
  lon!: number;
}

@ObjectType({ description: 'One measurement taken by a sensor.' })
export class Reading {
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
}

@InputType({ description: 'A geographic position (WGS 84).' })
export class LocationInput {
  @Field(() => Float)
  lat!: number;

  @Field(() => Float)
  lon!: number;
}

@InputType({ description: 'A reading pushed by a device or gateway. Validated like a Kafka message.' })
export class ReadingInput {
  @Field(() => ID)
  sensorId!: string;

  @Field(() => DateTimeScalar)
  ts!: Date;

  @Field(() => Float, { description: 'Temperature, °C' })
  temperature!: number;

  @Field(() => Float, { description: 'Relative humidity, %, 0..100' })
  humidity!: number;

  @Field(() => LocationInput)
  location!: LocationInput;
}

@ObjectType({ description: 'Readings accepted by Kafka. Once accepted, they are processed exactly once in effect.' })
export class IngestResult {
  @Field(() => Int, { description: 'Readings acknowledged by Kafka.' })
  accepted!: number;
}
