/** Drives a subscriber child process (see subscriberProcess.ts). */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Percentiles } from './stats.js';

export interface SubscriberGroup {
  report(): Promise<{ received: number; latency: Percentiles }>;
  /** What arrived since the last rotate (or reset), and starts counting afresh. */
  rotate(): Promise<{ received: number; latency: Percentiles }>;
  reset(): Promise<void>;
  close(): Promise<void>;
  /** The subscribers' process (for CPU accounting). */
  readonly pid: number | undefined;
}

async function ask<T>(child: ChildProcess, message: unknown, ev: string): Promise<T> {
  const reply = new Promise<T>((resolve) => {
    const onMessage = (m: { ev: string }) => {
      if (m.ev === ev) {
        child.off('message', onMessage);
        resolve(m as T);
      }
    };
    child.on('message', onMessage);
  });
  child.send(message as never);
  return reply;
}

/** `lean`: bare graphql-transport-ws sockets instead of the graphql-ws client (see subscriberProcess.ts). */
export async function openSubscribers(
  urls: string[],
  count: number,
  query?: string,
  options: { lean?: boolean; authorization?: string } = {},
): Promise<SubscriberGroup> {
  const child = fork(fileURLToPath(new URL('./subscriberProcess.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await ask(
    child,
    { cmd: 'open', urls, count, query, lean: options.lean, authorization: options.authorization },
    'opened',
  );
  return {
    pid: child.pid,
    report: () => ask(child, { cmd: 'report' }, 'report'),
    rotate: () => ask(child, { cmd: 'rotate' }, 'rotate'),
    reset: async () => void (await ask(child, { cmd: 'reset' }, 'reset')),
    async close() {
      const exited = once(child, 'exit');
      child.send({ cmd: 'close' });
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}
