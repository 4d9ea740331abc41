// registries.yaml's `rewrite` for a containerd that has none. k3s's
// containerd fork reads rewrites from hosts.toml; Debian's containerd 1.6
// does not. So for a mirror with rewrites, the agent puts one small proxy
// per endpoint on loopback, and hosts.toml names the proxy instead of the
// endpoint. The proxy renames the repository in each distribution API path
// (`/v2/<name>/manifests|blobs|tags/...`) by the first rewrite that changes
// it, patterns in sorted order, and forwards the request to the endpoint
// with the endpoint's TLS (ca_file, client certificate, insecure_skip_verify).
// Everything else passes through unchanged, both ways: status, the
// registry's WWW-Authenticate challenge, redirects, bodies (streamed).
//
// Credentials stay containerd's: it looks them up by the host it talks to,
// so the endpoint's `auth` is also written under the proxy's host
// (withRewriteProxies), and the proxy forwards the Authorization header. A
// bearer-token registry sends containerd to its token service directly.
//
// The image keeps its own name on the node, as k3s documents: crictl shows
// docker.io/rancher/x:1 though it came from mirror/rancher/x:1.

import { readFileSync } from 'node:fs';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { Log } from '../util/log.ts';
import { type HostEndpoint, normalizeEndpoint, type Registries, type RegistryTLS } from './registries.ts';

export interface RewriteProxy {
  /** `http://127.0.0.1:<port>`, as hosts.toml names it. */
  endpoint: string;
  close(): Promise<void>;
}

/**
 * The repository name after k3s's rewrites: the first pattern (in sorted
 * order) that changes it wins. Replacements use Go's `$1` or `${1}`.
 */
export function rewriteRepository(name: string, rewrites: Record<string, string>): string {
  for (const pattern of Object.keys(rewrites).sort()) {
    const replacement = (rewrites[pattern] ?? '').replace(/\$\{(\w+)\}/g, (_, g: string) =>
      /^\d+$/.test(g) ? `$${g}` : `$<${g}>`,
    );
    const renamed = name.replace(new RegExp(pattern), replacement);
    if (renamed !== name) return renamed;
  }
  return name;
}

const API_PATH = /^\/v2\/(.+)\/(manifests|blobs|tags)\/(.*)$/;
/** Hop-by-hop headers, which a proxy does not forward (RFC 9110 section 7.6.1). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
  'host',
]);

export async function startRewriteProxy(opts: {
  upstream: HostEndpoint;
  rewrites: Record<string, string>;
  log?: Log;
}): Promise<RewriteProxy> {
  const upstream = new URL(opts.upstream.url);
  const base = upstream.pathname.replace(/\/+$/, '');
  const tls = tlsOptions(opts.upstream.tls);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const route = API_PATH.exec(url.pathname);
    // The endpoint's own path stands in for /v2 (override_path), as containerd would use it.
    const path = route
      ? `${base}/${rewriteRepository(route[1] ?? '', opts.rewrites)}/${route[2]}/${route[3]}`
      : url.pathname.replace(/^\/v2(?=\/|$)/, base);
    const headers: OutgoingHttpHeaders = { host: upstream.host };
    for (const [k, v] of Object.entries(req.headers))
      if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = v;
    const send = upstream.protocol === 'https:' ? httpsRequest : httpRequest;
    const out = send(
      {
        protocol: upstream.protocol,
        hostname: upstream.hostname.replace(/^\[|\]$/g, ''),
        port: upstream.port || (upstream.protocol === 'https:' ? 443 : 80),
        method: req.method,
        path: `${path}${url.search}`,
        headers,
        ...tls,
      },
      (upstreamRes: IncomingMessage) => {
        const back: OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(upstreamRes.headers))
          if (!HOP_BY_HOP.has(k) && v !== undefined) back[k] = v;
        res.writeHead(upstreamRes.statusCode ?? 502, back);
        pipeline(upstreamRes, res).catch(() => res.destroy());
      },
    );
    out.on('error', (err) => {
      opts.log?.warn('registry rewrite proxy: the endpoint did not answer', {
        endpoint: opts.upstream.url,
        error: err.message,
      });
      if (res.headersSent) return res.destroy();
      res.writeHead(502, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          errors: [{ code: 'UNAVAILABLE', message: `${opts.upstream.url}: ${err.message}` }],
        }),
      );
    });
    pipeline(req, out).catch(() => out.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function tlsOptions(tls: RegistryTLS | undefined) {
  return {
    ...(tls?.ca_file ? { ca: readFileSync(tls.ca_file) } : {}),
    ...(tls?.cert_file && tls.key_file
      ? { cert: readFileSync(tls.cert_file), key: readFileSync(tls.key_file) }
      : {}),
    ...(tls?.insecure_skip_verify ? { rejectUnauthorized: false } : {}),
  };
}

/**
 * The registries with every endpoint of a mirror that has rewrites replaced
 * by a rewrite proxy in front of it, the endpoint's credentials copied to
 * the proxy's host, and the rewrites dropped (they are applied now). The
 * proxies are started here; close them with the node.
 */
export async function withRewriteProxies(
  registries: Registries,
  log?: Log,
): Promise<{ registries: Registries; proxies: RewriteProxy[] }> {
  const proxies: RewriteProxy[] = [];
  const mirrors = { ...registries.mirrors };
  const configs = { ...registries.configs };
  try {
    for (const [host, mirror] of Object.entries(registries.mirrors)) {
      if (!mirror.rewrite || Object.keys(mirror.rewrite).length === 0) continue;
      const endpoint: string[] = [];
      for (const e of mirror.endpoint) {
        const upstream = normalizeEndpoint(e);
        const endpointHost = new URL(upstream.url).host;
        const config = registries.configs[endpointHost];
        const proxy = await startRewriteProxy({
          upstream: config?.tls ? { ...upstream, tls: config.tls } : upstream,
          rewrites: mirror.rewrite,
          ...(log ? { log } : {}),
        });
        proxies.push(proxy);
        endpoint.push(proxy.endpoint);
        if (config?.auth) configs[new URL(proxy.endpoint).host] = { auth: config.auth };
        log?.('registry rewrites applied through a local proxy', {
          registry: host,
          endpoint: e,
          proxy: proxy.endpoint,
        });
      }
      mirrors[host] = { endpoint };
    }
  } catch (err) {
    await Promise.all(proxies.map((p) => p.close()));
    throw err;
  }
  return { registries: { mirrors, configs }, proxies };
}
