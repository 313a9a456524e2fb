import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Scenario, SensorStatus } from '../domain/sensor.js';
import { DateTimeScalar } from './dateTime.scalar.js';

// One Scenario and one SensorStatus, from the domain; registered here as GraphQL enums.
export { Scenario, SensorStatus };
registerEnumType(Scenario, {
  name: 'Scenario',
  description: 'How a simulated sensor behaves.',
  valuesConfig: {
    NORMAL: { description: 'Room-like temperatures around 20-30 °C; never raises alerts.' },
    OVERHEAT: { description: 'Starts near 65 °C and crosses 80 °C within about 3 seconds, then stays hot.' },
  },
});

registerEnumType(SensorStatus, { name: 'SensorStatus' });

@ObjectType({ description: 'A simulated sensor.' })
export class Sensor {
  @Field(() => ID)
  id!: string;

  @Field(() => Scenario)
  scenario!: Scenario;

  @Field(() => Int, { description: 'Milliseconds between readings.' })
  intervalMs!: number;

  @Field(() => Int, { description: 'Seed of the generator: the same seed gives the same readings.' })
  seed!: number;

  @Field(() => SensorStatus)
  status!: SensorStatus;

  @Field(() => String, { description: 'API replica running the simulation.' })
  replicaId!: string;

  @Field(() => DateTimeScalar)
  createdAt!: Date;

  @Field(() => DateTimeScalar, { nullable: true })
  stoppedAt!: Date | null;
}

@InputType()
export class SpawnSensorsInput {
  @Field(() => Int, { description: 'How many sensors to start (1..LIMIT_MAX_SPAWN).' })
  count!: number;

  @Field(() => Int, { nullable: true, description: 'Milliseconds between readings. Default 1000.' })
  intervalMs?: number | null;

  @Field(() => Scenario, { nullable: true, description: 'Default NORMAL.' })
  scenario?: Scenario | null;

  @Field(() => Int, { nullable: true, description: 'Generator seed. Default: random.' })
  seed?: number | null;
}

@ObjectType()
export class SpawnSensorsPayload {
  @Field(() => [Sensor])
  sensors!: Sensor[];
}
