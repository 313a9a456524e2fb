/**
 * GraphiQL in a real browser (Debian's Chromium through puppeteer-core, no browser download): the page
 * loads from the replica alone (every request to 127.0.0.1, nothing from the internet), without
 * console errors, and pressing ▶ on the prefilled `LiveAlerts` subscription shows live alerts
 * delivered over graphql-ws. The replica runs as `npm run demo` runs it: development mode, no access
 * without a credential, the admin key prefilled in the Headers tab; GraphiQL must send it over HTTP
 * and in the WebSocket's connection_init.
 */
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestReadingsDocument } from '../../client/index.js';
import { launchChromium, watchPage, type Page } from '../support/browser.js';
import { isolatedEnv, uniqueName } from '../support/env.js';
import { startReplica, type InProcessReplica } from '../support/pipeline.js';
import { eventually } from '../support/wait.js';

let replica: InProcessReplica;
/** The page's visible text (evaluated in the browser; this project compiles without DOM types). */
const pageText = async (page: Page): Promise<string> => (await page.evaluate('document.body.innerText')) as string;
let browser: Browser;

beforeAll(async () => {
  const adminKey = `dev-${uniqueName('key')}`;
  replica = await startReplica(
    isolatedEnv('graphiql', { AUTH_ANONYMOUS_ROLE: '', DEV_MODE: 'true', DEV_ADMIN_KEY: adminKey }),
    { credential: adminKey },
  );
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await replica?.stop();
});

describe('GraphiQL in Chromium', () => {
  it('loads offline and shows live overheat alerts from the prefilled subscription', async () => {
    const page = await browser.newPage();
    const { foreign, errors } = watchPage(page, ['127.0.0.1', 'localhost']);

    await page.goto(replica.app.url(), { waitUntil: 'networkidle0' });
    await page.waitForSelector('.graphiql-execute-button', { timeout: 30_000 });
    expect(await pageText(page)).toContain('LiveAlerts');
    await page.click('.graphiql-execute-button');

    // Alerts raised after the click reach the result pane.
    const sensorId = uniqueName('browser');
    await eventually(
      async () => {
        await replica.client.request(IngestReadingsDocument, {
          readings: [
            { sensorId, ts: new Date().toISOString(), temperature: 91.5, humidity: 30, location: { lat: 1, lon: 2 } },
          ],
        });
        return (await pageText(page)).includes(sensorId);
      },
      Boolean,
      { timeoutMs: 30_000, intervalMs: 1000, what: 'an alert shown in GraphiQL' },
    );
    expect(await pageText(page)).toContain('91.5');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });
});
