/**
 * What the WebSocket server accepts from a client (src/http/graphqlTransportWs.ts): the
 * graphql-transport-ws messages, checked once at the boundary; anything else is a reason to close
 * the socket with 4400.
 */
import { describe, expect, it } from 'vitest';
import { parseClientMessage } from '../../src/http/graphqlTransportWs.js';

describe('a client message', () => {
  it.each([
    { type: 'connection_init' },
    { type: 'connection_init', payload: { authorization: 'Bearer x' } },
    { type: 'connection_init', payload: null },
    { type: 'ping', payload: { n: 1 } },
    { type: 'pong' },
    { type: 'subscribe', id: '1', payload: { query: '{ a }' } },
    {
      type: 'subscribe',
      id: 'x',
      payload: { query: '{ a }', variables: { v: 1 }, operationName: 'A', extensions: {} },
    },
    { type: 'subscribe', id: 'x', payload: { query: '{ a }', variables: null, operationName: null } },
    { type: 'complete', id: '1' },
  ])('is taken as it is: %j', (message) => {
    expect(parseClientMessage(JSON.stringify(message))).toEqual(message);
  });

  it.each([
    ['not JSON', '{"type":', /not JSON/],
    ['JSON that is not an object', '[1,2]', /no type/],
    ['no type', '{"id":"1"}', /no type/],
    ['a type that is not a string', '{"type":1}', /no type/],
    ['a type only the server sends', '{"type":"next","id":"1","payload":{}}', /unexpected type next/],
    ['an unknown type', '{"type":"start","id":"1"}', /unexpected type start/],
    ['a connection_init payload that is not an object', '{"type":"connection_init","payload":"token"}', /payload/],
    ['a subscribe without id', '{"type":"subscribe","payload":{"query":"{a}"}}', /subscribe id/],
    ['a subscribe with an empty id', '{"type":"subscribe","id":"","payload":{"query":"{a}"}}', /subscribe id/],
    ['a subscribe without payload', '{"type":"subscribe","id":"1"}', /subscribe payload/],
    ['a subscribe whose query is not a string', '{"type":"subscribe","id":"1","payload":{"query":1}}', /payload/],
    [
      'variables that are a list',
      '{"type":"subscribe","id":"1","payload":{"query":"{a}","variables":[]}}',
      /variables/,
    ],
    [
      'an operationName that is a number',
      '{"type":"subscribe","id":"1","payload":{"query":"{a}","operationName":1}}',
      /operationName/,
    ],
    [
      'extensions that are a string',
      '{"type":"subscribe","id":"1","payload":{"query":"{a}","extensions":"x"}}',
      /extensions/,
    ],
    ['a complete without id', '{"type":"complete"}', /complete id/],
  ])('is refused when it has %s', (_what, text, reason) => {
    const parsed = parseClientMessage(text);
    expect(typeof parsed).toBe('string');
    expect(parsed).toMatch(reason);
  });

  it('gives a reason short enough for a close frame, whatever the client sent', () => {
    const reason = parseClientMessage(JSON.stringify({ type: 'x'.repeat(10_000) }));
    expect(typeof reason).toBe('string');
    expect(Buffer.byteLength(reason as string)).toBeLessThanOrEqual(123);
  });
});
