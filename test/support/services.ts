/** Stops and starts the real local services (scripts/services.sh), for fault injection. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

export async function services(
  action: 'start' | 'stop' | 'restart',
  service: 'redis' | 'kafka' | 'ferretdb',
): Promise<void> {
  await run('bash', ['scripts/services.sh', action, service], { cwd: root, timeout: 120_000 });
}
