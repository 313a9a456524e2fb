/**
 * The dashboard in a real browser (Debian's Chromium through puppeteer-core, no browser download),
 * served by a replica running as `npm run demo` runs it (development mode, the admin key handed to
 * the page). The page loads with zero console errors and no request leaving 127.0.0.1; a spawned
 * OVERHEAT sensor shows on the map and in a chart, its incident appears, the Acknowledge button
 * moves it to ACKNOWLEDGED. A screenshot is saved (test-results/dashboard.png; docs/api.md shows one).
 * Sensors at one place are each drawn apart and labelled. A sensor's line gains points live from
 * readingUpdates, between the reads of history, each a reading the sensor sent. Served by an API
 * that wants credentials and with none in the browser, the page sends nothing until one is typed in.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'puppeteer-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  IncidentsDocument,
  IngestReadingsDocument,
  ReadingHistoryDocument,
  SensorsDocument,
  SpawnSensorsDocument,
  StopSensorsDocument,
} from '../../client/index.js';
import { launchChromium, watchPage, type Page } from '../support/browser.js';
import { isolatedEnv, uniqueName } from '../support/env.js';
import { startReplica, type InProcessReplica } from '../support/pipeline.js';
import { eventually } from '../support/wait.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
let replica: InProcessReplica;
let browser: Browser;
/** A rectangle on the page, as getBoundingClientRect gives it. */
interface Box {
  left: number;
  right: number;
  top: number;
  bottom: number;
}
const evaluate = async <T>(page: Page, js: string): Promise<T> => (await page.evaluate(js)) as T;

/**
 * Clicks what `selector` names. The page redraws its rows as updates arrive, so the element found
 * may be replaced before the click lands: then it is found again and clicked (a few times at most).
 */
async function clickRedrawn(page: Page, selector: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await page.click(selector);
    } catch (err) {
      if (attempt >= 5 || !/detached/i.test((err as Error).message)) throw err;
    }
  }
}

beforeAll(async () => {
  const adminKey = `dev-${uniqueName('key')}`;
  replica = await startReplica(
    isolatedEnv('dashboard', { AUTH_ANONYMOUS_ROLE: '', DEV_MODE: 'true', DEV_ADMIN_KEY: adminKey }),
    { credential: adminKey },
  );
  browser = await launchChromium();
});
// A test that fails leaves no sensor running for the next one: they would crowd its page's charts.
afterEach(async () => {
  const { sensors } = await replica.client.request(SensorsDocument, { first: 1000 });
  const running = sensors.nodes.filter((s) => s.status === 'RUNNING').map((s) => s.id);
  if (running.length > 0) await replica.client.request(StopSensorsDocument, { ids: running });
});
afterAll(async () => {
  await browser?.close();
  await replica?.stop();
});

describe('the dashboard in Chromium', () => {
  it('shows a hot sensor and its incident live, and acknowledges it', async () => {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 860 });
    const { foreign, errors } = watchPage(page, ['127.0.0.1']);

    const url = replica.app.url().replace('/graphql', '/dashboard');
    await page.goto(url, { waitUntil: 'networkidle2' });
    await page.waitForFunction('document.getElementById("status").textContent.startsWith("live")', {
      timeout: 30_000,
    });

    const { spawnSensors: normal } = await replica.client.request(SpawnSensorsDocument, {
      input: { count: 4, scenario: 'NORMAL', intervalMs: 500, seed: 7 },
    });
    const { spawnSensors } = await replica.client.request(SpawnSensorsDocument, {
      input: { count: 1, scenario: 'OVERHEAT', intervalMs: 500, seed: 11 },
    });
    const sensorId = spawnSensors.sensors[0]!.id;
    const [incident] = await eventually(
      async () => (await replica.client.request(IncidentsDocument, { sensorId })).incidents.nodes,
      (list) => list.length > 0,
      { timeoutMs: 30_000, what: 'the incident opened' },
    );

    // It reaches the page live: a row with its status, a red dot on the map, a chart of its readings.
    const row = `tr[data-incident="${incident!.id}"]`;
    await page.waitForSelector(`${row} .badge.OPEN`, { timeout: 30_000 });
    await page.waitForFunction(`document.querySelectorAll('#map-svg circle[fill="#f85149"]').length > 0`, {
      timeout: 30_000,
    });
    // Charts are drawn from history, which the NORMAL sensors (spawned first) may reach first.
    await page.waitForFunction(
      `[...document.querySelectorAll('#charts .chart')].some((c) => c.querySelector('canvas') && c.innerText.includes(${JSON.stringify(sensorId)}))`,
      { timeout: 30_000 },
    );
    expect(await evaluate<string>(page, `document.querySelector('#charts').innerText`)).toContain(sensorId);
    // A few seconds of lines before the picture.
    await page.waitForFunction(`Number(document.querySelector('${row} td:nth-child(6)').textContent) >= 12`, {
      timeout: 30_000,
    });
    expect(await evaluate<number>(page, `document.querySelectorAll('#map-svg circle').length`)).toBe(5);

    mkdirSync(`${root}/test-results`, { recursive: true });
    await page.screenshot({ path: `${root}/test-results/dashboard.png` });

    await clickRedrawn(page, `${row} button[data-ack]`);
    await page.waitForSelector(`${row} .badge.ACKNOWLEDGED`, { timeout: 30_000 });
    const stored = await replica.client.request(IncidentsDocument, { sensorId });
    expect(stored.incidents.nodes[0]).toMatchObject({ id: incident!.id, status: 'ACKNOWLEDGED' });
    expect(stored.incidents.nodes[0]!.acknowledgedBy).toMatch(/^key:admin:/);

    await replica.client.request(StopSensorsDocument, { ids: [sensorId, ...normal.sensors.map((s) => s.id)] });
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);

  it('draws sensors that share a place apart, each with a label of its own', async () => {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 860 });
    const { errors } = watchPage(page, ['127.0.0.1']);
    const place = { lat: 48.1372, lon: 11.5756 };
    const devices = ['device-roof-a', 'device-roof-b', 'device-roof-c'].map((d) => `${d}-${uniqueName('x')}`);
    const now = Date.now();
    // Hot, so they open incidents and show on the map like any device in trouble.
    await replica.client.request(IngestReadingsDocument, {
      readings: devices.flatMap((sensorId) =>
        [3, 2, 1].map((ago) => ({
          sensorId,
          ts: new Date(now - ago * 1000).toISOString(),
          temperature: 95,
          humidity: 30,
          location: place,
        })),
      ),
    });
    await page.goto(replica.app.url().replace('/graphql', '/dashboard'), { waitUntil: 'networkidle2' });
    const drawn = (id: string): string => `#map-svg circle[data-sensor=${JSON.stringify(id)}]`;
    await page.waitForFunction(
      `${JSON.stringify(devices)}.every((id) => document.querySelector('#map-svg circle[data-sensor="' + id + '"]'))`,
      { timeout: 30_000 },
    );

    const boxes = await evaluate<{ id: string; dot: Box; label: Box }[]>(
      page,
      `${JSON.stringify(devices)}.map((id) => ({
        id,
        dot: document.querySelector('#map-svg circle[data-sensor="' + id + '"]').getBoundingClientRect().toJSON(),
        label: document.querySelector('#map-svg text[data-sensor="' + id + '"]').getBoundingClientRect().toJSON(),
      }))`,
    );
    const overlap = (a: Box, b: Box): boolean =>
      a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    for (const [i, a] of boxes.entries())
      for (const b of boxes.slice(i + 1)) {
        expect(overlap(a.dot, b.dot), `${a.id} and ${b.id}: dots`).toBe(false);
        expect(overlap(a.label, b.label), `${a.id} and ${b.id}: labels`).toBe(false);
      }
    expect(await page.$$eval(drawn(devices[0]!), (c) => c.length)).toBe(1);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it("draws live points from readingUpdates on a sensor's line, each a reading the sensor sent", async () => {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 860 });
    const { foreign, errors } = watchPage(page, ['127.0.0.1']);
    const { spawnSensors } = await replica.client.request(SpawnSensorsDocument, {
      input: { count: 1, scenario: 'NORMAL', intervalMs: 250, seed: 21 },
    });
    const sensorId = spawnSensors.sensors[0]!.id;
    await page.goto(replica.app.url().replace('/graphql', '/dashboard'), { waitUntil: 'networkidle2' });
    const chart = `#charts .chart[data-sensor=${JSON.stringify(sensorId)}]`;
    // History is read every 10 s and counts no live point: only readingUpdates moves this.
    await page.waitForFunction(`Number(document.querySelector(${JSON.stringify(chart)})?.dataset.livePoints) >= 1`, {
      timeout: 45_000,
    });
    const first = await evaluate<{ live: number; ts: string }>(
      page,
      `(() => { const c = document.querySelector(${JSON.stringify(chart)}); return { live: Number(c.dataset.livePoints), ts: c.dataset.liveTs }; })()`,
    );
    await page.waitForFunction(
      `Number(document.querySelector(${JSON.stringify(chart)}).dataset.livePoints) >= ${first.live + 3}`,
      { timeout: 30_000 },
    );
    // The live point is a reading the sensor sent: history has it, at that time, once it is stored.
    const stored = await eventually(
      async () =>
        (await replica.client.request(ReadingHistoryDocument, { sensorId, first: 200 })).readings.edges.map(
          (e) => e.node.ts,
        ),
      (times) => times.includes(first.ts),
      { timeoutMs: 30_000, what: 'the live point in history' },
    );
    expect(stored).toContain(first.ts);
    await replica.client.request(StopSensorsDocument, { ids: [sensorId] });
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);

  it('sends nothing before it has a credential, and starts once one is typed in', async () => {
    const secret = uniqueName('operator-secret');
    const guarded = await startReplica(
      isolatedEnv('dashboard-keys', { AUTH_ANONYMOUS_ROLE: '', API_KEYS: `operator:${secret}` }),
    );
    const page = await browser.newPage();
    try {
      const { errors } = watchPage(page, ['127.0.0.1']);
      const asked: string[] = [];
      const refused: number[] = [];
      page.on('request', (r) => {
        if (new URL(r.url()).pathname === '/graphql') asked.push(r.url());
      });
      page.on('response', (r) => {
        if (r.status() === 401 || r.status() === 403) refused.push(r.status());
      });
      await page.goto(guarded.app.url().replace('/graphql', '/dashboard'), { waitUntil: 'networkidle2' });
      // The page says so once its script has run; anything it meant to send would have left by then.
      await page.waitForFunction(`document.getElementById("status").textContent === "enter a credential to start"`, {
        timeout: 10_000,
      });
      expect(asked).toEqual([]);

      await page.type('#key', secret);
      await page.keyboard.press('Enter'); // a text input fires `change` on Enter
      await page.waitForFunction('document.getElementById("status").textContent.startsWith("live")', {
        timeout: 30_000,
      });
      expect(asked.length).toBeGreaterThan(0);
      expect(refused).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
      await guarded.stop();
    }
  }, 60_000);
});
