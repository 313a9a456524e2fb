/**
 * How a fan-out's items and notices travel on Redis: channel names on sharded pub/sub, the chain
 * prefix of an item published before it is stored, and the overheat alert's JSON form
 * (fanout/alertFanout.ts says why each is so).
 */
import type { ChainLink, OverheatAlert } from '../domain/alert.js';
import { carryTrace } from '../observability/tracing.js';
import { CLUSTER_SLOTS, keySlot } from '../shared/redisTarget.js';
import type { StreamProgress } from './fanoutContract.js';

/** Marks an item published with its place in its partition's chain (codecs write JSON: never this). */
export const CHAINED = '#';
/** Sharded pub/sub: channels per stream, each in its own sixteenth of the slots (the module comment). */
export const SHARD_GROUPS = 16;

/**
 * The hash tag of each group: the first `g<k>.<n>` whose slot falls in the k-th of SHARD_GROUPS
 * equal slot ranges (the same on every replica: a pure function of k).
 */
const SHARD_TAGS: readonly string[] = Array.from({ length: SHARD_GROUPS }, (_, k) => {
  const width = CLUSTER_SLOTS / SHARD_GROUPS;
  for (let n = 0; ; n++) {
    const tag = `g${k}.${n}`;
    if (Math.floor(keySlot(tag) / width) === k) return tag;
  }
});

/** A stream's channels on sharded pub/sub: items and progress notices of each partition group. */
export function shardChannels(channelPrefix: string, stream: string): { items: string[]; progress: string[] } {
  return {
    items: SHARD_TAGS.map((tag) => `${channelPrefix}:${stream}:{${tag}}`),
    progress: SHARD_TAGS.map((tag) => `${channelPrefix}:${stream}-progress:{${tag}}`),
  };
}

/**
 * A chained item travels as `#<prev>,<sensorPrev>\n<item>`. `#<prev>\n<item>` (a publisher from
 * before sensor chains) is still read: its subscribers to some sensors wait for the store.
 */
export function encodeLink(link: ChainLink): string {
  return link.sensorPrev === undefined ? String(link.prev) : `${link.prev},${link.sensorPrev}`;
}

export function decodeLink(text: string): ChainLink {
  const comma = text.indexOf(',');
  const prev = Number(comma < 0 ? text : text.slice(0, comma));
  const sensorPrev = comma < 0 ? undefined : Number(text.slice(comma + 1));
  if (!Number.isSafeInteger(prev) || (sensorPrev !== undefined && !Number.isSafeInteger(sensorPrev)))
    throw new Error('bad chain prefix');
  return { prev, sensorPrev };
}

/**
 * A progress notice travels as `<partition>:<watermark>:<last>:<takenAt>`; the three-number form (a
 * publisher from before `takenAt`) is still read. Readers from before it ignore the fourth number.
 */
export function encodeProgress(p: StreamProgress): string {
  const head = `${p.partition}:${p.watermark}:${p.last}`;
  return p.takenAt === undefined ? head : `${head}:${p.takenAt}`;
}

/** The notice, or undefined when the message is not one. */
export function decodeProgress(message: string): StreamProgress | undefined {
  const parts = message.split(':');
  if (parts.length < 3 || parts.length > 4) return undefined;
  const numbers = parts.map((part) => (part === '' ? NaN : Number(part)));
  if (!numbers.every((n) => Number.isSafeInteger(n))) return undefined;
  const [partition, watermark, last, takenAt] = numbers as [number, number, number, number | undefined];
  return takenAt === undefined ? { partition, watermark, last } : { partition, watermark, last, takenAt };
}

interface WireAlert {
  id: string;
  sensorId: string;
  temperature: number;
  threshold: number;
  ts: string;
  location: { lat: number; lon: number };
  detectedAt: string;
  partition: number;
  offset: number;
  /**
   * The `traceparent` of the alert's publish span, when it is traced (observability/tracing.ts):
   * the delivery spans of every replica join its trace. Never stored.
   */
  trace?: string;
}

/** The alert's JSON; `trace`, the publish span's `traceparent` of a traced alert. */
export function serializeAlert(a: OverheatAlert, trace?: string): string {
  const wire: WireAlert = {
    id: a.id,
    sensorId: a.sensorId,
    temperature: a.temperature,
    threshold: a.threshold,
    ts: a.ts.toISOString(),
    location: a.location,
    detectedAt: a.detectedAt.toISOString(),
    partition: a.position.partition,
    offset: a.position.offset,
  };
  if (trace !== undefined) wire.trace = trace;
  return JSON.stringify(wire);
}

export function deserializeAlert(text: string): OverheatAlert {
  const w = JSON.parse(text) as WireAlert;
  const alert: OverheatAlert = {
    id: w.id,
    sensorId: w.sensorId,
    temperature: w.temperature,
    threshold: w.threshold,
    ts: new Date(w.ts),
    location: w.location,
    detectedAt: new Date(w.detectedAt),
    position: { partition: w.partition, offset: w.offset },
  };
  if (typeof w.trace === 'string') carryTrace(alert, w.trace);
  return alert;
}
