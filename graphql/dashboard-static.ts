/**
 * Serves the built dashboard (`dashboard/dist`, made by `npm run build:dashboard`) from the API
 * server: static files with their content types, and index.html for any other GET path (the SPA
 * fallback). `/graphql`, `/ingest/…`, `/readiness` and `/healthz` are never answered here.
 *
 * The folder is looked up on every request, so a build made after the server started is served.
 * Without a build, `/` answers a short page that says how to make one.
 */
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';

export const DEFAULT_DASHBOARD_DIR = path.resolve(__dirname, '..', 'dashboard', 'dist');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
};

/** Paths that belong to the API, never to the dashboard. */
const RESERVED = [/^\/graphql(\/|$)/, /^\/ingest(\/|$)/, /^\/readiness$/, /^\/healthz$/];

const MISSING_BUILD = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ladder</title></head>
<body style="font-family: system-ui, sans-serif; margin: 3em">
<h1>Ladder</h1>
<p>The dashboard is not built. Run <code>npm run build:dashboard</code> and reload this page.</p>
<p>The GraphQL API is at <a href="/graphql">/graphql</a>.</p>
</body></html>
`;

export function contentTypeOf(file: string): string {
  return CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * Returns a handler that answers GET and HEAD requests for the dashboard and returns true, or
 * returns false (without touching the response) for requests that are not its own.
 */
export function createDashboardHandler(options: { dir?: string } = {}) {
  const dir = path.resolve(options.dir ?? DEFAULT_DASHBOARD_DIR);

  return async function handleDashboard(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      return false;
    }
    if (RESERVED.some((r) => r.test(pathname))) return false;

    const send = (status: number, type: string, body: Buffer | string, cache: string) => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': cache, 'x-content-type-options': 'nosniff' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return true;
    };

    const index = path.join(dir, 'index.html');
    const indexHtml = await fs.promises.readFile(index).catch(() => null);
    if (!indexHtml) return send(200, 'text/html; charset=utf-8', MISSING_BUILD, 'no-store');

    const file = path.resolve(dir, '.' + path.posix.normalize(pathname));
    if (file !== dir && file.startsWith(dir + path.sep)) {
      const stat = await fs.promises.stat(file).catch(() => null);
      if (stat?.isFile()) {
        const body = await fs.promises.readFile(file);
        // Vite's hashed assets never change; everything else is revalidated.
        const immutable = pathname.startsWith('/assets/');
        return send(200, contentTypeOf(file), body, immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
      }
    }
    // A missing file with an extension is a 404, not the app (a broken asset link should show).
    if (path.posix.extname(pathname)) return send(404, 'text/plain; charset=utf-8', 'not found\n', 'no-store');
    return send(200, 'text/html; charset=utf-8', indexHtml, 'no-cache');
  };
}
