/**
 * Entry point of one API replica: `npm start`. Parses the configuration once, starts the app,
 * and stops it in order on SIGTERM/SIGINT within SHUTDOWN_TIMEOUT_MS; a second signal exits at once.
 */
import { startApp, type App } from './app.js';
import { loadConfigOrExit } from './config.js';
import { createLogger } from './logger.js';
import { noteHeapAfterGc } from './observability/metrics.js';

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
// Memory measurements (npm run bench): started with --expose-gc, SIGUSR2 runs a full collection and
// records the heap right after it (iot_process_heap_after_gc_bytes): retained memory, not garbage
// allocated since. Absent otherwise.
const forceGc = (globalThis as { gc?: () => void }).gc;
if (forceGc)
  process.on('SIGUSR2', () => {
    forceGc();
    noteHeapAfterGc(process.memoryUsage().heapUsed);
  });

try {
  app = await startApp(config, logger);
  logger.info(
    { graphql: app.url(), graphiql: app.url() },
    'replica ready: open GraphiQL in a browser at the graphql URL',
  );
  if (signalled) await app.stop('signal during start');
} catch (err) {
  logger.fatal({ err }, 'could not start');
  process.exit(1);
}
