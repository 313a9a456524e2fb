/**
 * Commands about one sensor that must apply in order with its readings: a new threshold, an
 * incident acknowledged. They travel in the readings topic, keyed by the sensor like its readings,
 * so they land in the same partition: the consumer that judges a reading has applied every command
 * sent before it, on whichever replica it runs. A message is a command when it carries the
 * `iot-command` header; readers of the topic that do not know commands skip such messages.
 */
import { SENSOR_ID_PATTERN } from './reading.js';

export const COMMAND_HEADER = 'iot-command';

export type SensorCommand =
  | {
      readonly kind: 'threshold';
      readonly sensorId: string;
      readonly thresholdC: number;
      readonly hysteresisC: number;
      readonly issuedBy: string;
      readonly issuedAt: Date;
    }
  | {
      readonly kind: 'acknowledge';
      readonly sensorId: string;
      readonly incidentId: string;
      readonly note: string | null;
      readonly issuedBy: string;
      readonly issuedAt: Date;
    };

export type CommandKind = SensorCommand['kind'];
const KINDS: readonly CommandKind[] = ['threshold', 'acknowledge'];

export const MAX_NOTE_LENGTH = 500;

export function encodeCommand(command: SensorCommand): { key: string; value: string; headers: Record<string, string> } {
  const { kind, issuedAt, ...rest } = command;
  return {
    key: command.sensorId,
    value: JSON.stringify({ ...rest, issuedAt: issuedAt.toISOString() }),
    headers: { [COMMAND_HEADER]: kind },
  };
}

/** The command kind a message header names, or undefined when the message is not a command. */
export function commandKindOf(headers: Record<string, unknown> | undefined): string | undefined {
  const raw = headers?.[COMMAND_HEADER];
  if (raw === undefined) return undefined;
  if (Buffer.isBuffer(raw)) return raw.toString('utf8');
  return typeof raw === 'string' ? raw : '';
}

export type DecodedCommand = { ok: true; command: SensorCommand } | { ok: false; field: string; message: string };

const fail = (field: string, message: string): DecodedCommand => ({ ok: false, field, message });

/** Decodes a command message; anything malformed is refused with the field at fault (it is dead-lettered). */
export function decodeCommand(kind: string, value: Buffer | null, key: Buffer | null): DecodedCommand {
  if (!KINDS.includes(kind as CommandKind)) return fail(COMMAND_HEADER, `unknown command "${kind.slice(0, 40)}"`);
  let o: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(value?.toString('utf8') ?? '');
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return fail('', 'not a JSON object');
    o = parsed as Record<string, unknown>;
  } catch {
    return fail('', 'not valid JSON');
  }
  const sensorId = o.sensorId;
  if (typeof sensorId !== 'string' || !SENSOR_ID_PATTERN.test(sensorId)) return fail('sensorId', 'not a sensor id');
  if (key !== null && key.toString('utf8') !== sensorId) return fail('sensorId', 'message key must equal sensorId');
  const issuedAt = typeof o.issuedAt === 'string' ? new Date(o.issuedAt) : undefined;
  if (!issuedAt || Number.isNaN(issuedAt.getTime())) return fail('issuedAt', 'not a timestamp');
  if (typeof o.issuedBy !== 'string' || o.issuedBy.length === 0) return fail('issuedBy', 'missing');
  if (kind === 'threshold') {
    const { thresholdC, hysteresisC } = o;
    if (typeof thresholdC !== 'number' || !Number.isFinite(thresholdC)) return fail('thresholdC', 'not a number');
    if (typeof hysteresisC !== 'number' || !Number.isFinite(hysteresisC) || hysteresisC < 0)
      return fail('hysteresisC', 'not a non-negative number');
    return {
      ok: true,
      command: { kind: 'threshold', sensorId, thresholdC, hysteresisC, issuedBy: o.issuedBy, issuedAt },
    };
  }
  if (typeof o.incidentId !== 'string' || o.incidentId.length === 0 || o.incidentId.length > 200)
    return fail('incidentId', 'not an incident id');
  const note = o.note ?? null;
  if (note !== null && (typeof note !== 'string' || note.length > MAX_NOTE_LENGTH))
    return fail('note', `a string of at most ${MAX_NOTE_LENGTH} characters`);
  return {
    ok: true,
    command: { kind: 'acknowledge', sensorId, incidentId: o.incidentId, note, issuedBy: o.issuedBy, issuedAt },
  };
}
