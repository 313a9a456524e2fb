#!/usr/bin/env node
// Waits until the local services answer real requests, not just accept TCP:
//   redis  -> PING
//   kafka  -> metadata (listTopics), group coordinator ready (creates __consumer_offsets),
//             idempotent producer id allocation (InitProducerId)
//   mongo  -> { ping: 1 } (FerretDB)
// Usage: node scripts/wait-for-services.mjs [--only redis,kafka,mongo] [--timeout 90]
// Endpoints: REDIS_URL / KAFKA_BROKERS / MONGO_URL, else 127.0.0.1 + REDIS_PORT / KAFKA_PORT / MONGO_PORT.
// Exit codes: 0 all healthy, 1 timeout/failure, 2 a client library is not installed (run npm ci).

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : def;
};
const only = opt('only', 'redis,kafka,mongo')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const timeoutMs = Number(opt('timeout', process.env.SERVICES_WAIT_TIMEOUT || '90')) * 1000;
const quiet = args.includes('--quiet');
const deadline = Date.now() + timeoutMs;

const env = process.env;
const redisUrl = env.REDIS_URL || `redis://127.0.0.1:${env.REDIS_PORT || 6379}`;
const kafkaBrokers = (env.KAFKA_BROKERS || `127.0.0.1:${env.KAFKA_PORT || 9092}`).split(',');
const mongoUrl = env.MONGO_URL || `mongodb://127.0.0.1:${env.MONGO_PORT || 27017}/`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => {
  if (!quiet) console.log('[wait-for-services]', ...a);
};

async function load(name) {
  try {
    return await import(name);
  } catch {
    console.error(`[wait-for-services] cannot load '${name}' (run npm ci first)`);
    process.exit(2);
  }
}

async function retry(name, fn) {
  let last;
  let attempt = 0;
  while (Date.now() < deadline) {
    attempt++;
    try {
      const t0 = Date.now();
      await fn();
      log(`${name}: ready (${Date.now() - t0} ms${attempt > 1 ? `, after ${attempt} attempts` : ''})`);
      return;
    } catch (e) {
      last = e;
      await sleep(Math.min(250 * attempt, 1000));
    }
  }
  throw new Error(`${name}: not ready after ${timeoutMs / 1000}s: ${last?.message ?? last}`);
}

const checks = {
  async redis() {
    const { default: Redis } = await load('ioredis');
    await retry('redis', async () => {
      const r = new Redis(redisUrl, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        connectTimeout: 2000,
      });
      r.on('error', () => {});
      try {
        await r.connect();
        if ((await r.ping()) !== 'PONG') throw new Error('bad PING reply');
      } finally {
        r.disconnect();
      }
    });
  },
  async kafka() {
    const { Kafka, logLevel } = (await load('kafkajs')).default ?? (await load('kafkajs'));
    const kafka = new Kafka({
      clientId: 'wait-for-services',
      brokers: kafkaBrokers,
      logLevel: logLevel.NOTHING,
      connectionTimeout: 2000,
      retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1000 },
    });
    await retry('kafka', async () => {
      const admin = kafka.admin();
      try {
        await admin.connect();
        await admin.listTopics(); // metadata
        await admin.describeGroups(['__wait_for_services']); // group coordinator (creates __consumer_offsets)
      } finally {
        await admin.disconnect().catch(() => {});
      }
      const producer = kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        retry: { retries: 3 },
      });
      try {
        await producer.connect(); // InitProducerId
      } finally {
        await producer.disconnect().catch(() => {});
      }
    });
  },
  async mongo() {
    const { MongoClient } = await load('mongodb');
    await retry('mongo', async () => {
      const client = new MongoClient(mongoUrl, { serverSelectionTimeoutMS: 2000, connectTimeoutMS: 2000 });
      try {
        await client.connect();
        await client.db('admin').command({ ping: 1 });
      } finally {
        await client.close().catch(() => {});
      }
    });
  },
};
// accept "ferretdb" as an alias of "mongo"
const names = only.map((s) => (s === 'ferretdb' ? 'mongo' : s));
for (const n of names)
  if (!checks[n]) {
    console.error(`[wait-for-services] unknown service '${n}'`);
    process.exit(1);
  }

const results = await Promise.allSettled(names.map((n) => checks[n]()));
const failed = results.filter((r) => r.status === 'rejected');
for (const f of failed) console.error('[wait-for-services]', f.reason?.message ?? f.reason);
process.exit(failed.length ? 1 : 0);
