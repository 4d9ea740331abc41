// pods/proxy and services/proxy: the API server forwards a request to a pod,
// or to a ready endpoint of a service, as upstream's ProxyREST
// (pkg/registry/core/pod/rest/subresources.go, service/proxy.go) with the
// locations of pod/strategy.go and service/storage ResourceLocation. With
// `kubectl proxy`, /api/v1/namespaces/NS/services/NAME:PORT/proxy/ is how
// a user reaches a ClusterIP service from outside the cluster.
//
// The name may be NAME, NAME:PORT or SCHEME:NAME:PORT (http or https). A
// pod is reached at its IP and the port (the first container port when none
// is given); a service through its Endpoints: the port is matched by name
// (a number is turned into the service port's name first), and only an
// address whose targetRef is a pod that really has that IP is used.
// Redirects from the backend are rewritten into the proxy's path.
//
// Not done (upstream does both): rewriting links inside HTML bodies, and
// upgrades (WebSocket) through the proxy.

import { isIP } from 'node:net';
import { ApiError, badRequest } from '../api/errors.ts';
import type { KubeObject } from '../api/meta.ts';
import type { Endpoints, Pod, Service } from '../api/types/core-v1.ts';
import { forward } from './forward.ts';
import type { ApiRequest, ApiResponse } from './http.ts';

export interface ResourceProxyDeps {
  getPod(namespace: string, name: string): Promise<KubeObject>;
  getService(namespace: string, name: string): Promise<KubeObject>;
  getEndpoints(namespace: string, name: string): Promise<KubeObject>;
  /**
   * Whether the API server may connect to this IP. Upstream allows only
   * global unicast addresses (no loopback, link-local or multicast), so the
   * proxy cannot be turned against the server's own host; tests override it.
   */
  allowAddress?: (ip: string) => boolean;
}

interface ProxyTarget {
  scheme: 'http' | 'https';
  name: string;
  port: string;
}

/** upstream's SplitSchemeNamePort. */
export function splitSchemeNamePort(id: string): ProxyTarget | undefined {
  const parts = id.split(':');
  let scheme = '';
  let name = '';
  let port = '';
  if (parts.length === 1) [name = ''] = parts;
  else if (parts.length === 2) [name = '', port = ''] = parts;
  else if (parts.length === 3) [scheme = '', name = '', port = ''] = parts;
  else return undefined;
  if (name === '' || (scheme !== '' && scheme !== 'http' && scheme !== 'https')) return undefined;
  return { scheme: scheme === 'https' ? 'https' : 'http', name, port };
}

/** Go's IP.IsGlobalUnicast: not unspecified, loopback, link-local, multicast or broadcast. */
export function isGlobalUnicast(ip: string): boolean {
  const v = isIP(ip);
  if (v === 4) {
    const [a = 0, b = 0] = ip.split('.').map(Number);
    if (ip === '0.0.0.0' || ip === '255.255.255.255') return false;
    return a !== 127 && !(a === 169 && b === 254) && !(a >= 224 && a <= 239);
  }
  if (v === 6) {
    const l = ip.toLowerCase();
    return (
      l !== '::' &&
      l !== '::1' &&
      !l.startsWith('fe8') &&
      !l.startsWith('fe9') &&
      !l.startsWith('fea') &&
      !l.startsWith('feb') &&
      !l.startsWith('ff')
    );
  }
  return false;
}

const hostPort = (ip: string, port: string) => (ip.includes(':') ? `[${ip}]` : ip) + (port ? `:${port}` : '');

export function createResourceProxy(deps: ResourceProxyDeps) {
  const allowed = deps.allowAddress ?? isGlobalUnicast;

  async function podLocation(ns: string, id: string): Promise<URL> {
    const t = splitSchemeNamePort(id);
    if (!t) throw badRequest(`invalid pod request ${JSON.stringify(id)}`);
    const pod = (await deps.getPod(ns, t.name)) as Pod;
    let port = t.port;
    if (port === '') {
      const withPorts = (pod.spec?.containers ?? []).find((c) => (c.ports ?? []).length > 0);
      const first = withPorts?.ports?.[0]?.containerPort;
      if (first !== undefined) port = String(first);
    }
    const ip = pod.status?.podIPs?.[0]?.ip ?? pod.status?.podIP ?? '';
    if (!isIP(ip) || !allowed(ip)) throw badRequest('address not allowed');
    return new URL(`${t.scheme}://${hostPort(ip, port)}`);
  }

  async function serviceLocation(ns: string, id: string): Promise<URL> {
    const t = splitSchemeNamePort(id);
    if (!t) throw badRequest(`invalid service request ${JSON.stringify(id)}`);
    let portName = t.port;
    if (/^\d+$/.test(portName)) {
      const svc = (await deps.getService(ns, t.name)) as Service;
      const match = (svc.spec?.ports ?? []).find((p) => p.port === Number(portName));
      if (!match)
        throw new ApiError(
          503,
          'ServiceUnavailable',
          `no service port ${portName} found for service ${JSON.stringify(t.name)}`,
        );
      portName = match.name ?? '';
    }
    const eps = (await deps.getEndpoints(ns, t.name)) as Endpoints;
    const subsets = eps.subsets ?? [];
    if (subsets.length === 0)
      throw new ApiError(
        503,
        'ServiceUnavailable',
        `no endpoints available for service ${JSON.stringify(t.name)}`,
      );
    // Start at a random subset and address, as upstream, so load spreads.
    const start = Math.floor(Math.random() * subsets.length);
    for (let i = 0; i < subsets.length; i++) {
      const ss = subsets[(start + i) % subsets.length]!;
      const addresses = ss.addresses ?? [];
      const port = (ss.ports ?? []).find((p) => (p.name ?? '') === portName);
      if (!port || addresses.length === 0) continue;
      const seed = Math.floor(Math.random() * addresses.length);
      for (let j = 0; j < addresses.length; j++) {
        const addr = addresses[(seed + j) % addresses.length]!;
        if (await validAddress(ns, addr))
          return new URL(`${t.scheme}://${hostPort(addr.ip ?? '', String(port.port))}`);
      }
    }
    throw new ApiError(503, 'ServiceUnavailable', `no endpoints available for service ${JSON.stringify(id)}`);
  }

  /** upstream's isValidAddress: the endpoint names a pod that has this IP. */
  async function validAddress(
    ns: string,
    addr: { ip?: string; targetRef?: { kind?: string; name?: string; namespace?: string } },
  ) {
    const ref = addr.targetRef;
    if (!addr.ip || !allowed(addr.ip) || ref?.kind !== 'Pod' || !ref.name) return false;
    try {
      const pod = (await deps.getPod(ref.namespace ?? ns, ref.name)) as Pod;
      const ips = [...(pod.status?.podIPs ?? []).map((p) => p.ip), pod.status?.podIP];
      return ips.includes(addr.ip);
    } catch {
      return false;
    }
  }

  /**
   * Serves .../{pods|services}/ID/proxy[/path]: `base` is the request path
   * up to and including "proxy", `path` what follows it ('' or starting with '/').
   */
  async function serve(
    kind: 'pods' | 'services',
    req: ApiRequest,
    res: ApiResponse,
    ns: string,
    id: string,
    base: string,
    path: string,
    query: URLSearchParams,
  ): Promise<void> {
    const loc = kind === 'pods' ? await podLocation(ns, id) : await serviceLocation(ns, id);
    // The backend's root needs the slash: .../proxy is redirected to .../proxy/ (upstream's behaviour).
    if (path === '') {
      const qs = query.toString();
      res.writeHead(301, {
        Location: `${base}/${qs ? `?${qs}` : ''}`,
        'Content-Type': 'text/html; charset=utf-8',
      });
      res.end();
      return;
    }
    loc.pathname = path;
    loc.search = query.toString();
    const origin = `${loc.protocol}//${loc.host}`;
    await forward(req, res, loc, {
      rewriteLocation: (location) => {
        // An absolute redirect to the backend itself, or a path: keep the user inside the proxy.
        if (location.startsWith(origin)) return base + (location.slice(origin.length) || '/');
        if (location.startsWith('/')) return base + location;
        return location;
      },
    });
  }

  return {
    pod: (
      req: ApiRequest,
      res: ApiResponse,
      ns: string,
      id: string,
      base: string,
      path: string,
      q: URLSearchParams,
    ) => serve('pods', req, res, ns, id, base, path, q),
    service: (
      req: ApiRequest,
      res: ApiResponse,
      ns: string,
      id: string,
      base: string,
      path: string,
      q: URLSearchParams,
    ) => serve('services', req, res, ns, id, base, path, q),
  };
}

export type ResourceProxy = ReturnType<typeof createResourceProxy>;

/**
 * Splits a request URL at its proxy segment: /api/v1/namespaces/ns/pods/web:80/proxy/a/b?x
 * gives base ".../pods/web:80/proxy" and path "/a/b" (kept escaped, as sent).
 */
export function proxyPath(url: string, plural: string, name: string): { base: string; path: string } {
  const pathname = url.split('?')[0] ?? '';
  const segs = pathname.split('/');
  for (let i = 2; i < segs.length; i++) {
    if (segs[i] === 'proxy' && segs[i - 2] === plural && decodeURIComponentSafe(segs[i - 1] ?? '') === name) {
      const base = segs.slice(0, i + 1).join('/');
      return { base, path: pathname.slice(base.length) };
    }
  }
  return { base: pathname, path: '' };
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
