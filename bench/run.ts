/**
 * npm run bench — the pipeline against the real local services and 2 API replicas, next to the
 * raw limits of each part measured in the same run. Prints a table; writes bench-results/*.json.
 *
 *   npm run bench                      default profile (under 10 minutes on 2 cores)
 *   npm run bench -- --quick           a smoke run (about 2 minutes)
 *   npm run bench -- --full            30-60 s windows, 50k readings/s, 10M history
 *   npm run bench -- --only=history --history-stored=10000000 --history-queries=200
 *   npm run bench -- --only=raw,latency,ingest,fanout,memory,history,pressure   (pressure: --behind=N)
 *   npm run bench -- --profile     CPU profile of the replicas per scenario, top frames printed
 *   npm run bench -- --only=raw --redis-cluster   the raw Redis row on a Redis Cluster too (sharded pub/sub;
 *                                      with other parts, e.g. --only=fanout, the replicas' fan-out runs on it;
 *                                      scripts/redis-cluster.sh start, or REDIS_CLUSTER_NODES)
 *   npm run bench -- --only=fanout --fanout-steps=4000,6000 --alert-rates=120   chosen steps of both sweeps
 *   npm run bench -- --history-apart   the replicas run the alert path only, a third process history (KAFKA_CONSUMERS)
 *   npm run bench -- --only=latency --latency=2000:100:10   one latency row: readings/s, subscribers,
 *                                      1 reading in N critical
 *   OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 npm run bench -- --only=latency --traced=100
 *                                      the same with tracing on (an OTLP/HTTP receiver at that address),
 *                                      one reading in 100 carrying a sampled traceparent
 *   npm run bench -- --only=kinds      subscribers to all sensors beside 1, 10 and 200 sensorIds and a
 *                                      scoped key, in one window (2,000 readings/s, 1 in 10 critical)
 *   npm run bench -- --only=live       readingUpdates subscribers side by side in one window: dashboards
 *                                      (all sensors, maxPerSecond 2), 10 sensors every reading, all sensors
 *                                      every reading; --live-rate=2000 --live-sensors=200 --live-seconds=S
 *                                      --live-subs=DASHBOARDS:TEN:HEAVY; replica CPU with nobody subscribed
 *   npm run bench -- --only=storm --storm-minutes=10 --storm-stored=5000000 --storm-churn
 *                                      the storm: that load for minutes, half the subscribers filtered,
 *                                      per minute, on a store first filled with days of alerts, a
 *                                      third replica joining then leaving mid-load (--storm-churn)
 *
 * History stores whole sensors of 30 days at 10 s (259,200 readings each): 1M by default (4
 * sensors), 10M with --full (39), so a query reads the same documents at either size and the two
 * runs show whether its cost grows with what is stored (bench/scenarios/history.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { topFrames } from './lib/profile.js';
import { run as idleMemoryRaw } from './raw/idleMemory.js';
import { LOCAL_CLUSTER_NODES } from './raw/redis.js';
import { startCluster, type Cluster } from './lib/replicas.js';
import { machine, type Figure } from './lib/stats.js';
import { alertLatency } from './scenarios/alertLatency.js';
import { alertStorm, fillStoreWithAlerts, scopedApiKey, subscriberKinds } from './scenarios/alertStorm.js';
import { fanout, idleSubscriptionMemory } from './scenarios/fanout.js';
import { history } from './scenarios/history.js';
import { liveKinds, liveReadings } from './scenarios/liveReadings.js';
import { pressure } from './scenarios/pressure.js';
import { sustainedIngest } from './scenarios/sustainedIngest.js';
import { stopIdlePolling } from '../src/stream/kafka.js';

// The bench's own Kafka clients, like the replicas': no 1 ms polling of idle connections.
stopIdlePolling();
const args = new Set(process.argv.slice(2));
const flag = (name: string): string | undefined => [...args].find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
/** A comma-separated list of numbers (`--fanout-steps=4000,6000`); empty: none. */
const numbers = (text: string | undefined): number[] | undefined =>
  text === undefined ? undefined : text.split(',').filter(Boolean).map(Number);
const profile = args.has('--full') ? 'full' : args.has('--quick') ? 'quick' : 'default';
const only = flag('only')?.split(',');
const wants = (part: string): boolean => !only || only.includes(part);
const profiling = process.argv.includes('--profile');
const profileRoot = `bench-results/profiles/${new Date().toISOString().replace(/[:.]/g, '-')}`;
/** --profile: where a cluster's replicas write their CPU profiles. */
const profileDirFor = (scenario: string): string | undefined => (profiling ? `${profileRoot}/${scenario}` : undefined);
/** Stops a cluster and, with --profile, prints the top frames of its replicas' CPU profiles. */
async function stopCluster(cluster: Cluster, scenario: string): Promise<void> {
  await cluster.stop();
  const dir = profileDirFor(scenario);
  if (!dir) return;
  console.error(`  CPU profile of the replicas (${scenario}), self time, top frames; files in ${dir}:`);
  for (const line of topFrames(dir)) console.error(`    ${line}`);
}

const P = {
  quick: {
    windowMs: 5000,
    rates: [1000],
    subs: [1, 100],
    ingestRates: [2000, 5000],
    ingestWindowMs: 10_000,
    fanoutSubs: 200,
    alertRates: [20, 80],
    fanoutSteps: [500, 2000],
    fanoutSweepRate: 25,
    idle: 2000,
    historyStored: 259_200,
    historyQueries: 20,
    kindsMs: 20_000,
    stormMinutes: 2,
    stormStored: 100_000,
    liveMs: 15_000,
    liveIdleMs: 10_000,
    liveSubs: { dashboard: 10, tenSensors: 10, heavy: 2 },
  },
  default: {
    windowMs: 10_000,
    rates: [1000, 10_000],
    subs: [1, 100, 1000],
    ingestRates: [1000, 2000, 5000, 10_000, 20_000, 30_000],
    ingestWindowMs: 15_000,
    fanoutSubs: 1000,
    alertRates: [10, 20, 40, 80, 120, 160, 240, 320],
    fanoutSteps: [1000, 2000, 4000, 6000, 8000, 9000, 10_000],
    fanoutSweepRate: 25,
    idle: 10_000,
    historyStored: 1_000_000,
    historyQueries: 200,
    kindsMs: 60_000,
    stormMinutes: 10,
    stormStored: 5_000_000,
    liveMs: 60_000,
    liveIdleMs: 20_000,
    liveSubs: { dashboard: 20, tenSensors: 20, heavy: 4 },
  },
  full: {
    windowMs: 30_000,
    rates: [1000, 10_000, 50_000],
    subs: [1, 100, 1000],
    ingestRates: [5000, 10_000, 20_000, 30_000, 50_000, 75_000],
    ingestWindowMs: 60_000,
    fanoutSubs: 1000,
    alertRates: [50, 100, 200, 400, 800],
    fanoutSteps: [1000, 2000, 4000, 6000, 8000, 9000, 10_000, 12_000],
    fanoutSweepRate: 25,
    idle: 10_000,
    historyStored: 10_000_000,
    historyQueries: 200,
    kindsMs: 60_000,
    stormMinutes: 10,
    stormStored: 5_000_000,
    liveMs: 60_000,
    liveIdleMs: 20_000,
    liveSubs: { dashboard: 20, tenSensors: 20, heavy: 4 },
  },
}[profile];

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

function versions(): Record<string, string> {
  const lock = JSON.parse(readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8')) as {
    packages: Record<string, { version?: string }>;
  };
  const v = (name: string) => lock.packages[`node_modules/${name}`]?.version ?? '?';
  const cmd = (file: string, a: string[]) => {
    try {
      return execFileSync(file, a, { encoding: 'utf8' }).trim().split('\n')[0]!;
    } catch {
      return '?';
    }
  };
  return {
    kafkajs: v('kafkajs'),
    mongodb: v('mongodb'),
    ioredis: v('ioredis'),
    'graphql-ws': v('graphql-ws'),
    ws: v('ws'),
    graphql: v('graphql'),
    '@apollo/server': v('@apollo/server'),
    'type-graphql': v('type-graphql'),
    kafka:
      /<kafka\.version>([^<]+)/.exec(
        readFileSync(new URL('../services/kafka/pom.xml', import.meta.url), 'utf8'),
      )?.[1] ?? '?',
    ferretdb: cmd('.cache/bin/ferretdb', ['--version']).replace(/^version:\s*/, ''),
    redis: cmd('redis-server', ['--version']),
  };
}

/**
 * --redis-cluster: the raw Redis row is run a second time on a Redis Cluster (REDIS_CLUSTER_NODES, else
 * scripts/redis-cluster.sh's local one, which must be up), on sharded pub/sub: `raw.redis-cluster.*`.
 */
const redisCluster = args.has('--redis-cluster')
  ? (process.env.REDIS_CLUSTER_NODES?.split(',').filter(Boolean) ?? LOCAL_CLUSTER_NODES)
  : undefined;

async function rawLimits(): Promise<Figure[]> {
  const out: Figure[] = [];
  const parts: [string, { cluster?: readonly string[] }][] = [
    ['kafka', {}],
    ['redis', {}],
    ...(redisCluster ? [['redis', { cluster: redisCluster }] as [string, { cluster?: readonly string[] }]] : []),
    ['ws', {}],
    ['store', {}],
  ];
  for (const [part, extra] of parts) {
    try {
      const mod = (await import(`./raw/${part}.js`)) as {
        run: (o: { durationMs: number; cluster?: readonly string[] }) => Promise<Figure[]>;
      };
      console.error(`raw limit: ${part}${extra.cluster ? ' (Redis Cluster, sharded pub/sub)' : ''}`);
      out.push(...(await mod.run({ durationMs: P.windowMs, ...extra })));
    } catch (err) {
      console.error(`  raw ${part} failed: ${(err as Error).message}`);
    }
  }
  return out;
}

function fmt(x: number | undefined, digits = 1): string {
  if (x === undefined || Number.isNaN(x)) return '';
  return x >= 1000 ? Math.round(x).toLocaleString('en-US') : x.toFixed(digits);
}

async function main(): Promise<void> {
  for (const [name, port] of [
    ['Kafka', 9092],
    ['MongoDB/FerretDB', 27017],
    ['Redis', 6379],
  ] as const) {
    if (!(await portOpen(port))) {
      console.error(`${name} is not listening on 127.0.0.1:${port}. Start the services first: npm run services`);
      process.exit(2);
    }
  }
  const started = Date.now();
  console.error(`bench profile "${profile}"`);
  const figures: Figure[] = [];
  if (wants('raw')) figures.push(...(await rawLimits()));

  if (wants('memory')) {
    console.error('raw limit: idle connection memory');
    figures.push(...(await idleMemoryRaw({ connections: P.idle })));
  }

  if (wants('latency') || wants('kinds') || wants('live') || wants('fanout') || wants('memory') || wants('history')) {
    // Retention beyond the 30 days history loads: a purge must not cut its oldest day mid-run (the
    // replicas purge whole days older than READINGS_RETENTION, default 30 d, every 10 minutes).
    // --history-apart: the 2 replicas run the alert path only, and a third process reading history.
    const cluster = await startCluster(
      'bench',
      2,
      {
        READINGS_RETENTION: '35d',
        API_KEYS: scopedApiKey(),
        // --redis-cluster: the replicas' fan-out on the Redis Cluster too (sharded pub/sub).
        ...(redisCluster ? { REDIS_CLUSTER_NODES: redisCluster.join(',') } : {}),
      },
      4501,
      profileDirFor('main'),
      args.has('--history-apart') ? 1 : 0,
    );
    try {
      // History first, on a cluster nothing else has loaded yet: its latencies are the store's alone.
      if (wants('history')) {
        console.error('history');
        figures.push(
          ...(await history(cluster, {
            stored: Number(flag('history-stored') ?? P.historyStored),
            queries: Number(flag('history-queries') ?? P.historyQueries),
          })),
        );
      }
      if (wants('latency')) {
        // --latency=RATE:SUBS:N runs one row. Otherwise the standard rows (1 reading in 100 critical),
        // then the goal of issue "under pressure": 2,000 readings/s, 1 in 10 critical (200 alerts/s),
        // 100 subscribers over the 2 replicas (20,000 deliveries/s), p99 <= 25 ms.
        const oneRow = flag('latency')?.split(':').map(Number);
        const runs = oneRow
          ? [{ rates: [oneRow[0] ?? 2000], subscriberCounts: [oneRow[1] ?? 100], criticalEvery: oneRow[2] ?? 10 }]
          : [
              { rates: P.rates, subscriberCounts: P.subs, criticalEvery: 100 },
              { rates: [2000], subscriberCounts: [100], criticalEvery: 10 },
            ];
        console.error('alert latency');
        const tracedEvery = Number(flag('traced') ?? 0);
        for (const r of runs)
          figures.push(...(await alertLatency(cluster, { ...r, durationMs: P.windowMs, tracedEvery })));
      }
      await cluster.waitIdle();
      if (wants('kinds')) {
        // The issue's load: 2,000 readings/s from 200 sensors, 1 in 10 critical, 100 subscribers.
        console.error('alerts by subscriber kind');
        figures.push(
          ...(await alertStorm(cluster, {
            name: 'alert.kinds',
            rate: 2000,
            criticalEvery: 10,
            sensors: 200,
            kinds: subscriberKinds(200, { all: 40, filtered: 15 }),
            durationMs: Number(flag('kinds-seconds') ?? P.kindsMs / 1000) * 1000,
          })),
        );
        await cluster.waitIdle();
      }
      if (wants('live')) {
        // Live readings (readingUpdates): 2,000 readings/s from 200 sensors by default, dashboards,
        // 10-sensor subscribers and subscribers to every reading of every sensor, in one window.
        console.error('live readings');
        const [dashboard, tenSensors, heavy] = numbers(flag('live-subs')?.replaceAll(':', ',')) ?? [];
        figures.push(
          ...(await liveReadings(cluster, {
            rate: Number(flag('live-rate') ?? 2000),
            sensors: Number(flag('live-sensors') ?? 200),
            durationMs: Number(flag('live-seconds') ?? P.liveMs / 1000) * 1000,
            idleMs: P.liveIdleMs,
            kinds: liveKinds({
              dashboard: dashboard ?? P.liveSubs.dashboard,
              tenSensors: tenSensors ?? P.liveSubs.tenSensors,
              heavy: heavy ?? P.liveSubs.heavy,
            }),
          })),
        );
        await cluster.waitIdle();
      }
      if (wants('fanout')) {
        console.error('fan-out');
        figures.push(
          ...(await fanout(cluster, {
            subscribers: P.fanoutSubs,
            alertRates: numbers(flag('alert-rates')) ?? P.alertRates,
            durationMs: P.windowMs,
            subscriberSteps: numbers(flag('fanout-steps')) ?? P.fanoutSteps,
            sweepRate: P.fanoutSweepRate,
          })),
        );
      }
      if (wants('memory')) {
        console.error('idle subscription memory');
        figures.push(...(await idleSubscriptionMemory(cluster, { subscriptions: P.idle })));
      }
    } finally {
      await stopCluster(cluster, 'main');
    }
  }
  if (wants('storm')) {
    // A store already holding days of alerts, then minutes of the issue's load with half of the
    // 100 subscribers filtered (200 sensorIds, 10 sensorIds, a scoped key).
    console.error('the storm');
    const cluster = await startCluster(
      'bench-storm',
      2,
      { API_KEYS: scopedApiKey(), ALERTS_RETENTION: '30d' },
      4531,
      profileDirFor('storm'),
    );
    try {
      await fillStoreWithAlerts(cluster.env, Number(flag('storm-stored') ?? P.stormStored));
      const [all, , ten, twoHundred, scoped] = subscriberKinds(200, { all: 50, filtered: 17 });
      figures.push(
        ...(await alertStorm(cluster, {
          name: 'alert.storm',
          rate: 2000,
          criticalEvery: 10,
          sensors: 200,
          kinds: [all!, { ...ten!, count: 17 }, { ...twoHundred!, count: 17 }, { ...scoped!, count: 16 }],
          durationMs: Number(flag('storm-minutes') ?? P.stormMinutes) * 60_000,
          churn: args.has('--storm-churn') || profile !== 'quick',
        })),
      );
    } finally {
      await stopCluster(cluster, 'storm');
    }
  }
  if (wants('pressure')) {
    console.error('under pressure');
    const budgetBytes = 2 * 1_048_576;
    const cluster = await startCluster(
      'bench-pressure',
      1,
      { LIMIT_SOCKET_BUDGET_BYTES: String(budgetBytes) },
      4521,
      profileDirFor('pressure'),
    );
    try {
      figures.push(
        ...(await pressure(cluster, {
          alertRate: 100,
          pausedMs: 20_000,
          behind: Number(flag('behind') ?? 10_000),
          budgetBytes,
        })),
      );
    } finally {
      await stopCluster(cluster, 'pressure');
    }
  }
  if (wants('ingest')) {
    // The bucket layout writes one bucket part and one day document per sensor and write: the fleet
    // size, not only the rate, sets the cost of a write. Measured for a small and a large fleet.
    for (const sensors of [100, 1000]) {
      console.error(`sustained ingest, ${sensors} sensors`);
      const cluster = await startCluster(`bench-ingest-${sensors}`, 2, {}, 4511, profileDirFor(`ingest-${sensors}`));
      try {
        figures.push(
          ...(await sustainedIngest(cluster, {
            rates: sensors === 100 ? P.ingestRates : P.ingestRates.slice(0, 2),
            windowMs: P.ingestWindowMs,
            sensors,
          })),
        );
      } finally {
        await stopCluster(cluster, `ingest-${sensors}`);
      }
    }
  }

  // Each figure next to its raw limit: latency as a multiple of the limit's p50, rates as a fraction.
  const byName = new Map(figures.map((f) => [f.name, f]));
  for (const f of figures) {
    const limit = f.limit ? byName.get(f.limit) : undefined;
    if (!limit) continue;
    if (f.latency && limit.latency) f.ratio = f.latency.p50 / limit.latency.p50;
    else if (f.rate !== undefined && limit.rate) f.ratio = f.rate / limit.rate;
    else if (f.value !== undefined && limit.value) f.ratio = f.value / limit.value;
  }

  const rows = figures.map((f) => [
    f.name,
    fmt(f.latency?.p50, 2),
    fmt(f.latency?.p90, 2),
    fmt(f.latency?.p99, 2),
    fmt(f.latency?.p999, 2),
    fmt(f.latency?.max, 2),
    f.rate !== undefined ? fmt(f.rate, 0) : f.value !== undefined ? fmt(f.value, 2) : '',
    f.unit ?? '',
    f.ratio !== undefined ? `${f.ratio.toFixed(2)} × ${f.limit}` : '',
  ]);
  const header = ['figure', 'p50 ms', 'p90', 'p99', 'p99.9', 'max', 'rate/value', 'unit', 'vs raw limit'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const table = [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
  console.log(table);

  const report = {
    profile,
    startedAt: new Date(started).toISOString(),
    durationS: Math.round((Date.now() - started) / 1000),
    machine: machine(),
    versions: versions(),
    figures,
  };
  mkdirSync('bench-results', { recursive: true });
  const file = `bench-results/bench-${new Date(started).toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, JSON.stringify(report, null, 2));
  writeFileSync('bench-results/latest.json', JSON.stringify(report, null, 2));
  writeFileSync('bench-results/latest.md', `${table}\n`);
  console.error(`\nwritten ${file} (and bench-results/latest.json, latest.md) in ${report.durationS} s`);
  process.exit(0);
}

await main();
