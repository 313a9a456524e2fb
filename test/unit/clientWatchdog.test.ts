/** The store client watchdog (src/store/clientWatchdog.ts), on a fake clock. */
import { describe, expect, it } from 'vitest';
import { createClientWatchdog } from '../../src/store/clientWatchdog.js';
import { createLogger } from '../../src/logger.js';

function setup(serverAnswers: boolean) {
  let t = 0;
  const calls = { probes: 0, reconnects: 0 };
  const watchdog = createClientWatchdog({
    stuckAfterMs: 15_000,
    logger: createLogger('silent'),
    now: () => t,
    probe: async () => {
      calls.probes++;
      return serverAnswers;
    },
    reconnect: async () => {
      calls.reconnects++;
    },
  });
  return { watchdog, calls, advance: (ms: number) => (t += ms) };
}

describe('store client watchdog', () => {
  it('does nothing while calls reach the server', async () => {
    const { watchdog, calls, advance } = setup(true);
    watchdog.reached();
    advance(60_000);
    expect(await watchdog.check()).toBe('healthy');
    expect(calls).toEqual({ probes: 0, reconnects: 0 });
  });

  it('waits until every call has failed as unreachable for the whole delay', async () => {
    const { watchdog, calls, advance } = setup(true);
    watchdog.unreachable();
    advance(14_999);
    watchdog.unreachable(); // later failures do not restart the count
    expect(await watchdog.check()).toBe('waiting');
    expect(calls.probes).toBe(0);
  });

  it('forgets the failures once a call reaches the server', async () => {
    const { watchdog, calls, advance } = setup(true);
    watchdog.unreachable();
    advance(10_000);
    watchdog.reached();
    watchdog.unreachable();
    advance(10_000);
    expect(await watchdog.check()).toBe('waiting');
    expect(calls.probes).toBe(0);
  });

  it('reconnects a stuck client when a fresh connection reaches the server, then counts afresh', async () => {
    const { watchdog, calls, advance } = setup(true);
    watchdog.unreachable();
    advance(15_000);
    expect(await watchdog.check()).toBe('reconnected');
    expect(calls).toEqual({ probes: 1, reconnects: 1 });
    expect(watchdog.reconnects()).toBe(1);
    expect(await watchdog.check()).toBe('healthy');
  });

  it('leaves the client alone when the server itself is down', async () => {
    const { watchdog, calls, advance } = setup(false);
    watchdog.unreachable();
    advance(60_000);
    expect(await watchdog.check()).toBe('server down');
    expect(calls).toEqual({ probes: 1, reconnects: 0 });
  });

  it('runs one probe at a time', async () => {
    const { watchdog, calls, advance } = setup(true);
    watchdog.unreachable();
    advance(20_000);
    const [first, second] = await Promise.all([watchdog.check(), watchdog.check()]);
    expect([first, second].sort()).toEqual(['reconnected', 'waiting']);
    expect(calls.reconnects).toBe(1);
  });
});
