/** Opaque cursors for history paging (newest first). Versioned so their shape can change. */
import { badUserInput } from '../errors.js';

const encode = (text: string): string => Buffer.from(text, 'utf8').toString('base64url');
const decode = (cursor: string): string => Buffer.from(cursor, 'base64url').toString('utf8');

export function readingCursor(ts: Date): string {
  return encode(`r1:${ts.getTime()}`);
}

export function parseReadingCursor(cursor: string): Date {
  const m = /^r1:(-?\d{1,15})$/.exec(decode(cursor));
  if (!m) throw badUserInput('after', 'after is not a cursor returned by readings');
  return new Date(Number(m[1]));
}

export function alertPageCursor(ts: Date, id: string): string {
  return encode(`a1:${ts.getTime()}:${id}`);
}

export function parseAlertPageCursor(cursor: string): { ts: Date; id: string } {
  const m = /^a1:(-?\d{1,15}):(.+)$/s.exec(decode(cursor));
  if (!m) throw badUserInput('after', 'after is not a cursor returned by alerts');
  return { ts: new Date(Number(m[1])), id: m[2]! };
}

export function sensorPageCursor(createdAt: Date, id: string): string {
  return encode(`s1:${createdAt.getTime()}:${id}`);
}

export function parseSensorPageCursor(cursor: string): { createdAt: number; id: string } {
  const m = /^s1:(-?\d{1,15}):(.+)$/s.exec(decode(cursor));
  if (!m) throw badUserInput('after', 'after is not a cursor returned by sensors');
  return { createdAt: Number(m[1]), id: m[2]! };
}

export function incidentPageCursor(openedAt: Date, id: string): string {
  return encode(`i1:${openedAt.getTime()}:${id}`);
}

export function parseIncidentPageCursor(cursor: string): { openedAt: Date; id: string } {
  const m = /^i1:(-?\d{1,15}):(.+)$/s.exec(decode(cursor));
  if (!m) throw badUserInput('after', 'after is not a cursor returned by incidents');
  return { openedAt: new Date(Number(m[1])), id: m[2]! };
}
