/** Stops and starts the real local services (scripts/services.sh), for fault injection. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

/** The port of a service URL of the environment, if one is given. */
const portOf = (url: string | undefined): string | undefined => (url ? new URL(url).port || undefined : undefined);

/**
 * The services hit are those the replicas use: the ports of REDIS_URL and MONGODB_URL when they are
 * set (a suite run on services of its own, SERVICES_RUN_DIR beside them), else the default ones.
 */
export async function services(
  action: 'start' | 'stop' | 'restart',
  service: 'redis' | 'kafka' | 'ferretdb',
): Promise<void> {
  const redisPort = portOf(process.env.REDIS_URL);
  const mongoPort = portOf(process.env.MONGODB_URL);
  const env = {
    ...process.env,
    ...(redisPort ? { REDIS_PORT: redisPort } : {}),
    ...(mongoPort ? { MONGO_PORT: mongoPort } : {}),
  };
  await run('bash', ['scripts/services.sh', action, service], { cwd: root, env, timeout: 120_000 });
}
