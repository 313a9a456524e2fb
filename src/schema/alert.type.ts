import { Field, Float, ID, ObjectType } from 'type-graphql';
import { DateTimeScalar } from './dateTime.scalar.js';
import { Location } from './reading.type.js';

@ObjectType({ description: 'A reading strictly above the overheat threshold.' })
export class OverheatAlert {
  @Field(() => ID, { description: 'Stable id: one critical reading, one alert.' })
  id!: string;

  @Field(() => ID)
  sensorId!: string;

  @Field(() => Float, { description: 'Temperature of the critical reading, °C' })
  temperature!: number;

  @Field(() => Float, { description: 'Threshold in force when the alert was raised, °C' })
  threshold!: number;

  @Field(() => DateTimeScalar, { description: 'Time of the critical reading.' })
  ts!: Date;

  @Field(() => Location)
  location!: Location;

  @Field(() => DateTimeScalar, { description: 'When the pipeline detected it.' })
  detectedAt!: Date;

  @Field(() => String, {
    nullable: true,
    description:
      'Opaque resume position, set on subscription deliveries. Resubscribe with `after: <cursor of the last alert received>` to get every alert missed, once each, then live ones.',
  })
  cursor!: string | null;
}
