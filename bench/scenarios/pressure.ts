/**
 * Under pressure (issue 8), two figures:
 *  - pressure.pausedSocket: one WebSocket with 100 overheatAlerts subscriptions stops reading while
 *    alerts keep coming at `alertRate`/s; the replica's retained heap growth (a full GC, then
 *    /metrics, every 500 ms) against LIMIT_SOCKET_BUDGET_BYTES + 2 MiB, and whether the replica
 *    closed the socket (iot_websockets_closed_over_budget_total).
 *  - pressure.catchUp: a subscriber `behind` alerts behind resumes with its old cursor; alerts
 *    replayed per second until it has them all (paged replay from the store).
 */
import WebSocket from 'ws';
import type { Cluster } from '../lib/replicas.js';
import { createReadingLoad } from '../lib/loadgen.js';
import { sleep, type Figure } from '../lib/stats.js';

const SUBSCRIPTION =
  'subscription { overheatAlerts { id sensorId temperature threshold ts detectedAt location { lat lon } cursor } }';

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(url.replace('/graphql', '/metrics'))).text();
  return Number(new RegExp(`^iot_${name} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
}

function openSocket(
  url: string,
  onNext?: (payload: { data: { overheatAlerts: { cursor: string } } }) => void,
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace('http', 'ws'), 'graphql-transport-ws');
    ws.on('error', reject);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: {} })));
    ws.on('message', (data) => {
      const m = JSON.parse((data as Buffer).toString('utf8')) as { type: string; payload?: unknown };
      if (m.type === 'connection_ack') resolve(ws);
      else if (m.type === 'next') onNext?.(m.payload as { data: { overheatAlerts: { cursor: string } } });
    });
  });
}

export async function pressure(
  cluster: Cluster,
  o: { alertRate: number; pausedMs: number; behind: number; budgetBytes: number },
): Promise<Figure[]> {
  const url = cluster.urls[0]!;
  const topic = cluster.env.KAFKA_READINGS_TOPIC!;
  const load = await createReadingLoad(topic, 100, 1); // every reading critical: rate = alerts/s
  const figures: Figure[] = [];
  try {
    // --- the same load with no paused socket: what the pipeline itself holds (Kafka fetches,
    // readings waiting for storage) is subtracted from the paused run, which is the socket's share.
    // A heap sample after a full GC still moves by several MiB between two samples of the same
    // steady load (Kafka fetches and store batches in flight), so the figure is the highest median
    // of three consecutive samples: a ramp that the socket holds shows, a one-sample spike does not.
    // The single highest sample is reported beside it.
    const retainedPeak = async (during: Promise<unknown>): Promise<{ sustained: number; highest: number }> => {
      await cluster.forceGc();
      const base = await metric(url, 'process_heap_after_gc_bytes');
      const samples: number[] = [];
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          await cluster.forceGc();
          samples.push((await metric(url, 'process_heap_after_gc_bytes')) - base);
          await sleep(200);
        }
      })();
      await during;
      sampling = false;
      await sampler;
      let sustained = 0;
      for (let i = 1; i + 1 < samples.length; i++) {
        const window = [samples[i - 1]!, samples[i]!, samples[i + 1]!].sort((a, b) => a - b);
        sustained = Math.max(sustained, window[1]!);
      }
      return { sustained, highest: Math.max(0, ...samples) };
    };
    const control = await retainedPeak(load.run(o.alertRate, o.pausedMs));
    await sleep(2000);

    // --- a socket that stops reading
    const closedBefore = await metric(url, 'websockets_closed_over_budget_total');
    const paused = await openSocket(url);
    for (let i = 0; i < 100; i++)
      paused.send(JSON.stringify({ id: `p${i}`, type: 'subscribe', payload: { query: SUBSCRIPTION } }));
    await sleep(1000);
    (paused as unknown as { _socket: { pause(): void } })._socket.pause();
    const withPaused = await retainedPeak(load.run(o.alertRate, o.pausedMs));
    const closed = (await metric(url, 'websockets_closed_over_budget_total')) - closedBefore;
    paused.terminate();
    const growth = withPaused.sustained - control.sustained;
    const mib = (b: number): string => (b / 1_048_576).toFixed(1);
    console.error(
      `  paused socket: heap +${mib(growth)} MiB over the same load without it (sustained peak +${mib(withPaused.sustained)} vs +${mib(control.sustained)}; single highest samples +${mib(withPaused.highest)} vs +${mib(control.highest)}; budget ${mib(o.budgetBytes)} MiB + 2 MiB), closed over budget: ${closed}`,
    );
    figures.push({
      name: 'pressure.pausedSocket.heapGrowth',
      value: growth / 1_048_576,
      unit: 'MiB',
      notes: `100 subscriptions on one paused socket, ${o.alertRate} alerts/s for ${o.pausedMs / 1000} s (each to all 100); retained heap (full GC before each sample, highest median of 3 consecutive samples) with the socket, minus the same load without it (${mib(withPaused.sustained)} - ${mib(control.sustained)} MiB; single highest samples ${mib(withPaused.highest)} and ${mib(control.highest)}); bound ${mib(o.budgetBytes)} + 2 MiB; sockets closed over budget: ${closed}`,
    });

    // --- resume far behind
    const cursorRes = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ alertsCursor }' }),
    });
    const { data } = (await cursorRes.json()) as { data: { alertsCursor: string } };
    const raisedBefore = (await cluster.metrics()).reduce((s, m) => s + (m.alerts_raised_total ?? 0), 0);
    await load.run(Math.min(5000, o.behind), Math.ceil((o.behind / Math.min(5000, o.behind)) * 1000));
    // Until the alerts raised stop moving for 2 s (two readings of one sensor in one millisecond are
    // one alert, so the count can end a little under what was sent), within 2 minutes.
    const raisedNow = async (): Promise<number> =>
      (await cluster.metrics()).reduce((s, m) => s + (m.alerts_raised_total ?? 0), 0) - raisedBefore;
    let raised = await raisedNow();
    for (let still = 0, waited = 0; still < 4 && waited < 120_000; waited += 500) {
      await sleep(500);
      const now = await raisedNow();
      still = now === raised && now > 0 ? still + 1 : 0;
      raised = now;
    }
    let got = 0;
    const t0 = performance.now();
    const done = new Promise<void>((resolve) => {
      void openSocket(url, () => {
        if (++got >= raised) resolve();
      }).then((ws) => {
        ws.send(
          JSON.stringify({
            id: 'catchup',
            type: 'subscribe',
            payload: {
              query: SUBSCRIPTION.replace(
                'overheatAlerts {',
                `overheatAlerts(after: ${JSON.stringify(data.alertsCursor)}) {`,
              ),
            },
          }),
        );
        void done.then(() => ws.close());
      });
    });
    const deadline = sleep(600_000).then(() => 'timeout' as const);
    const outcome = await Promise.race([done.then(() => 'done' as const), deadline]);
    const seconds = (performance.now() - t0) / 1000;
    console.error(
      `  catch-up: ${got}/${raised} alerts in ${seconds.toFixed(1)} s (${Math.round(got / seconds)}/s)${outcome === 'timeout' ? ' TIMED OUT' : ''}`,
    );
    figures.push({
      name: 'pressure.catchUp',
      rate: got / seconds,
      unit: 'alerts/s',
      notes: `one subscriber ${raised} alerts behind, replayed in pages of 500 from the store (${got} received in ${seconds.toFixed(1)} s)`,
    });
  } finally {
    await load.close();
  }
  return figures;
}
