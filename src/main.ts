/**
 * Entry point of one API replica: `npm start`. Parses the configuration once, starts the app,
 * and stops it in order on SIGTERM/SIGINT within SHUTDOWN_TIMEOUT_MS; a second signal exits at once.
 */
import v8 from 'node:v8';
import { startApp, type App } from './app.js';
import { loadConfigOrExit } from './config.js';
import { createLogger } from './logger.js';
import { noteMemoryAfterGc } from './observability/metrics.js';

const config = loadConfigOrExit();

const pretty = config.logFormat === 'pretty' || (config.logFormat === 'auto' && process.stdout.isTTY === true);
const logger = createLogger(config.logLevel, { replicaId: config.replicaId }, pretty);
let app: App | undefined;
let signalled = false;

const shutdown = (signal: string): void => {
  if (signalled) {
    logger.warn({ signal }, 'second signal: exiting now');
    process.exit(130);
  }
  signalled = true;
  const deadline = setTimeout(() => {
    logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown deadline passed: exiting');
    process.exit(1);
  }, config.shutdownTimeoutMs);
  deadline.unref();
  void (app?.stop(signal) ?? Promise.resolve()).then(
    () => process.exit(0),
    (err: unknown) => {
      logger.error({ err }, 'shutdown failed');
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));
// Memory measurements (npm run bench): started with --expose-gc, SIGUSR2 runs a full collection
// that also compacts the old generation (V8's --compact-on-every-full-gc, set for this collection
// only, as its memory reducer compacts an idle process), and records the heap right after it
// (iot_process_heap_after_gc_bytes): retained memory, not garbage allocated since. The resident set
// is read a moment later (iot_process_rss_after_gc_bytes), once V8's background threads have given
// the freed pages back. Absent otherwise.
/** Time V8's unmapper takes to give freed pages back after a full collection (measured: under 100 ms). */
const RSS_SETTLE_MS = 250;
const forceGc = (globalThis as { gc?: () => void }).gc;
if (forceGc)
  process.on('SIGUSR2', () => {
    v8.setFlagsFromString('--compact-on-every-full-gc');
    forceGc();
    v8.setFlagsFromString('--no-compact-on-every-full-gc');
    const heapUsed = process.memoryUsage().heapUsed;
    setTimeout(() => noteMemoryAfterGc({ heapUsed, rss: process.memoryUsage().rss }), RSS_SETTLE_MS);
  });

try {
  app = await startApp(config, logger);
  if (config.security.graphiql)
    logger.info({ graphql: app.url() }, 'replica ready: open GraphiQL in a browser at the graphql URL');
  else logger.info({ graphql: app.url() }, 'replica ready (GraphiQL off)');
  if (signalled) await app.stop('signal during start');
} catch (err) {
  logger.fatal({ err }, 'could not start');
  process.exit(1);
}
