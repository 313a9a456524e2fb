/**
 * Self-hosted, offline GraphiQL for the `/graphql` endpoint.
 *
 * - A browser `GET <endpointPath>` (Accept prefers text/html, no `query` param)
 *   receives a small HTML page.
 * - The page loads React 18, ReactDOM 18, GraphiQL 3 (UMD bundle + CSS) and the
 *   graphql-ws client UMD from `<assetsPath>*`, served by this handler straight
 *   from node_modules (read once, cached in memory, ETag + Cache-Control).
 * - The bootstrap lives in a separate served file (`init.js`) so the
 *   Content-Security-Policy can restrict scripts to 'self' (no inline script).
 *   Page configuration is passed in a non-executable JSON data block.
 * - Queries/mutations go over HTTP POST to the endpoint, subscriptions over
 *   graphql-ws (graphql-transport-ws protocol) at ws(s)://<same host><endpoint>.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzip as gzipCb, gzipSync } from 'node:zlib';

const gzipAsync = promisify(gzipCb);

export interface GraphiQLHandlerOptions {
  /** Path of the GraphQL HTTP + graphql-ws endpoint, e.g. '/graphql'. */
  endpointPath: string;
  /** URL prefix under which the static assets are served. Default '/graphiql/'. */
  assetsPath?: string;
  /** Page title. Default 'GraphiQL'. */
  title?: string;
  /** Query prefilled in the editor (when the user has no saved query). */
  defaultQuery?: string;
  /** Headers prefilled in the headers tab (development only: e.g. the local admin key). */
  defaultHeaders?: Record<string, string>;
}

export type GraphiQLHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean> | boolean;

/** Exact files served from node_modules: asset name -> package + file inside it. */
const PACKAGE_ASSETS = {
  'react.production.min.js': {
    pkg: 'react',
    file: 'umd/react.production.min.js',
    type: 'text/javascript; charset=utf-8',
  },
  'react-dom.production.min.js': {
    pkg: 'react-dom',
    file: 'umd/react-dom.production.min.js',
    type: 'text/javascript; charset=utf-8',
  },
  'graphiql.min.js': {
    pkg: 'graphiql',
    file: 'graphiql.min.js',
    type: 'text/javascript; charset=utf-8',
  },
  'graphiql.min.css': {
    pkg: 'graphiql',
    file: 'graphiql.min.css',
    type: 'text/css; charset=utf-8',
  },
  'graphql-ws.min.js': {
    pkg: 'graphql-ws',
    file: 'umd/graphql-ws.min.js',
    type: 'text/javascript; charset=utf-8',
  },
} as const;

type PackageAssetName = keyof typeof PACKAGE_ASSETS;

/** Order matters: React before ReactDOM before GraphiQL; init.js last. */
const SCRIPT_ORDER: readonly string[] = [
  'react.production.min.js',
  'react-dom.production.min.js',
  'graphql-ws.min.js',
  'graphiql.min.js',
  'init.js',
];
const STYLE_ORDER: readonly string[] = ['graphiql.min.css', 'page.css'];

const PAGE_CSS = `html, body { height: 100%; margin: 0; overflow: hidden; width: 100%; }
#graphiql { height: 100vh; }
#graphiql-loading { font-family: system-ui, sans-serif; padding: 1rem; color: #555; }
`;

/**
 * Bootstrap script. Reads its configuration from the JSON data block in the page,
 * builds a fetcher doing HTTP for queries/mutations and graphql-ws for subscriptions.
 */
const INIT_JS = `(function () {
  'use strict';
  var configEl = document.getElementById('graphiql-config');
  var config = JSON.parse((configEl && configEl.textContent) || '{}');
  var httpUrl = new URL(config.endpoint || '/graphql', window.location.href);
  var wsUrl = new URL(httpUrl.href);
  wsUrl.protocol = httpUrl.protocol === 'https:' ? 'wss:' : 'ws:';
  wsUrl.hash = '';

  // graphql-ws UMD (graphql-transport-ws protocol); lazy: connects on first subscription. The
  // Authorization header of the headers tab travels in connection_init; a new one opens a new client.
  var wsClient = null;
  var wsAuthorization = null;
  function clientFor(authorization) {
    if (!wsClient || authorization !== wsAuthorization) {
      if (wsClient) wsClient.dispose();
      wsAuthorization = authorization;
      wsClient = window.graphqlWs.createClient({
        url: wsUrl.href,
        lazy: true,
        retryAttempts: 5,
        connectionParams: authorization ? { authorization: authorization } : {}
      });
    }
    return wsClient;
  }

  var fetcher = function (params, opts) {
    var headers = (opts && opts.headers) || {};
    var authorization = headers.Authorization || headers.authorization || null;
    return window.GraphiQL.createFetcher({ url: httpUrl.href, wsClient: clientFor(authorization) })(params, opts);
  };

  var props = {
    fetcher: fetcher,
    defaultEditorToolsVisibility: true,
    shouldPersistHeaders: false
  };
  if (typeof config.defaultQuery === 'string') props.defaultQuery = config.defaultQuery;
  if (typeof config.defaultHeaders === 'string') props.defaultHeaders = config.defaultHeaders;

  var container = document.getElementById('graphiql');
  var root = window.ReactDOM.createRoot(container);
  root.render(window.React.createElement(window.GraphiQL, props));
})();
`;

const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self' ws: wss:",
  "worker-src 'self' blob:",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

interface CachedAsset {
  body: Buffer;
  gzip: Buffer | undefined;
  etag: string;
  type: string;
}

const require = createRequire(import.meta.url);
const packageDirCache = new Map<string, string>();

/** Directory of an installed package, resolved relative to this module. */
function packageDir(pkg: string): string {
  const cached = packageDirCache.get(pkg);
  if (cached !== undefined) return cached;
  let dir: string;
  try {
    dir = path.dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    // Package may not export ./package.json: walk up from its main entry.
    let cur = path.dirname(require.resolve(pkg));
    for (;;) {
      const candidate = path.join(cur, 'package.json');
      if (existsSync(candidate)) {
        const json = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string };
        if (json.name === pkg) break;
      }
      const parent = path.dirname(cur);
      if (parent === cur) throw new Error(`graphiql: cannot locate package "${pkg}"`);
      cur = parent;
    }
    dir = cur;
  }
  packageDirCache.set(pkg, dir);
  return dir;
}

function etagOf(body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
}

/** Only worth compressing the larger text files. */
const GZIP_MIN_BYTES = 1024;

/** For small generated assets (built once per handler). */
function makeAssetSync(body: Buffer, type: string): CachedAsset {
  const gzip = body.length > GZIP_MIN_BYTES ? gzipSync(body) : undefined;
  return { body, gzip, etag: etagOf(body), type };
}

/** For the (multi-megabyte) node_modules files: compress off the event loop. */
async function makeAsset(body: Buffer, type: string): Promise<CachedAsset> {
  const gzip = body.length > GZIP_MIN_BYTES ? await gzipAsync(body) : undefined;
  return { body, gzip, etag: etagOf(body), type };
}

/** Process-wide cache of node_modules files (shared between handler instances). */
const packageAssetCache = new Map<PackageAssetName, Promise<CachedAsset>>();

function loadPackageAsset(name: PackageAssetName): Promise<CachedAsset> {
  let pending = packageAssetCache.get(name);
  if (pending === undefined) {
    const spec = PACKAGE_ASSETS[name];
    pending = (async () => {
      const file = path.join(packageDir(spec.pkg), spec.file);
      return await makeAsset(await readFile(file), spec.type);
    })();
    // Do not cache failures forever (e.g. transient FS error).
    pending.catch(() => packageAssetCache.delete(name));
    packageAssetCache.set(name, pending);
  }
  return pending;
}

function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** JSON safe to embed inside a <script type="application/json"> element. */
function jsonForHtml(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function normalizeAssetsPath(p: string | undefined): string {
  let out = p ?? '/graphiql/';
  if (!out.startsWith('/')) out = `/${out}`;
  if (!out.endsWith('/')) out = `${out}/`;
  return out;
}

interface MediaRange {
  type: string;
  q: number;
  index: number;
}

function parseAccept(header: string | undefined): MediaRange[] {
  if (!header) return [];
  return header.split(',').flatMap((part, index) => {
    const [rawType, ...params] = part.trim().split(';');
    const type = (rawType ?? '').trim().toLowerCase();
    if (!type) return [];
    let q = 1;
    for (const param of params) {
      const [k, v] = param.trim().split('=');
      if (k?.trim().toLowerCase() === 'q' && v !== undefined) {
        const parsed = Number.parseFloat(v.trim());
        q = Number.isFinite(parsed) ? parsed : 0;
      }
    }
    return [{ type, q, index }];
  });
}

/**
 * True when the client prefers text/html over the GraphQL JSON media types.
 * A bare wildcard (curl's default) does not count as asking for HTML.
 */
export function prefersHtml(acceptHeader: string | undefined): boolean {
  const ranges = parseAccept(acceptHeader);
  let html: MediaRange | undefined;
  let json: MediaRange | undefined;
  const better = (a: MediaRange | undefined, b: MediaRange): boolean =>
    a === undefined || b.q > a.q || (b.q === a.q && b.index < a.index);
  for (const r of ranges) {
    if (r.type === 'text/html' || r.type === 'text/*') {
      if (better(html, r)) html = r;
    } else if (
      r.type === 'application/json' ||
      r.type === 'application/graphql-response+json' ||
      r.type === 'multipart/mixed' ||
      r.type === 'text/event-stream' ||
      r.type === 'application/*' ||
      r.type === '*/*'
    ) {
      if (better(json, r)) json = r;
    }
  }
  if (html === undefined || html.q <= 0) return false;
  if (json === undefined || json.q <= 0) return true;
  return html.q > json.q || (html.q === json.q && html.index < json.index);
}

function acceptsGzip(req: IncomingMessage): boolean {
  const header = req.headers['accept-encoding'];
  if (typeof header !== 'string') return false;
  return parseAccept(header).some((r) => (r.type === 'gzip' || r.type === '*') && r.q > 0);
}

function etagMatches(req: IncomingMessage, etag: string): boolean {
  const header = req.headers['if-none-match'];
  if (typeof header !== 'string') return false;
  return header
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === etag || t === '*');
}

function send(
  req: IncomingMessage,
  res: ServerResponse,
  asset: CachedAsset,
  cacheControl: string,
  extraHeaders: Record<string, string> = {},
): void {
  res.setHeader('Content-Type', asset.type);
  res.setHeader('Cache-Control', cacheControl);
  res.setHeader('ETag', asset.etag);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Vary', 'Accept, Accept-Encoding');
  for (const [k, v] of Object.entries(extraHeaders)) res.setHeader(k, v);
  if (etagMatches(req, asset.etag)) {
    res.statusCode = 304;
    res.end();
    return;
  }
  let body = asset.body;
  if (asset.gzip !== undefined && acceptsGzip(req)) {
    body = asset.gzip;
    res.setHeader('Content-Encoding', 'gzip');
  }
  res.statusCode = 200;
  res.setHeader('Content-Length', body.length);
  if (req.method === 'HEAD') res.end();
  else res.end(body);
}

function notFound(req: IncomingMessage, res: ServerResponse): void {
  const body = 'Not Found\n';
  res.statusCode = 404;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Cache-Control', 'no-store');
  if (req.method === 'HEAD') res.end();
  else res.end(body);
}

export function createGraphiQLHandler(options: GraphiQLHandlerOptions): GraphiQLHandler {
  const endpointPath = options.endpointPath;
  if (!endpointPath.startsWith('/')) {
    throw new Error(`graphiql: endpointPath must start with '/', got ${JSON.stringify(endpointPath)}`);
  }
  const assetsPath = normalizeAssetsPath(options.assetsPath);
  const title = options.title ?? 'GraphiQL';

  const generated = new Map<string, CachedAsset>([
    ['init.js', makeAssetSync(Buffer.from(INIT_JS, 'utf8'), 'text/javascript; charset=utf-8')],
    ['page.css', makeAssetSync(Buffer.from(PAGE_CSS, 'utf8'), 'text/css; charset=utf-8')],
  ]);

  const config: { endpoint: string; defaultQuery?: string; defaultHeaders?: string } = { endpoint: endpointPath };
  if (options.defaultQuery !== undefined) config.defaultQuery = options.defaultQuery;
  if (options.defaultHeaders !== undefined) config.defaultHeaders = JSON.stringify(options.defaultHeaders, null, 2);

  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
${STYLE_ORDER.map((n) => `<link rel="stylesheet" href="${escapeHtml(assetsPath + n)}">`).join('\n')}
<script id="graphiql-config" type="application/json">${jsonForHtml(config)}</script>
${SCRIPT_ORDER.map((n) => `<script defer src="${escapeHtml(assetsPath + n)}"></script>`).join('\n')}
</head>
<body>
<div id="graphiql"><div id="graphiql-loading">Loading GraphiQL&hellip;</div></div>
<noscript>GraphiQL requires JavaScript.</noscript>
</body>
</html>
`;
  const page = makeAssetSync(Buffer.from(html, 'utf8'), 'text/html; charset=utf-8');
  const pageHeaders = {
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
  };

  return async function graphiqlHandler(req, res): Promise<boolean> {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') return false;
    if (req.headers.upgrade !== undefined) return false;

    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return false;
    }
    const pathname = url.pathname;

    if (pathname.startsWith(assetsPath)) {
      const name = pathname.slice(assetsPath.length);
      const gen = generated.get(name);
      if (gen !== undefined) {
        send(req, res, gen, 'public, max-age=300, must-revalidate');
        return true;
      }
      if (Object.prototype.hasOwnProperty.call(PACKAGE_ASSETS, name)) {
        let asset: CachedAsset;
        try {
          asset = await loadPackageAsset(name as PackageAssetName);
        } catch {
          notFound(req, res);
          return true;
        }
        send(req, res, asset, 'public, max-age=86400');
        return true;
      }
      notFound(req, res);
      return true;
    }

    if (pathname === endpointPath) {
      if (url.searchParams.has('query')) return false;
      if (!prefersHtml(req.headers.accept)) return false;
      send(req, res, page, 'no-cache', pageHeaders);
      return true;
    }

    return false;
  };
}
