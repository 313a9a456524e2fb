/**
 * Self-hosted, offline GraphiQL for the `/graphql` endpoint.
 *
 * - A browser `GET <endpointPath>` (Accept prefers text/html, no `query` param)
 *   receives a small HTML page.
 * - The page loads React 18, ReactDOM 18, GraphiQL 3 (UMD bundle + CSS) and the
 *   graphql-ws client UMD from `<assetsPath>*`, served straight from node_modules
 *   with `send` (ETag, Last-Modified, 304, HEAD, Range) and `compression` (gzip);
 *   `negotiator` decides whether a GET of the endpoint wants the page.
 * - The bootstrap lives in a separate served file (`init.js`) so the
 *   Content-Security-Policy can restrict scripts to 'self' (no inline script).
 *   Page configuration is passed in a non-executable JSON data block.
 * - Queries/mutations go over HTTP POST to the endpoint, subscriptions over
 *   graphql-ws (graphql-transport-ws protocol) at ws(s)://<same host><endpoint>.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Negotiator from 'negotiator';
import { escapeHtml, jsonForHtml, notFound, packageDir, serveFile } from './staticFiles.js';

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

function normalizeAssetsPath(p: string | undefined): string {
  let out = p ?? '/graphiql/';
  if (!out.startsWith('/')) out = `/${out}`;
  if (!out.endsWith('/')) out = `${out}/`;
  return out;
}

/** Media types this endpoint answers with itself; a browser's Accept prefers text/html over them. */
const GRAPHQL_TYPES = ['application/graphql-response+json', 'application/json', 'multipart/mixed', 'text/event-stream'];

/**
 * True when the client prefers text/html over the GraphQL media types (negotiator). A bare
 * wildcard (curl's default) does not count as asking for HTML.
 */
export function prefersHtml(acceptHeader: string | undefined): boolean {
  if (!acceptHeader) return false;
  return (
    new Negotiator({ headers: { accept: acceptHeader } }).mediaType([...GRAPHQL_TYPES, 'text/html']) === 'text/html'
  );
}

export function createGraphiQLHandler(options: GraphiQLHandlerOptions): GraphiQLHandler {
  const endpointPath = options.endpointPath;
  if (!endpointPath.startsWith('/')) {
    throw new Error(`graphiql: endpointPath must start with '/', got ${JSON.stringify(endpointPath)}`);
  }
  const assetsPath = normalizeAssetsPath(options.assetsPath);
  const title = options.title ?? 'GraphiQL';

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
  // The generated files are written once, to a directory of their own, and served like the others.
  // Named by their content, so every replica (and every restart) with the same page shares one
  // directory instead of leaving a new one behind each time.
  const dir = path.join(
    tmpdir(),
    `iot-graphiql-${createHash('sha256').update(INIT_JS).update(PAGE_CSS).update(html).digest('hex').slice(0, 16)}`,
  );
  mkdirSync(dir, { recursive: true });
  const generated: Record<string, { file: string; type: string }> = {};
  for (const [name, body, type] of [
    ['init.js', INIT_JS, 'text/javascript; charset=utf-8'],
    ['page.css', PAGE_CSS, 'text/css; charset=utf-8'],
    ['index.html', html, 'text/html; charset=utf-8'],
  ] as const) {
    const file = path.join(dir, name);
    if (!existsSync(file)) {
      // Written aside, then renamed: a concurrent reader never sees half a file.
      const partial = `${file}.${process.pid}.tmp`;
      writeFileSync(partial, body);
      renameSync(partial, file);
    }
    generated[name] = { file: path.join(dir, name), type };
  }
  const pageHeaders = {
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
  };

  return function graphiqlHandler(req, res): boolean {
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
      const own = name === 'index.html' ? undefined : generated[name];
      if (own) {
        serveFile(req, res, own.file, 300, { 'Content-Type': own.type });
        return true;
      }
      if (Object.prototype.hasOwnProperty.call(PACKAGE_ASSETS, name)) {
        const spec = PACKAGE_ASSETS[name as PackageAssetName];
        let file: string;
        try {
          file = path.join(packageDir(spec.pkg), spec.file);
        } catch {
          notFound(req, res);
          return true;
        }
        serveFile(req, res, file, 86_400, { 'Content-Type': spec.type });
        return true;
      }
      notFound(req, res);
      return true;
    }

    if (pathname === endpointPath) {
      if (url.searchParams.has('query')) return false;
      if (!prefersHtml(req.headers.accept)) return false;
      serveFile(req, res, generated['index.html']!.file, 0, {
        ...pageHeaders,
        'Content-Type': generated['index.html']!.type,
      });
      return true;
    }

    return false;
  };
}
