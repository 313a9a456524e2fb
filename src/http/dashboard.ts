/**
 * The operator's dashboard at `/dashboard`: sensors on a map (SVG of their coordinates, no tile
 * server), live temperature lines (uPlot, served from node_modules) and incidents with an acknowledge
 * button. Offline like GraphiQL: every file comes from this API, under a Content-Security-Policy
 * that allows nothing else. The page is static; its script (public/dashboard/app.js) reads
 * everything through the public GraphQL API, with the credential the operator types in (kept in the
 * browser), or the development admin key in DEV_MODE. Without one it sends nothing and asks for it,
 * unless the API lets callers in without credentials.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { escapeHtml, jsonForHtml, notFound, packageDir, serveFile } from './staticFiles.js';

export const DASHBOARD_PATH = '/dashboard';

const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self' ws: wss:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Our own files: the nearest ancestor of this module holding public/dashboard (src/ and dist/ alike). */
function ownDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'public', 'dashboard');
    if (existsSync(join(candidate, 'app.js'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('public/dashboard not found next to the application');
    dir = parent;
  }
}

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

export function createDashboardHandler(o: {
  endpointPath: string;
  /** DEV_MODE only: the development admin key, prefilled so `npm run demo` shows data at once. */
  devKey?: string | undefined;
  /** The API lets callers in without a credential: the page starts without asking for one. */
  openAccess?: boolean;
}): (req: IncomingMessage, res: ServerResponse) => boolean {
  const own = ownDir();
  const assets: Record<string, { file: () => string; type: string; maxAgeS: number }> = {
    'app.js': { file: () => join(own, 'app.js'), type: JS, maxAgeS: 0 },
    'app.css': { file: () => join(own, 'app.css'), type: CSS, maxAgeS: 0 },
    'uPlot.iife.min.js': { file: () => join(packageDir('uplot'), 'dist/uPlot.iife.min.js'), type: JS, maxAgeS: 86_400 },
    'uPlot.min.css': { file: () => join(packageDir('uplot'), 'dist/uPlot.min.css'), type: CSS, maxAgeS: 86_400 },
    'graphql-ws.min.js': {
      file: () => join(packageDir('graphql-ws'), 'umd/graphql-ws.min.js'),
      type: JS,
      maxAgeS: 86_400,
    },
  };
  const config = {
    endpoint: o.endpointPath,
    ...(o.devKey ? { devKey: o.devKey } : {}),
    ...(o.openAccess ? { openAccess: true } : {}),
  };
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${escapeHtml('iot-realtime-pipeline · dashboard')}</title>
<link rel="stylesheet" href="${DASHBOARD_PATH}/uPlot.min.css">
<link rel="stylesheet" href="${DASHBOARD_PATH}/app.css">
</head>
<body>
<header>
  <h1>iot-realtime-pipeline</h1>
  <label>Credential <input id="key" type="password" autocomplete="off" placeholder="API key or token"></label>
  <span id="status" class="status">connecting…</span>
</header>
<main>
  <section id="map"><h2>Sensors</h2><svg id="map-svg" viewBox="0 0 600 320" role="img" aria-label="sensor map"></svg></section>
  <section><h2>Incidents</h2>
    <table><thead><tr><th>sensor</th><th>status</th><th>opened</th><th>peak</th><th>last</th><th>readings</th><th></th></tr></thead>
    <tbody id="incident-rows"></tbody></table>
  </section>
  <section class="wide"><h2>Temperature</h2><div id="charts"></div><p id="charts-empty" class="empty">No readings yet.</p></section>
</main>
<script id="dashboard-config" type="application/json">${jsonForHtml(config)}</script>
<script src="${DASHBOARD_PATH}/graphql-ws.min.js"></script>
<script src="${DASHBOARD_PATH}/uPlot.iife.min.js"></script>
<script src="${DASHBOARD_PATH}/app.js"></script>
</body>
</html>
`;
  const etag = `"${createHash('sha256').update(html).digest('hex').slice(0, 16)}"`;

  return (req, res) => {
    const method = req.method ?? 'GET';
    if ((method !== 'GET' && method !== 'HEAD') || req.headers.upgrade !== undefined) return false;
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (pathname === DASHBOARD_PATH || pathname === `${DASHBOARD_PATH}/`) {
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Security-Policy': CONTENT_SECURITY_POLICY,
        'Referrer-Policy': 'no-referrer',
        'X-Frame-Options': 'DENY',
        'X-Content-Type-Options': 'nosniff',
        'Cache-Control': 'no-cache',
        ETag: etag,
      });
      res.end(method === 'HEAD' ? undefined : html);
      return true;
    }
    if (!pathname.startsWith(`${DASHBOARD_PATH}/`)) return false;
    const asset = assets[pathname.slice(DASHBOARD_PATH.length + 1)];
    if (!asset) {
      notFound(req, res);
      return true;
    }
    serveFile(req, res, asset.file(), asset.maxAgeS, { 'Content-Type': asset.type });
    return true;
  };
}
