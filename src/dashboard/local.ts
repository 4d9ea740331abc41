// `skiff dashboard`: the dashboard on 127.0.0.1 for the machine's admin, as
// `kubectl proxy` plus the UI. One plain-HTTP listener on loopback serves
// the static files (serve.ts) and passes every other request, WebSocket
// upgrades included (exec), to the API server with the kubeconfig's own
// credentials. The UI finds it is logged in already: /api answers without
// a token.
//
// As kubectl proxy's filter (--accept-hosts '^localhost$,^127\.0\.0\.1$'),
// a request is refused unless its Host is this loopback listener, so no web
// page can reach the proxy through DNS rebinding; and as a browser's fetch
// from another site carries an Origin, one naming another origin is refused
// too, so no page can drive the admin's credentials cross-site.

import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { parse } from 'yaml';
import { proxyUpgrade } from '../util/upgrade-proxy.ts';
import { DASHBOARD_PATH, DASHBOARD_UI_DIR, dashboardHandler } from './serve.ts';

/** The parts of a kubeconfig's current context the proxy uses. */
export interface KubeconfigCredentials {
  server: string;
  tls: ConnectionOptions;
  token?: string;
}

/** Reads the current context's server and credentials (inline data or files) from a kubeconfig. */
export function readKubeconfig(path: string): KubeconfigCredentials {
  const doc = parse(readFileSync(path, 'utf8')) as any;
  const context = (doc.contexts ?? []).find((c: any) => c.name === doc['current-context'])?.context;
  const cluster = (doc.clusters ?? []).find((c: any) => c.name === context?.cluster)?.cluster;
  const user = (doc.users ?? []).find((u: any) => u.name === context?.user)?.user ?? {};
  if (!cluster?.server) throw new Error(`${path}: no server in the current context`);
  const pem = (data: string | undefined, file: string | undefined) =>
    data ? Buffer.from(data, 'base64').toString('utf8') : file ? readFileSync(file, 'utf8') : undefined;
  const tls: ConnectionOptions = {};
  const ca = pem(cluster['certificate-authority-data'], cluster['certificate-authority']);
  const cert = pem(user['client-certificate-data'], user['client-certificate']);
  const key = pem(user['client-key-data'], user['client-key']);
  if (ca) tls.ca = ca;
  if (cert) tls.cert = cert;
  if (key) tls.key = key;
  return { server: cluster.server, tls, ...(user.token ? { token: user.token } : {}) };
}

export interface LocalDashboard {
  url: string;
  server: Server;
  stop(): Promise<void>;
}

/** Headers never passed to the API server: the proxy's own credentials replace them. */
const DROPPED = ['host', 'authorization', 'cookie', 'origin', 'referer'];

export async function startLocalDashboard(opts: {
  kubeconfig: string;
  port: number;
  uiDir?: string;
}): Promise<LocalDashboard> {
  const upstream = readKubeconfig(opts.kubeconfig);
  const serveStatic = dashboardHandler(opts.uiDir ?? DASHBOARD_UI_DIR);
  const server = createServer((req, res) => {
    const refusal = refuse(req, port);
    if (refusal) return res.writeHead(403, { 'Content-Type': 'text/plain' }).end(`${refusal}\n`);
    if (req.url === '/' || req.url === '') return res.writeHead(302, { Location: DASHBOARD_PATH }).end();
    if (serveStatic(req, res)) return;
    forward(req, res, upstream);
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const refusal = refuse(req, port);
    if (refusal) return socket.end(`HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n`);
    const target = new URL(req.url ?? '/', upstream.server);
    if (upstream.token) req.headers.authorization = `Bearer ${upstream.token}`;
    proxyUpgrade(req, socket, head, {
      target,
      tls: upstream.tls,
      dropHeaders: DROPPED.filter((h) => h !== 'authorization' || !upstream.token),
      onDialError: () => socket.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n'),
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}${DASHBOARD_PATH}`,
    server,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Why a request may not use the proxy (see the header comment), or undefined. */
export function refuse(req: IncomingMessage, port: number): string | undefined {
  const allowed = [`127.0.0.1:${port}`, `localhost:${port}`];
  if (!allowed.includes(req.headers.host ?? '')) return `host ${req.headers.host} is not this proxy`;
  const origin = req.headers.origin;
  if (origin !== undefined && !allowed.some((h) => origin === `http://${h}`))
    return `origin ${origin} may not use this proxy`;
  return undefined;
}

function forward(req: IncomingMessage, res: ServerResponse, upstream: KubeconfigCredentials): void {
  const target = new URL(req.url ?? '/', upstream.server);
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined && !DROPPED.includes(name)) headers[name] = value;
  }
  if (upstream.token) headers.authorization = `Bearer ${upstream.token}`;
  const out = httpsRequest(target, { method: req.method, headers, ...upstream.tls }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  out.on('error', (err) => {
    if (res.headersSent) return res.destroy();
    res
      .writeHead(502, { 'Content-Type': 'text/plain' })
      .end(`the API server did not answer: ${err.message}\n`);
  });
  // A watch the browser drops must end upstream too.
  res.on('close', () => out.destroy());
  req.pipe(out);
}
