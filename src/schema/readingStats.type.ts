import { Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';
import { DateTimeScalar } from './dateTime.scalar.js';

export enum StatsInterval {
  MINUTE = 'MINUTE',
  HOUR = 'HOUR',
  DAY = 'DAY',
}
registerEnumType(StatsInterval, {
  name: 'StatsInterval',
  description: 'Width of one readingStats point, aligned to UTC.',
});

@ObjectType({ description: 'Minimum, maximum and mean of one quantity over an interval.' })
export class MinMaxAvg {
  @Field(() => Float)
  min!: number;

  @Field(() => Float)
  max!: number;

  @Field(() => Float)
  avg!: number;
}

@ObjectType({
  description: 'Summary of one sensor over one interval, from stored summaries (no raw readings are read).',
})
export class ReadingStats {
  @Field(() => DateTimeScalar, { description: 'Start of the interval (UTC minute, hour or day).' })
  start!: Date;

  @Field(() => Int, { description: 'Readings in the interval (never 0: empty intervals are left out).' })
  count!: number;

  @Field(() => MinMaxAvg, { description: '°C' })
  temperature!: MinMaxAvg;

  @Field(() => MinMaxAvg, { description: '%' })
  humidity!: MinMaxAvg;
}
