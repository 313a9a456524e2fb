/**
 * One declaration of the alert's fields (ALERT_FIELDS, src/domain/alert.ts), and every form an alert
 * takes checked against it: the GraphQL type, the stored document, the replay page, the Redis
 * payload and the fast path's frames. A field added to the domain alert fails here until every form
 * carries it.
 */
import 'reflect-metadata';
import fc from 'fast-check';
import { isObjectType, parse, type FieldNode, type OperationDefinitionNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { ALERT_CLIENT_FIELDS, ALERT_FIELDS, type OverheatAlert } from '../../src/domain/alert.js';
import { deserializeAlert, serializeAlert } from '../../src/fanout/alertFanout.js';
import { messageBytes, shapeFor } from '../../src/http/overheatAlertsFastPath.js';
import { buildAppSchema } from '../../src/resolvers/buildSchema.js';
import { alertCodec, type Packed } from '../../src/store/alertPages.js';
import { fromAlertDoc, toAlertDoc } from '../../src/store/alertStore.js';

/** A finite number as JSON carries it: -0 is read back as 0 by every JSON form, and no reading has it. */
const aNumber = (min: number, max: number): fc.Arbitrary<number> =>
  fc.double({ min, max, noNaN: true }).map((x) => x + 0);

/** Any alert: every field set, times to the millisecond as the pipeline keeps them. */
const anAlert: fc.Arbitrary<OverheatAlert> = fc.record({
  id: fc.string({ minLength: 1, maxLength: 40 }),
  sensorId: fc.string({ minLength: 1, maxLength: 40 }),
  temperature: aNumber(-273, 1000),
  threshold: aNumber(-273, 1000),
  ts: fc.date({ min: new Date(0), max: new Date(4_000_000_000_000), noInvalidDate: true }),
  location: fc.record({
    lat: aNumber(-90, 90),
    lon: aNumber(-180, 180),
  }),
  detectedAt: fc.date({ min: new Date(0), max: new Date(4_000_000_000_000), noInvalidDate: true }),
  position: fc.record({ partition: fc.nat(1000), offset: fc.nat(2 ** 40) }),
});

describe('the alert’s fields', () => {
  it('are the domain alert’s keys, every one of them', () => {
    fc.assert(
      fc.property(anAlert, (a) => {
        expect(Object.keys(a).sort()).toEqual([...ALERT_FIELDS].sort());
      }),
    );
  });

  it('all survive the Redis payload', () => {
    fc.assert(
      fc.property(anAlert, (a) => {
        expect(deserializeAlert(serializeAlert(a))).toEqual(a);
      }),
    );
  });

  it('all survive the stored document', () => {
    fc.assert(
      fc.property(anAlert, (a) => {
        expect(fromAlertDoc(toAlertDoc(a))).toEqual(a);
      }),
    );
  });

  it('all survive the replay page', () => {
    fc.assert(
      fc.property(anAlert, (a) => {
        expect(
          alertCodec.unpack(a.position.partition, JSON.parse(JSON.stringify(alertCodec.pack(a))) as Packed),
        ).toEqual(a);
      }),
    );
  });

  it('are the GraphQL type’s fields, with the cursor', async () => {
    const type = (await buildAppSchema()).getType('OverheatAlert');
    expect(isObjectType(type)).toBe(true);
    if (!isObjectType(type)) return;
    expect(Object.keys(type.getFields()).sort()).toEqual([...ALERT_CLIENT_FIELDS, 'cursor'].sort());
  });

  it('are all written by the fast path’s frames when selected', async () => {
    const type = (await buildAppSchema()).getType('OverheatAlert');
    if (!isObjectType(type)) throw new Error('no OverheatAlert type');
    const selection = ALERT_CLIENT_FIELDS.map((f) => (f === 'location' ? 'location { lat lon }' : f)).join(' ');
    const operation = parse(`subscription { overheatAlerts { ${selection} cursor } }`)
      .definitions[0] as OperationDefinitionNode;
    const shape = shapeFor(operation.selectionSet.selections[0] as FieldNode, type)!;
    fc.assert(
      fc.property(anAlert, (a) => {
        const frame = JSON.parse(`{${messageBytes(a, shape, 'c-1').toString()}`) as {
          payload: { data: { overheatAlerts: Record<string, unknown> } };
        };
        const sent = frame.payload.data.overheatAlerts;
        expect(Object.keys(sent).sort()).toEqual([...ALERT_CLIENT_FIELDS, 'cursor'].sort());
        expect(sent.id).toBe(a.id);
        expect(sent.detectedAt).toBe(a.detectedAt.toISOString());
        expect(sent.location).toEqual(a.location);
      }),
      { numRuns: 50 },
    );
  });
});
