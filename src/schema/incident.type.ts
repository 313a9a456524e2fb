import { Field, Float, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { IncidentChange, IncidentStatus, type Incident as DomainIncident } from '../domain/incident.js';
import { DateTimeScalar } from './dateTime.scalar.js';
import { PageInfo } from './connection.type.js';
import { Location } from './reading.type.js';

export { IncidentChange, IncidentStatus };
registerEnumType(IncidentChange, {
  name: 'IncidentChange',
  description: 'What happened to an incident.',
  valuesConfig: {
    OPENED: { description: 'A first critical reading opened it.' },
    UPDATED: { description: 'Another critical reading: peak, last temperature and count moved.' },
    ACKNOWLEDGED: { description: 'A person acknowledged it.' },
    CLEARED: { description: 'The temperature stayed at the clearing level long enough.' },
  },
});
registerEnumType(IncidentStatus, {
  name: 'IncidentStatus',
  description: 'Where an incident is in its lifecycle.',
  valuesConfig: {
    OPEN: { description: 'Raised by a critical reading; nobody has acknowledged it yet.' },
    ACKNOWLEDGED: { description: 'Still running; a person has acknowledged it.' },
    CLEARED: {
      description: 'The temperature stayed at or below threshold - hysteresis long enough (acknowledged or not).',
    },
  },
});

@ObjectType({
  description:
    'One overheating episode of a sensor: opened by its first critical reading, updated while it stays hot, cleared with hysteresis, acknowledged by a person.',
})
export class Incident {
  @Field(() => ID, { description: 'Stable id (the opening reading).' })
  id!: string;

  @Field(() => ID)
  sensorId!: string;

  @Field(() => IncidentStatus)
  status!: IncidentStatus;

  @Field(() => DateTimeScalar, { description: 'Time of the reading that opened it.' })
  openedAt!: Date;

  @Field(() => DateTimeScalar, {
    description: `Time of the last reading or acknowledgement applied (refreshed at most every INCIDENT_REFRESH_INTERVAL while it runs).`,
  })
  updatedAt!: Date;

  @Field(() => DateTimeScalar, { nullable: true, description: 'Time of the reading that cleared it.' })
  clearedAt!: Date | null;

  @Field(() => Float, { description: 'Threshold in force when it opened, °C.' })
  thresholdC!: number;

  @Field(() => Float, { description: 'It clears at or below thresholdC - hysteresisC, °C.' })
  hysteresisC!: number;

  @Field(() => Float, { description: 'Highest temperature while it ran, °C.' })
  peakC!: number;

  @Field(() => Float, { description: 'Latest temperature, °C.' })
  lastC!: number;

  @Field(() => Int, { description: 'Readings above the threshold while it ran.' })
  criticalReadings!: number;

  @Field(() => Location)
  location!: Location;

  @Field(() => String, { nullable: true, description: 'Who acknowledged it (a credential id).' })
  acknowledgedBy!: string | null;

  @Field(() => DateTimeScalar, { nullable: true })
  acknowledgedAt!: Date | null;

  @Field(() => String, { nullable: true, description: 'The note left with the acknowledgement.' })
  note!: string | null;
}

export function incidentView(i: DomainIncident): Incident {
  return {
    id: i.id,
    sensorId: i.sensorId,
    status: i.status,
    openedAt: i.openedAt,
    updatedAt: i.updatedAt,
    clearedAt: i.clearedAt,
    thresholdC: i.thresholdC,
    hysteresisC: i.hysteresisC,
    peakC: i.peakC,
    lastC: i.lastC,
    criticalReadings: i.criticalReadings,
    location: i.location,
    acknowledgedBy: i.acknowledgedBy,
    acknowledgedAt: i.acknowledgedAt,
    note: i.note,
  };
}

@ObjectType()
export class IncidentEdge {
  @Field(() => String)
  cursor!: string;

  @Field(() => Incident)
  node!: Incident;
}

@ObjectType({ description: 'Incidents, newest first (by opening time).' })
export class IncidentConnection {
  @Field(() => [IncidentEdge])
  edges!: IncidentEdge[];

  @Field(() => [Incident])
  nodes!: Incident[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;
}

@ObjectType({ description: "A sensor's limits: its own, or the fleet default." })
export class SensorThreshold {
  @Field(() => ID)
  sensorId!: string;

  @Field(() => Float, { description: 'A reading strictly above this raises an alert and opens an incident, °C.' })
  thresholdC!: number;

  @Field(() => Float, { description: 'An incident clears at or below thresholdC - hysteresisC, °C.' })
  hysteresisC!: number;

  @Field(() => Boolean, {
    description: 'False when this is the fleet default (ALERT_THRESHOLD_C, INCIDENT_HYSTERESIS_C).',
  })
  custom!: boolean;

  @Field(() => String, { nullable: true, description: 'Who set it.' })
  setBy!: string | null;

  @Field(() => DateTimeScalar, { nullable: true })
  setAt!: Date | null;
}

@ObjectType({ description: 'One change of an incident, as incidentUpdates delivers it.' })
export class IncidentUpdate {
  @Field(() => IncidentChange)
  change!: IncidentChange;

  @Field(() => Incident, { description: 'The incident as this change left it.' })
  incident!: Incident;

  @Field(() => String, {
    description:
      'Opaque resume position. Resubscribe with `after: <cursor of the last update received>` to get every update missed, once each, then live ones. Cursors of overheatAlerts and alertsCursor are positions in the same stream and work here too.',
  })
  cursor!: string;
}
