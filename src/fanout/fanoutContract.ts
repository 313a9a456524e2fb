/**
 * What a fan-out of one stream of per-sensor items offers its users (fanout/alertFanout.ts
 * implements it on Redis; the feeds and the alert path use it), and the notices it carries.
 */
import type { ChainLink, OverheatAlert } from '../domain/alert.js';

/** `link`: the item's place in its partition's chains (undefined: it was stored before it was published). */
export type LiveListener<T> = (item: T, link: ChainLink | undefined) => void;
export type AlertListener = LiveListener<OverheatAlert>;
/** A partition's watermark moved: its items up to `watermark` are stored, and were published before this. */
export interface StreamProgress {
  readonly partition: number;
  readonly watermark: number;
  /** Offset of the last item published on the partition (at or above it: a bound; at most the watermark). */
  readonly last: number;
  /**
   * Where the sender's chain on the partition begins (AlertChain's bound before its first alert):
   * every item after it up to `watermark` was published by the sender, before this notice; every one
   * at or before it was stored when the sender took the partition. Unset: a sender without chains,
   * or from before this field.
   */
  readonly takenAt?: number;
}
/** How items of a stream travel on Redis. */
export interface StreamCodec<T> {
  encode(item: T): string;
  decode(text: string): T;
}
/** `hold`: live delivery may have lost alerts, keep live ones aside; `replay`: read the store from the cursor, then release them. */
export type ResyncPhase = 'hold' | 'replay';

/** The fan-out of one stream of per-sensor items (overheat alerts, incident updates). */
export interface Fanout<T> {
  /**
   * Publishes items to all replicas. Never throws: a failure is logged and counted (subscribers
   * recover through their cursor). `links[i]`, when given, is items[i]'s place in its partition's
   * chains: the item is published before it is stored.
   */
  publish(items: readonly T[], links?: readonly ChainLink[]): Promise<void>;
  /** Tells subscribers a partition's watermark moved (after items published before they were stored). */
  publishProgress(progress: StreamProgress): Promise<void>;
  /**
   * Listens to alerts of these sensors (all sensors when undefined). Resolves with the unsubscribe
   * function once Redis confirmed the subscription, or after `SUBSCRIBE_WAIT_MS` when Redis is down
   * (the subscription then resyncs when Redis returns).
   */
  listen(sensorIds: readonly string[] | undefined, listener: LiveListener<T>): Promise<() => void>;
  /** Progress notices of every partition (heard from before any listen() resolves). */
  onProgress(listener: (progress: StreamProgress) => void): () => void;
  /** Resync phases (see the module comment). */
  onResync(listener: (phase: ResyncPhase) => void): () => void;
  /** True between a `hold` and the `replay` that closes it: live alerts must not be released. */
  isHolding(): boolean;
  isReady(): boolean;
  stats(): { published: number; publishFailures: number; received: number };
  dispose(): Promise<void>;
}

export type AlertFanout = Fanout<OverheatAlert>;
