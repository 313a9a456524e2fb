import { Field, Float, ID, ObjectType } from 'type-graphql';
import type { OverheatAlert as DomainAlert } from '../domain/alert.js';
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

/** The one mapping from a domain alert to its GraphQL object: resolvers and the fast path both use it. */
export function alertView(a: DomainAlert, cursor: string | null): OverheatAlert {
  return {
    id: a.id,
    sensorId: a.sensorId,
    temperature: a.temperature,
    threshold: a.threshold,
    ts: a.ts,
    location: a.location,
    detectedAt: a.detectedAt,
    cursor,
  };
}
