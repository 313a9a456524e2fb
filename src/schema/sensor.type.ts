import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Dataset, Scenario, SensorStatus } from '../domain/sensor.js';
import { DateTimeScalar } from './dateTime.scalar.js';

// One Scenario and one SensorStatus, from the domain; registered here as GraphQL enums.
export { Scenario, SensorStatus };
registerEnumType(Scenario, {
  name: 'Scenario',
  description: 'How a simulated sensor behaves.',
  valuesConfig: {
    NORMAL: { description: 'Room-like temperatures around 20-30 °C; never raises alerts.' },
    OVERHEAT: { description: 'Starts near 65 °C and crosses 80 °C within about 3 seconds, then stays hot.' },
    REPLAY: {
      description:
        'Replays a shipped dataset of real readings (input.replay), one sample per reading, at a chosen speed-up.',
    },
  },
});

export { Dataset };
registerEnumType(Dataset, {
  name: 'Dataset',
  description: 'Shipped datasets of real sensor data (see datasets/SOURCES.md).',
  valuesConfig: {
    NAB_MACHINE_TEMPERATURE: {
      description:
        'NAB machine_temperature_system_failure: an industrial machine, every 5 minutes for 78 days, with 4 labelled failures; °F converted to °C (peaks near 42.5 °C, so set a threshold with setThreshold).',
    },
  },
});

@InputType()
export class ReplayInput {
  @Field(() => Dataset)
  dataset!: Dataset;

  @Field(() => Int, {
    description: 'Original time over replay time: 3000 replays a 5-minute series at one reading every 100 ms.',
  })
  speedup!: number;

  @Field(() => DateTimeScalar, {
    nullable: true,
    description: 'Original time to start from (the first sample at or after it). Default: the beginning.',
  })
  from?: Date | null;
}

@ObjectType()
export class Replay {
  @Field(() => Dataset)
  dataset!: Dataset;

  @Field(() => Int)
  speedup!: number;

  @Field(() => DateTimeScalar, { description: 'Original time of the first sample replayed.' })
  from!: Date;
}

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

  @Field(() => Replay, { nullable: true, description: 'REPLAY sensors: what they replay.' })
  replay!: Replay | null;
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

  @Field(() => ReplayInput, { nullable: true, description: 'Required with scenario REPLAY (and only then).' })
  replay?: ReplayInput | null;
}

@ObjectType()
export class SpawnSensorsPayload {
  @Field(() => [Sensor])
  sensors!: Sensor[];
}
