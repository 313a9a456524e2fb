import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGraphiQLHandler, prefersHtml } from '../../src/http/graphiql.js';

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';
const DEFAULT_QUERY = 'subscription Ticks {\n  ticks # <script>alert(1)</script>\n}';

let server: Server;
let base: string;
/** Records, per request, whether the handler claimed it. */
const handled: { url: string; result: boolean }[] = [];

beforeAll(async () => {
  const handler = createGraphiQLHandler({
    endpointPath: '/graphql',
    title: 'Test </title> API',
    defaultQuery: DEFAULT_QUERY,
  });
  server = createServer((req, res) => {
    void (async () => {
      const result = await handler(req, res);
      handled.push({ url: req.url ?? '', result });
      if (!result) {
        res.statusCode = 418;
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ fallthrough: true }));
      }
    })().catch((err: unknown) => {
      res.statusCode = 500;
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
});

async function getPage(): Promise<{ res: Response; html: string }> {
  const res = await fetch(`${base}/graphql`, { headers: { accept: BROWSER_ACCEPT } });
  return { res, html: await res.text() };
}

/** All src/href attribute values in the page, except inline data: URIs (no request). */
function referencedUrls(html: string): string[] {
  return [...html.matchAll(/\b(?:src|href)\s*=\s*"([^"]*)"/g)]
    .map((m) => m[1] ?? '')
    .filter((u) => !u.startsWith('data:'));
}

function lastHandled(): boolean | undefined {
  return handled.at(-1)?.result;
}

describe('GraphiQL handler', () => {
  it('serves the HTML page for a browser GET with Accept text/html', async () => {
    const { res, html } = await getPage();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(lastHandled()).toBe(true);
    expect(html).toMatch(/<div id="graphiql">/);
    // Title is escaped.
    expect(html).toContain('<title>Test &lt;/title&gt; API</title>');
    // Default query travels in a JSON data block, escaped so it cannot close the script tag.
    const m = /<script id="graphiql-config" type="application\/json">([\s\S]*?)<\/script>/.exec(html);
    expect(m).not.toBeNull();
    const config = JSON.parse(m?.[1] ?? '') as { endpoint: string; defaultQuery: string };
    expect(config).toEqual({ endpoint: '/graphql', defaultQuery: DEFAULT_QUERY });
    expect(m?.[1]).not.toContain('<');
  });

  it('sets a restrictive Content-Security-Policy and has no inline executable script', async () => {
    const { res, html } = await getPage();
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    expect(csp).toMatch(/style-src 'self'(;|$)/);
    expect(csp).toMatch(/connect-src 'self' ws: wss:/);
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    // Every <script> is either external (src=) or a non-executable JSON data block.
    for (const tag of html.match(/<script\b[^>]*>/g) ?? []) {
      expect(tag).toMatch(/\bsrc="|type="application\/json"/);
    }
    expect(html).not.toMatch(/\sstyle="/);
    expect(html).not.toMatch(/<style\b/);
  });

  it('references only same-origin assets', async () => {
    const { html } = await getPage();
    const urls = referencedUrls(html);
    expect(urls.length).toBeGreaterThanOrEqual(7);
    for (const u of urls) {
      expect(u.startsWith('/graphiql/'), u).toBe(true);
      expect(new URL(u, base).origin).toBe(base);
    }
    // No absolute URLs anywhere in the page.
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/(?:src|href)="\/\//);
  });

  it('serves every referenced asset with the right content type and a real body', async () => {
    const { html } = await getPage();
    const urls = referencedUrls(html);
    const names = urls.map((u) => u.slice('/graphiql/'.length));
    expect(names).toEqual(
      expect.arrayContaining([
        'react.production.min.js',
        'react-dom.production.min.js',
        'graphiql.min.js',
        'graphiql.min.css',
        'graphql-ws.min.js',
        'init.js',
      ]),
    );
    const minSize: Record<string, number> = {
      'react.production.min.js': 5_000,
      'react-dom.production.min.js': 100_000,
      'graphiql.min.js': 1_000_000,
      'graphiql.min.css': 50_000,
      'graphql-ws.min.js': 5_000,
      'init.js': 200,
      'page.css': 20,
    };
    for (const u of urls) {
      const name = u.slice('/graphiql/'.length);
      const res = await fetch(new URL(u, base));
      const body = await res.text();
      expect(res.status, u).toBe(200);
      const expectedType = name.endsWith('.css') ? /^text\/css/ : /^text\/javascript/;
      expect(res.headers.get('content-type'), u).toMatch(expectedType);
      expect(res.headers.get('etag'), u).toMatch(/^(W\/)?"[^"]+"$/);
      expect(res.headers.get('cache-control'), u).toMatch(/max-age=\d+/);
      expect(body.length, u).toBeGreaterThan(minSize[name] ?? 20);
    }
  });

  it('ships the expected globals: React, ReactDOM, GraphiQL.createFetcher, graphqlWs.createClient', async () => {
    const text = async (n: string) => (await fetch(`${base}/graphiql/${n}`)).text();
    expect(await text('graphiql.min.js')).toMatch(/window\.GraphiQL\s*=/);
    expect(await text('graphiql.min.js')).toContain('createFetcher');
    expect(await text('graphql-ws.min.js')).toMatch(/graphqlWs/);
    expect(await text('react.production.min.js')).toMatch(/React v18|18\.\d+\.\d+/);
    const init = await text('init.js');
    expect(init).toContain('graphqlWs.createClient');
    expect(init).toContain('GraphiQL.createFetcher');
    expect(init).toContain('wsClient');
  });

  it('honours If-None-Match with 304 and gzip when accepted', async () => {
    const first = await fetch(`${base}/graphiql/graphiql.min.css`, {
      headers: { 'accept-encoding': 'gzip' },
    });
    const etag = first.headers.get('etag') ?? '';
    expect(first.headers.get('content-encoding')).toBe('gzip');
    // fetch transparently decompresses: the CSS must come back intact.
    expect(await first.text()).toMatch(/\.graphiql-container/);
    // Not fetch: with If-None-Match it adds `Cache-Control: no-cache`, which asks for a full reload.
    const status = await new Promise<number | undefined>((resolve, reject) => {
      get(`${base}/graphiql/graphiql.min.css`, { headers: { 'if-none-match': etag } }, (r) => {
        r.resume();
        resolve(r.statusCode);
      }).on('error', reject);
    });
    expect(status).toBe(304);
  });

  it('answers HEAD with headers and no body', async () => {
    const res = await fetch(`${base}/graphiql/graphiql.min.js`, {
      method: 'HEAD',
      headers: { 'accept-encoding': 'identity' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(Number(res.headers.get('content-length'))).toBeGreaterThan(1_000_000);
    expect((await res.arrayBuffer()).byteLength).toBe(0);

    const page = await fetch(`${base}/graphql`, { method: 'HEAD', headers: { accept: BROWSER_ACCEPT } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
  });

  it('returns 404 for unknown asset names and path traversal attempts', async () => {
    for (const p of [
      '/graphiql/unknown.js',
      '/graphiql/graphiql.js',
      '/graphiql/',
      '/graphiql/graphiql.min.js.map',
      '/graphiql/../package.json',
      '/graphiql/%2e%2e/%2e%2e/package.json',
      '/graphiql/..%2fpackage.json',
      '/graphiql/sub/graphiql.min.js',
    ]) {
      const res = await fetch(`${base}${p}`);
      const body = await res.text();
      // URL normalisation may collapse '..' so the path leaves /graphiql/ entirely: then not handled.
      expect([404, 418], p).toContain(res.status);
      expect(body, p).not.toContain('"name"');
    }
    const res = await fetch(`${base}/graphiql/unknown.js`);
    expect(res.status).toBe(404);
    expect(lastHandled()).toBe(true);
  });

  it('does not handle non-HTML requests to the endpoint', async () => {
    const res = await fetch(`${base}/graphql`, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(418);
    expect(lastHandled()).toBe(false);

    const res2 = await fetch(`${base}/graphql`, {
      headers: { accept: 'application/graphql-response+json, application/json;q=0.9' },
    });
    expect(res2.status).toBe(418);
    expect(lastHandled()).toBe(false);

    // Browser GET with a query parameter is a GraphQL-over-HTTP request, not the IDE.
    const res3 = await fetch(`${base}/graphql?query=%7B__typename%7D`, {
      headers: { accept: BROWSER_ACCEPT },
    });
    expect(res3.status).toBe(418);
    expect(lastHandled()).toBe(false);

    // POST is never handled.
    const res4 = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { accept: BROWSER_ACCEPT, 'content-type': 'application/json' },
      body: '{"query":"{__typename}"}',
    });
    expect(res4.status).toBe(418);
    expect(lastHandled()).toBe(false);

    // Other paths are not handled.
    await (await fetch(`${base}/health`, { headers: { accept: BROWSER_ACCEPT } })).text();
    expect(lastHandled()).toBe(false);
  });
});

describe('prefersHtml', () => {
  it.each([
    [BROWSER_ACCEPT, true],
    ['text/html', true],
    ['*/*', false],
    [undefined, false],
    ['', false],
    ['application/json', false],
    ['application/json, text/html', false],
    ['text/html, application/json', true],
    ['application/json;q=0.5, text/html', true],
    ['text/html;q=0', false],
    ['text/html;q=0.5, */*', false],
  ])('%s -> %s', (accept, expected) => {
    expect(prefersHtml(accept)).toBe(expected);
  });
});
