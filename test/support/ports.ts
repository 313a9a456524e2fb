/** Ports for replica processes: one place that hands them out, free at the moment they are asked for. */
import { createServer } from 'node:net';

/** A port nothing listens on right now (the OS picks it; a replica binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
