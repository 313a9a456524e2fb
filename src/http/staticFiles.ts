/**
 * Static files of the browser pages (GraphiQL, the dashboard): served with `send` (ETag,
 * Last-Modified, 304, HEAD, Range) and gzip (`compression`), from node_modules or our own files.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import compression from 'compression';
import send from 'send';

const require = createRequire(import.meta.url);
const packageDirCache = new Map<string, string>();

/** Directory of an installed package (its exports map may hide package.json: then walk up from its main entry). */
export function packageDir(pkg: string): string {
  const cached = packageDirCache.get(pkg);
  if (cached !== undefined) return cached;
  let dir: string;
  try {
    dir = path.dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    let cur = path.dirname(require.resolve(pkg));
    while (
      !existsSync(path.join(cur, 'package.json')) ||
      (JSON.parse(readFileSync(path.join(cur, 'package.json'), 'utf8')) as { name?: string }).name !== pkg
    ) {
      const parent = path.dirname(cur);
      if (parent === cur) throw new Error(`cannot locate package "${pkg}"`);
      cur = parent;
    }
    dir = cur;
  }
  packageDirCache.set(pkg, dir);
  return dir;
}

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** JSON safe to embed inside a <script type="application/json"> element. */
export function jsonForHtml(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** gzip for text over 1 KiB, when the client accepts it (compression). */
const compress = compression({ threshold: 1024 });

/** Sends one file with `send` (ETag, Last-Modified, 304, HEAD, Range), compressed when accepted. */
export function serveFile(
  req: IncomingMessage,
  res: ServerResponse,
  file: string,
  maxAgeS: number,
  headers: Record<string, string>,
): void {
  compress(req as Parameters<typeof compress>[0], res as Parameters<typeof compress>[1], () => {
    const stream = send(req, file, { maxAge: maxAgeS * 1000, index: false, dotfiles: 'deny' });
    stream.on('headers', (r: ServerResponse) => {
      r.setHeader('X-Content-Type-Options', 'nosniff');
      r.setHeader('Vary', 'Accept, Accept-Encoding');
      if (maxAgeS === 0) r.setHeader('Cache-Control', 'no-cache');
      for (const [k, v] of Object.entries(headers)) r.setHeader(k, v);
    });
    stream.on('error', (err: { status?: number }) => notFound(req, res, err.status ?? 404));
    stream.pipe(res);
  });
}

export function notFound(req: IncomingMessage, res: ServerResponse, status = 404): void {
  const body = status === 404 ? 'Not Found\n' : 'Error\n';
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Cache-Control', 'no-store');
  if (req.method === 'HEAD') res.end();
  else res.end(body);
}
