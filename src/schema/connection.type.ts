import { Field, ObjectType } from 'type-graphql';
import { OverheatAlert } from './alert.type.js';
import { Reading } from './reading.type.js';
import { Sensor } from './sensor.type.js';

@ObjectType({ description: 'Relay-style page information.' })
export class PageInfo {
  @Field(() => Boolean)
  hasNextPage!: boolean;

  @Field(() => String, { nullable: true, description: 'Pass as `after` to get the next page.' })
  endCursor!: string | null;
}

@ObjectType()
export class ReadingEdge {
  @Field(() => String)
  cursor!: string;

  @Field(() => Reading)
  node!: Reading;
}

@ObjectType({ description: 'Readings, newest first.' })
export class ReadingConnection {
  @Field(() => [ReadingEdge])
  edges!: ReadingEdge[];

  @Field(() => [Reading], { description: 'The nodes of `edges`, for clients that do not need cursors.' })
  nodes!: Reading[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;
}

@ObjectType()
export class AlertEdge {
  @Field(() => String)
  cursor!: string;

  @Field(() => OverheatAlert)
  node!: OverheatAlert;
}

@ObjectType({ description: 'Overheat alerts, newest first.' })
export class AlertConnection {
  @Field(() => [AlertEdge])
  edges!: AlertEdge[];

  @Field(() => [OverheatAlert])
  nodes!: OverheatAlert[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;
}

@ObjectType()
export class SensorEdge {
  @Field(() => String)
  cursor!: string;

  @Field(() => Sensor)
  node!: Sensor;
}

@ObjectType({ description: 'Simulated sensors, oldest first.' })
export class SensorConnection {
  @Field(() => [SensorEdge])
  edges!: SensorEdge[];

  @Field(() => [Sensor])
  nodes!: Sensor[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;
}
