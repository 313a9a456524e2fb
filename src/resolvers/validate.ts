/** GraphQL argument checks shared by resolvers: each failure names its field, code BAD_USER_INPUT. */
import { badUserInput, limitExceeded } from '../errors.js';
import { SENSOR_ID_PATTERN } from '../domain/reading.js';

export function checkSensorId(value: string, field: string): string {
  if (!SENSOR_ID_PATTERN.test(value)) {
    throw badUserInput(
      field,
      `${field} must be 1-128 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit`,
    );
  }
  return value;
}

export function checkSensorIds(
  values: readonly string[] | null | undefined,
  field: string,
  max = 1000,
): string[] | undefined {
  if (values === null || values === undefined) return undefined;
  if (values.length > max) throw limitExceeded(field, `${field} may list at most ${max} ids`, max);
  values.forEach((v, i) => checkSensorId(v, `${field}[${i}]`));
  return [...values];
}

export function checkPageSize(first: number | null | undefined, max: number, fallback = 50): number {
  if (first === null || first === undefined) return Math.min(fallback, max);
  if (!Number.isInteger(first) || first < 1) throw badUserInput('first', 'first must be a positive integer');
  if (first > max) throw limitExceeded('first', `first may be at most ${max}`, max);
  return first;
}
