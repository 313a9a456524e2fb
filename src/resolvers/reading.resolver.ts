import { Arg, Ctx, ID, Int, Mutation, Query, Resolver } from 'type-graphql';
import { checkScope, principalOf } from '../auth/policy.js';
import { validateReading, type Reading as DomainReading } from '../domain/reading.js';
import { DependencyError, ErrorCode, badUserInput, limitExceeded, retryable } from '../errors.js';
import { endSpan, SpanKind, traceparentOf } from '../observability/tracing.js';
import { DateTimeScalar } from '../schema/dateTime.scalar.js';
import { ReadingConnection } from '../schema/connection.type.js';
import { IngestResult, Reading, ReadingInput } from '../schema/reading.type.js';
import { ReadingStats, StatsInterval } from '../schema/readingStats.type.js';
import { INTERVAL_MS, floorTo } from '../domain/readingBuckets.js';
import { parseReadingCursor, readingCursor } from './pageCursor.js';
import type { GraphQLContext, Services } from './services.js';
import { checkPageSize, checkSensorId } from './validate.js';

@Resolver(() => Reading)
export class ReadingResolver {
  constructor(private readonly services: Services) {}

  @Query(() => ReadingConnection, {
    description: 'Stored readings of one sensor, newest first, optionally within [from, to].',
  })
  async readings(
    @Arg('sensorId', () => ID) sensorId: string,
    @Arg('from', () => DateTimeScalar, { nullable: true }) from?: Date | null,
    @Arg('to', () => DateTimeScalar, { nullable: true }) to?: Date | null,
    @Arg('first', () => Int, { nullable: true, description: 'Page size, default 50.' }) first?: number | null,
    @Arg('after', () => String, { nullable: true, description: '`endCursor` of the previous page.' })
    after?: string | null,
    @Ctx() ctx?: GraphQLContext,
  ): Promise<ReadingConnection> {
    checkSensorId(sensorId, 'sensorId');
    checkScope(principalOf(ctx ?? {}), [sensorId], 'sensorId');
    if (from && to && from.getTime() > to.getTime()) throw badUserInput('from', 'from must not be after to');
    const pageSize = checkPageSize(first, this.services.config.limits.historyMaxPage);
    const beforeTs = after ? parseReadingCursor(after) : undefined;
    const page = await this.services.readGate.run(() =>
      this.services.store.readings.page({
        sensorId,
        from: from ?? undefined,
        to: to ?? undefined,
        first: pageSize,
        beforeTs,
      }),
    );
    const edges = page.items.map((node) => ({ cursor: readingCursor(node.ts), node }));
    return {
      edges,
      nodes: edges.map((e) => e.node),
      pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null },
    };
  }

  @Query(() => [ReadingStats], {
    description:
      'Count, min, max and mean per interval for one sensor, oldest first; empty intervals are left out. `from` is rounded down to the interval. Answered from stored summaries. At most LIMIT_STATS_MAX_POINTS intervals per call (LIMIT_EXCEEDED).',
  })
  async readingStats(
    @Arg('sensorId', () => ID) sensorId: string,
    @Arg('from', () => DateTimeScalar) from: Date,
    @Arg('to', () => DateTimeScalar) to: Date,
    @Arg('every', () => StatsInterval) every: StatsInterval,
    @Ctx() ctx?: GraphQLContext,
  ): Promise<ReadingStats[]> {
    checkSensorId(sensorId, 'sensorId');
    checkScope(principalOf(ctx ?? {}), [sensorId], 'sensorId');
    if (from.getTime() > to.getTime()) throw badUserInput('from', 'from must not be after to');
    const max = this.services.config.limits.statsMaxPoints;
    const points = Math.floor((to.getTime() - floorTo(from.getTime(), every)) / INTERVAL_MS[every]) + 1;
    if (points > max)
      throw limitExceeded('to', `at most ${max} points per call; this window has ${points} at ${every}`, max);
    const stats = await this.services.readGate.run(() =>
      this.services.store.readings.stats({ sensorId, from, to, every }),
    );
    return stats.map(({ start, summary: s }) => ({
      start,
      count: s.n,
      temperature: { min: s.tMin, max: s.tMax, avg: s.tSum / s.n },
      humidity: { min: s.hMin, max: s.hMax, avg: s.hSum / s.n },
    }));
  }

  @Mutation(() => IngestResult, {
    description:
      'Pushes readings from a device or gateway through the same Kafka topic as simulated ones. Resolves once Kafka acknowledged them. On KAFKA_UNAVAILABLE, retry: duplicates are absorbed.',
  })
  async ingestReadings(
    @Arg('readings', () => [ReadingInput]) inputs: ReadingInput[],
    @Ctx() ctx?: GraphQLContext,
  ): Promise<IngestResult> {
    const principal = principalOf(ctx ?? {});
    const { limits, readings: readingLimits } = this.services.config;
    if (inputs.length === 0) throw badUserInput('readings', 'readings must not be empty');
    if (inputs.length > limits.maxIngestBatch) {
      throw limitExceeded('readings', `at most ${limits.maxIngestBatch} readings per request`, limits.maxIngestBatch);
    }
    const now = Date.now();
    const readings: DomainReading[] = inputs.map((input, i) => {
      const plain = {
        sensorId: input.sensorId,
        ts: input.ts,
        temperature: input.temperature,
        humidity: input.humidity,
        location: { lat: input.location.lat, lon: input.location.lon },
      };
      const result = validateReading(plain, readingLimits, now);
      if (!result.ok) {
        const field = `readings[${i}]${result.rejection.field ? `.${result.rejection.field}` : ''}`;
        throw badUserInput(field, `${field}: ${result.rejection.message}`);
      }
      return result.reading;
    });
    // A device writes only its own sensors; the whole batch is refused, nothing is half-sent.
    checkScope(
      principal,
      readings.map((r) => r.sensorId),
      'readings',
    );
    await this.services.rateLimiter.take('ingest', principal.id, readings.length);
    const { tracing } = this.services;
    // Traced: an ingest span, child of the caller's traceparent (or a root the sampler decides on).
    const span = tracing?.enabled
      ? tracing.start('ingest readings', ctx?.traceparent, {
          kind: SpanKind.SERVER,
          attributes: { 'graphql.operation.name': 'ingestReadings', 'readings.count': readings.length },
        })
      : undefined;
    try {
      await this.services.producer.send(readings, undefined, span && traceparentOf(span));
      span?.end();
    } catch (err) {
      if (span) endSpan(span, err);
      if (err instanceof DependencyError)
        throw retryable(ErrorCode.KAFKA_UNAVAILABLE, `${err.message}. Retry: readings are deduplicated.`);
      throw err;
    }
    return { accepted: readings.length };
  }
}
