/** Debian's Chromium for browser tests (scripts/browser.sh; puppeteer-core, no browser download). */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser } from 'puppeteer-core';

export type Page = Awaited<ReturnType<Browser['newPage']>>;

export async function launchChromium(): Promise<Browser> {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const executablePath = execFileSync('bash', ['scripts/browser.sh'], { cwd: root }).toString().trim();
  return puppeteer.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}

/** Records every request to a host outside `hosts`, and every console error or page error. */
export function watchPage(page: Page, hosts: readonly string[]): { foreign: string[]; errors: string[] } {
  const foreign: string[] = [];
  const errors: string[] = [];
  page.on('request', (r) => {
    const host = new URL(r.url()).hostname;
    if (!hosts.includes(host) && !r.url().startsWith('data:')) foreign.push(r.url());
  });
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  return { foreign, errors };
}
