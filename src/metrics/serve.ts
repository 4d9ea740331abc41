// A plain-HTTP /metrics endpoint on loopback, as kube-proxy serves its
// metrics (127.0.0.1:10249, upstream's --metrics-bind-address default) and
// CoreDNS its own (:9153): no credentials, so loopback only.

import { createServer, type Server as HttpServer, type Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Log } from '../util/log.ts';
import { type Registry, writeMetrics } from './prometheus.ts';

export interface HttpMetricsEndpoint {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves registry on http://host:port/metrics; a port already taken is logged and skipped (undefined). */
export async function serveMetricsHttp(opts: {
  component: string;
  host: string;
  port: number;
  registry: Registry;
  log: Log;
}): Promise<HttpMetricsEndpoint | undefined> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://metrics').pathname;
    if (path === '/metrics' && req.method === 'GET') {
      writeMetrics(opts.registry, res).catch(() => res.destroy());
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('404 page not found\n');
  });
  return listenForMetrics(server, opts, 'http');
}

/**
 * Listens on host:port and returns the endpoint, or logs and returns
 * undefined when the port is taken (several servers on one machine): what
 * every component's /metrics endpoint does, over HTTP or HTTPS.
 */
export async function listenForMetrics(
  server: HttpServer | HttpsServer,
  opts: { component: string; host: string; port: number; log: Log },
  scheme: 'http' | 'https',
): Promise<HttpMetricsEndpoint | undefined> {
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    opts.log.warn('metrics endpoint not served', {
      component: opts.component,
      address: `${opts.host}:${opts.port}`,
      error: String((err as Error).message ?? err),
    });
    return undefined;
  }
  const port = (server.address() as { port: number }).port;
  opts.log('metrics endpoint listening', {
    component: opts.component,
    url: `${scheme}://${opts.host}:${port}/metrics`,
  });
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
