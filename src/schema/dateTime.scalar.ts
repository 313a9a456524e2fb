/** `DateTime`: an ISO-8601 timestamp with a zone on the wire, a JS Date inside. */
import { GraphQLScalarType, Kind } from 'graphql';
import { badUserInput } from '../errors.js';
import { parseTimestamp } from '../domain/reading.js';

export const DateTimeScalar = new GraphQLScalarType<Date, string>({
  name: 'DateTime',
  description:
    'An ISO-8601 timestamp with a time zone, e.g. 2026-11-28T07:00:00.000Z. Serialized in UTC with milliseconds.',
  serialize(value) {
    const d = parseTimestamp(value);
    if (!d) throw new TypeError(`DateTime cannot represent ${String(value)}`);
    return d.toISOString();
  },
  parseValue(value) {
    const d = typeof value === 'string' ? parseTimestamp(value) : undefined;
    if (!d)
      throw badUserInput('DateTime', `DateTime must be an ISO-8601 string with a zone, got ${JSON.stringify(value)}`);
    return d;
  },
  parseLiteral(ast) {
    const d = ast.kind === Kind.STRING ? parseTimestamp(ast.value) : undefined;
    if (!d) throw badUserInput('DateTime', 'DateTime must be an ISO-8601 string with a zone');
    return d;
  },
});
