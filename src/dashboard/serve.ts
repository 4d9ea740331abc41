// Serves the dashboard's static files under /dashboard/. Only static assets,
// and unauthenticated: the page holds no data and no credential. Everything
// it shows comes from the public Kubernetes API, called by the browser with
// the user's own bearer token, so the user sees and may do exactly what
// RBAC lets them (the dashboard has no identity of its own).

import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DASHBOARD_PATH = '/dashboard/';

/** Where the built bundle is (src/dashboard/build.ts writes it), from src/ and from dist/ alike. */
export const DASHBOARD_UI_DIR = fileURLToPath(new URL('../../dist/dashboard-ui/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
};

// The app runs no inline script and loads nothing from elsewhere; 'self'
// covers the same origin's wss: for exec. xterm.js sets inline styles.
const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

/**
 * A handler for the dashboard's paths: true when it answered the request,
 * false for every other path (the API's). `dir` holds the built bundle
 * (src/dashboard/build.ts); a missing bundle is a 503 that says how to build it.
 */
export function dashboardHandler(dir: string): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const path = (req.url ?? '').split('?')[0]!;
    if (path !== '/dashboard' && !path.startsWith(DASHBOARD_PATH)) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('method not allowed\n');
      return true;
    }
    if (path === '/dashboard') {
      res.writeHead(301, { Location: DASHBOARD_PATH }).end();
      return true;
    }
    const name = path.slice(DASHBOARD_PATH.length) || 'index.html';
    // One flat directory: a name is a plain file name, never a path.
    if (!/^[\w.-]+$/.test(name) || name.startsWith('.')) return notFound(res);
    let body: Buffer;
    try {
      body = readFileSync(join(dir, name));
    } catch (err) {
      if (name === 'index.html' && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        res
          .writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' })
          .end('The dashboard is not built: run scripts/setup.sh (or node src/dashboard/build.ts).\n');
        return true;
      }
      return notFound(res);
    }
    res.writeHead(200, {
      'Content-Type': CONTENT_TYPES[extname(name)] ?? 'application/octet-stream',
      'Content-Length': body.length,
      // The bundle's names do not change between builds: revalidate each load.
      'Cache-Control': 'no-cache',
      ...SECURITY_HEADERS,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}

function notFound(res: ServerResponse): true {
  res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  return true;
}
