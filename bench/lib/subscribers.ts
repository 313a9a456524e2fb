/** Drives a subscriber child process (see subscriberProcess.ts). */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Percentiles } from './stats.js';

/** What a group's subscribers received since the last rotate (or reset). */
export interface Received {
  received: number;
  latency: Percentiles;
  /** Sum of the updates' `skipped` (live readings conflated away; 0 for alerts). */
  skipped: number;
  /** Updates not newer than the previous one of their sensor, for the same subscriber. */
  outOfOrder: number;
  /** With `perSensor`: per subscriber, updates received per sensor id. */
  perSensor?: Record<string, number>[];
}

export interface SubscriberGroup {
  report(): Promise<Received>;
  /** What arrived since the last rotate (or reset), and starts counting afresh. */
  rotate(): Promise<Received>;
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
  options: { lean?: boolean; authorization?: string; perSensor?: boolean } = {},
): Promise<SubscriberGroup> {
  const child = fork(fileURLToPath(new URL('./subscriberProcess.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await ask(
    child,
    {
      cmd: 'open',
      urls,
      count,
      query,
      lean: options.lean,
      authorization: options.authorization,
      perSensor: options.perSensor,
    },
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
