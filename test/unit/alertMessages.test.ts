/**
 * The alert messages of the direct path (src/http/overheatAlertsFastPath.ts): subscribers with the
 * same selection and cursor share an alert's bytes, and each message still carries the
 * subscriber's own id and cursor. (That these messages equal what graphql-js writes is checked end
 * to end in test/integration/overheatAlerts.test.ts.)
 */
import 'reflect-metadata';
import { parse, type FieldNode, type GraphQLObjectType, type OperationDefinitionNode } from 'graphql';
import { beforeAll, describe, expect, it } from 'vitest';
import type { OverheatAlert } from '../../src/domain/alert.js';
import { messageBytes, shapeFor, type Shape } from '../../src/http/overheatAlertsFastPath.js';
import { buildAppSchema } from '../../src/resolvers/buildSchema.js';

let alertType: GraphQLObjectType;
beforeAll(async () => {
  alertType = (await buildAppSchema()).getType('OverheatAlert') as GraphQLObjectType;
});

const shapeOf = (subscription: string): Shape => {
  const operation = parse(subscription).definitions[0] as OperationDefinitionNode;
  return shapeFor(operation.selectionSet.selections[0] as FieldNode, alertType)!;
};

const alert = (offset: number): OverheatAlert => ({
  id: `s-1:${offset}`,
  sensorId: 's-1',
  temperature: 91.5,
  threshold: 80,
  ts: new Date('2026-12-05T10:00:00.000Z'),
  location: { lat: 48.85, lon: 2.35 },
  detectedAt: new Date('2026-12-05T10:00:00.010Z'),
  position: { partition: 2, offset },
});

/** The message a subscriber with this id receives: its own start, then the shared bytes. */
const received = (id: string, bytes: Buffer): unknown =>
  JSON.parse(Buffer.concat([Buffer.from(`{"id":${JSON.stringify(id)},`), bytes]).toString('utf8'));

describe('alert messages on the direct path', () => {
  it('are shared by subscribers with the same selection and cursor', () => {
    const shape = shapeOf('subscription { overheatAlerts { id cursor } }');
    expect(shapeOf('subscription { overheatAlerts { id cursor } }')).toBe(shape);
    const a = alert(7);
    expect(messageBytes(a, shape, 'cursor-1')).toBe(messageBytes(a, shape, 'cursor-1'));
  });

  it('carry each subscriber its own id and cursor, in whatever order subscribers come', () => {
    const shape = shapeOf('subscription { overheatAlerts { id cursor } }');
    const a = alert(8);
    const order = ['cursor-A', 'cursor-B', 'cursor-A', 'cursor-C', 'cursor-B'];
    order.forEach((cursor, i) =>
      expect(received(`sub-${i}`, messageBytes(a, shape, cursor))).toEqual({
        id: `sub-${i}`,
        type: 'next',
        payload: { data: { overheatAlerts: { id: 's-1:8', cursor } } },
      }),
    );
  });

  it('are one set of bytes for every cursor when the selection has none, under the alias asked for', () => {
    const shape = shapeOf('subscription { hot: overheatAlerts { sensorId temperature ts } }');
    const a = alert(9);
    const bytes = messageBytes(a, shape, 'cursor-A');
    expect(messageBytes(a, shape, 'cursor-B')).toBe(bytes);
    expect(received('x', bytes)).toEqual({
      id: 'x',
      type: 'next',
      payload: { data: { hot: { sensorId: 's-1', temperature: 91.5, ts: '2026-12-05T10:00:00.000Z' } } },
    });
  });

  it('are made per alert: another alert with the same cursor gets its own bytes', () => {
    const shape = shapeOf('subscription { overheatAlerts { id } }');
    expect(received('x', messageBytes(alert(10), shape, 'c'))).toMatchObject({
      payload: { data: { overheatAlerts: { id: 's-1:10' } } },
    });
    expect(received('x', messageBytes(alert(11), shape, 'c'))).toMatchObject({
      payload: { data: { overheatAlerts: { id: 's-1:11' } } },
    });
  });
});
