/**
 * The store survives the two hangs of the MongoDB driver seen here: a client whose view of the
 * server is stuck heals itself (src/store/clientWatchdog.ts), and a write command whose connection
 * closes mid-write fails within its deadline instead of never settling (src/store/commandDeadline.ts).
 *
 * The real driver, against the real MongoDB-protocol server, through a loopback TCP proxy. The
 * proxy breaks the client the way a FerretDB restart once did: an operation's connection dies
 * mid-command, so the driver marks the server Unknown and waits for its monitor; the monitor's
 * own connection stays open but never answers. Left alone the driver would wait for its monitor's
 * socket timeout (connectTimeoutMS, 30 s); in the run that was seen, the monitor never checked
 * again. The watchdog sees every call failing for 15 s, finds that a fresh connection reaches the
 * server, and connects the client again.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { connectMongoStore, type MongoStore } from '../../src/store/mongoStore.js';
import { isolatedEnv, storeOptionsFrom } from '../support/env.js';
import { eventually } from '../support/wait.js';

/** Forwards each accepted connection to the store, and can break them on demand. */
class BreakingProxy {
  readonly server: Server;
  /** Client-side sockets, in the order they were accepted. */
  readonly accepted: Socket[] = [];
  private readonly silenced = new Set<Socket>();
  private killNextCommand = false;
  private choking = false;
  private readonly halfOpen = new Set<Socket>();

  constructor(target: { host: string; port: number }) {
    this.server = createServer((client) => {
      this.accepted.push(client);
      const upstream = connect(target.port, target.host);
      client.on('data', (chunk) => {
        if (this.silenced.has(client)) return; // swallowed: the server never sees it, nobody answers
        if (this.choking) {
          // Stop reading, so the client's write cannot drain, then close the connection cleanly.
          // A peer that stops reading and half-closes: it sends FIN, never reads, never resets.
          this.choking = false;
          this.halfOpen.add(client);
          client.pause();
          setTimeout(() => {
            client.end();
            upstream.destroy();
          }, 300);
          return;
        }
        if (this.killNextCommand && client !== this.accepted[0]) {
          this.killNextCommand = false;
          client.destroy();
          upstream.destroy();
          return;
        }
        upstream.write(chunk);
      });
      upstream.on('data', (chunk) => client.write(chunk));
      const close = (): void => {
        if (!this.halfOpen.has(client)) client.destroy();
        upstream.destroy();
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  /** Requests on this connection are swallowed from now on; the connection stays open. */
  silence(socket: Socket): void {
    this.silenced.add(socket);
  }

  /** The next command on any connection but the first (the driver's monitor) dies with its connection. */
  killNextOperation(): void {
    this.killNextCommand = true;
  }

  /** The next write on any connection stalls: the proxy stops reading it and half-closes the connection. */
  chokeNextWrite(): void {
    this.choking = true;
  }

  async close(): Promise<void> {
    for (const s of this.accepted) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const env = isolatedEnv('watchdog');
const direct = storeOptionsFrom(env);
let proxy: BreakingProxy;
let store: MongoStore;

beforeAll(async () => {
  const target = new URL(direct.url);
  proxy = new BreakingProxy({ host: target.hostname, port: Number(target.port) });
  const port = await proxy.listen();
  store = await connectMongoStore({
    ...direct,
    url: `mongodb://127.0.0.1:${port}`,
    logger: createLogger('silent'),
    commandDeadlineMs: 3000,
  });
});

afterAll(async () => {
  await store?.dispose();
  await proxy?.close();
});

describe('store client watchdog, on the real driver and server', () => {
  it('connects a client again when its monitor hangs while the server answers fresh connections', async () => {
    expect(await store.readings.count(['s-1'])).toBe(0);
    // The driver's monitor opens the first connection, at connect time; operations use the others.
    expect(proxy.accepted.length).toBeGreaterThanOrEqual(2);
    proxy.silence(proxy.accepted[0]!);
    proxy.killNextOperation();

    await expect(store.readings.count(['s-1'])).rejects.toThrow(/unreachable/);
    // The driver now waits for its monitor, whose check will not come back.
    await eventually(
      () => store.readings.count(['s-1']).catch(() => -1),
      (n) => n === 0,
      { timeoutMs: 60_000, intervalMs: 500, what: 'the store answering again' },
    );
    expect(store.clientReconnects()).toBe(1);
  }, 90_000);

  it('fails a write whose connection closes while it is being written, within its deadline, and the retry stores it', async () => {
    // About 16 MiB of alerts in one insert, more than loopback socket buffers take at once, so the
    // driver waits for `drain` (long sensor ids make the documents big without making many).
    const sensorId = `s-big-${'x'.repeat(2000)}`;
    const detectedAt = new Date();
    const alerts = Array.from({ length: 8000 }, (_, i) => ({
      id: `${sensorId}|${1_700_000_000_000 + i}`,
      sensorId,
      ts: new Date(1_700_000_000_000 + i),
      temperature: 90,
      threshold: 80,
      location: { lat: 1, lon: 2 },
      detectedAt,
      position: { partition: 0, offset: i },
    }));
    proxy.chokeNextWrite();
    await expect(store.alerts.insert(alerts)).rejects.toThrow(/no reply within 3000 ms/);
    // Retried as the alert path retries it, until it is stored: 16 MiB may take the store longer
    // than the test's 3 s deadline when other suites load it, and then this attempt is retried too.
    const stored = await eventually(
      () =>
        store.alerts.insert(alerts).then(
          (owned) => owned.length,
          () => -1,
        ),
      (n) => n >= 0,
      { timeoutMs: 40_000, what: 'the retried insert' },
    );
    expect(stored).toBe(alerts.length);
    expect(await store.alerts.count([sensorId])).toBe(alerts.length);
  }, 60_000);
});
