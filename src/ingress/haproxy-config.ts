// Renders the ingress model (model.ts) as HAProxy's configuration, and works
// out what an endpoint change needs: HAProxy's runtime API when only server
// addresses change, a reload when anything else does (a route, a backend, a
// certificate, more endpoints than a backend has server slots). This is the
// design haproxy-ingress and HAProxy's own ingress controller use: every
// backend gets a power-of-two number of server slots, unused ones in
// maintenance, so a pod coming or going is a `set server` on the running
// process, with no reload and no dropped connection.
//
// Routing is two maps (files HAProxy loads) looked up with the request's
// host and path, `<host><path>` (the host lower-cased, without a port):
//   exact.map   (map_str) Exact paths, and every Prefix path itself;
//   prefix.map  (map_beg) Prefix paths as `<path>/` (so /foo never matches
//               /foobar) and ImplementationSpecific paths as written. HAProxy
//               keeps a beg map in a prefix tree and answers the longest
//               match (pattern.c's pat_match_beg, ebmb_lookup_longest), so a
//               lookup costs the key's length, not the map's size, and the
//               longest path wins; the file is sorted longest first as well,
//               which a list lookup (-i maps) would need.
// They are looked up with the exact host, then with its first label made a
// `*` (wildcard rules), then with no host (rules without one); the first
// hit wins, else the default backend. model.ts's routeFor is the reference
// these lookups are tested against (haproxy-config.test.ts, and against a
// real HAProxy in test/e2e/ingress.test.ts).

import { join } from 'node:path';
import type { Backend, Endpoint, IngressModel, Route } from './model.ts';

/** The built-in backend for requests no rule matches (as ingress-nginx's default backend). */
export const NOT_FOUND_BACKEND = 'skiff_default_404';
const MIN_SLOTS = 4;

export interface RenderOptions {
  /** Where the maps, certificates and sockets live. */
  dir: string;
  httpPort: number;
  httpsPort: number;
  /** The address to listen on (default every address). */
  bindAddress?: string;
}

/**
 * A backend's server slot: an endpoint; `free`, a slot no endpoint has used
 * since the running HAProxy loaded its config; or `retired`, one whose
 * endpoint left. A retired slot is not given another endpoint before the
 * next reload: HAProxy may still hold idle connections of that server to
 * the old address and hand them to new requests (seen in
 * controller.test.ts: a slot moved to another port kept answering from the
 * old one for seconds), so a server of a running worker never changes
 * address.
 */
export type Slot = Endpoint | 'free' | 'retired';
/** Each backend's server slots. */
export type Slots = Map<string, Slot[]>;

export interface RenderedConfig {
  /** haproxy.cfg. */
  config: string;
  /** File name (relative to dir) to contents: maps, crt-list, certificates. */
  files: Map<string, string>;
  /**
   * Everything but the servers' addresses: when this is unchanged, the
   * running HAProxy only needs runtime updates (runtimeCommands).
   */
  structure: string;
}

const isEndpoint = (s: Slot | undefined): s is Endpoint => typeof s === 'object';
const sameEndpoint = (a: Slot | undefined, b: Slot | undefined) =>
  isEndpoint(a) && isEndpoint(b) && a.ip === b.ip && a.port === b.port;

const nextPow2 = (n: number) => {
  let s = MIN_SLOTS;
  while (s < n) s *= 2;
  return s;
};

/**
 * Places each backend's endpoints into server slots: an endpoint that stays
 * keeps its slot, one that leaves retires it, a new one takes a free slot.
 * When a backend has no free slot left for a new endpoint (or is new), the
 * answer asks for a reload, with the slots laid out afresh (fresh(): every
 * retired slot free again, grown to the next power of two when needed).
 */
export function assignSlots(model: IngressModel, previous: Slots): { slots: Slots; reload: boolean } {
  const next: Slots = new Map();
  let reload = false;
  for (const b of model.backends) {
    const prev = previous.get(b.name);
    const wanted = new Map(b.endpoints.map((e) => [`${e.ip}:${e.port}`, e]));
    if (!prev) {
      reload = true;
      const slots: Slot[] = new Array(nextPow2(b.endpoints.length)).fill('free');
      b.endpoints.forEach((e, i) => {
        slots[i] = e;
      });
      next.set(b.name, slots);
      continue;
    }
    const slots: Slot[] = prev.map((slot) => {
      if (!isEndpoint(slot)) return slot;
      const k = `${slot.ip}:${slot.port}`;
      if (!wanted.has(k)) return 'retired';
      wanted.delete(k);
      return slot;
    });
    const rest = [...wanted.values()];
    for (let i = 0; i < slots.length && rest.length > 0; i++)
      if (slots[i] === 'free') slots[i] = rest.shift()!;
    if (rest.length > 0) {
      // Out of free slots: a reload, with room for every endpoint.
      reload = true;
      const size = Math.max(slots.length, nextPow2(b.endpoints.length));
      const laid: Slot[] = [...slots.map((s) => (s === 'retired' ? 'free' : s))];
      while (laid.length < size) laid.push('free');
      for (let i = 0; i < laid.length && rest.length > 0; i++)
        if (laid[i] === 'free') laid[i] = rest.shift()!;
      next.set(b.name, laid);
    } else {
      next.set(b.name, slots);
    }
  }
  return { slots: next, reload };
}

/** The slots as a freshly loaded HAProxy has them: every retired slot free again. */
export function fresh(slots: Slots): Slots {
  return new Map([...slots].map(([b, s]) => [b, s.map((x) => (x === 'retired' ? 'free' : x))]));
}

/** The runtime API commands that turn `from` into `to` (same structure, no reload asked). */
export function runtimeCommands(from: Slots, to: Slots): string[] {
  const cmds: string[] = [];
  for (const [backend, slots] of to) {
    const old = from.get(backend) ?? [];
    slots.forEach((e, i) => {
      const o = old[i];
      const server = `${backend}/s${i + 1}`;
      if (isEndpoint(e) && !sameEndpoint(e, o)) {
        cmds.push(`set server ${server} addr ${e.ip} port ${e.port}`);
        cmds.push(`set server ${server} state ready`);
      } else if (!isEndpoint(e) && isEndpoint(o)) {
        cmds.push(`set server ${server} state maint`);
      }
    });
  }
  return cmds;
}

const byKeyLengthDesc = (a: [string, string], b: [string, string]) =>
  b[0].length - a[0].length || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/** The two routing maps' entries (key, backend), as described at the top. */
export function routingMaps(routes: readonly Route[]): {
  exact: [string, string][];
  prefix: [string, string][];
} {
  const exact = new Map<string, string>();
  const exactFromPrefix = new Map<string, string>();
  const prefix = new Map<string, string>();
  for (const r of routes) {
    const k = `${r.host}${r.path}`;
    if (r.pathType === 'Exact') {
      if (!exact.has(k)) exact.set(k, r.backend);
    } else if (r.pathType === 'Prefix') {
      if (!exactFromPrefix.has(k)) exactFromPrefix.set(k, r.backend);
      const pk = r.path === '/' ? k : `${k}/`;
      if (!prefix.has(pk)) prefix.set(pk, r.backend);
    } else if (!prefix.has(k)) {
      prefix.set(k, r.backend);
    }
  }
  // An Exact rule beats a Prefix rule of the same path (upstream's tie-break).
  for (const [k, v] of exactFromPrefix) if (!exact.has(k)) exact.set(k, v);
  return {
    exact: [...exact].sort(byKeyLengthDesc),
    prefix: [...prefix].sort(byKeyLengthDesc),
  };
}

/** Certificate file names in the certs directory: one per Secret. */
export const certFile = (secret: string): string => `certs/${secret.replace('/', '_')}.pem`;
/** The self-signed certificate for names no Secret covers. */
export const DEFAULT_CERT = 'certs/default.pem';
export const ADMIN_SOCKET = 'admin.sock';

const serverLine = (i: number, e: Slot) =>
  isEndpoint(e) ? `  server s${i + 1} ${e.ip}:${e.port}` : `  server s${i + 1} 127.0.0.1:1 disabled`;

export function renderConfig(model: IngressModel, slots: Slots, opts: RenderOptions): RenderedConfig {
  const d = (f: string) => join(opts.dir, f);
  const bind = opts.bindAddress ?? '';
  const maps = routingMaps(model.routes);
  const mapFile = (entries: [string, string][]) => entries.map(([k, v]) => `${k} ${v}\n`).join('');
  const files = new Map<string, string>([
    ['exact.map', mapFile(maps.exact)],
    ['prefix.map', mapFile(maps.prefix)],
    ['redirect.map', model.redirectHosts.map((h) => `${h} 1\n`).join('')],
  ]);
  const crtList: string[] = [];
  for (const c of model.certificates) {
    files.set(certFile(c.secret), c.pem);
    // One line per certificate: the SNI names it is chosen for.
    if (c.hosts.length > 0) crtList.push(`${d(certFile(c.secret))} [alpn h2,http/1.1] ${c.hosts.join(' ')}`);
  }
  files.set('crt-list.txt', crtList.map((l) => `${l}\n`).join(''));

  const head = `# Written by skiff's ingress controller (src/ingress/); changes are overwritten.
global
  stats socket ${d(ADMIN_SOCKET)} mode 600 level admin expose-fd listeners
  stats timeout 30s
  hard-stop-after 30s
  ssl-default-bind-options ssl-min-ver TLSv1.2
  tune.ssl.default-dh-param 2048

defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-request 10s
  timeout http-keep-alive 60s
  timeout tunnel 1h
  option http-keep-alive
  option forwardfor
  option redispatch 1
  retries 3
  retry-on conn-failure empty-response response-timeout

frontend ingress
  bind ${bind}:${opts.httpPort}
  bind ${bind}:${opts.httpsPort} ssl crt ${d(DEFAULT_CERT)} crt-list ${d('crt-list.txt')} alpn h2,http/1.1
  http-request set-var(txn.host) req.hdr(host),field(1,:),lower
  http-request redirect scheme https code 308 if !{ ssl_fc } { var(txn.host),map_str(${d('redirect.map')}) -m found }
  http-request set-header X-Forwarded-Proto https if { ssl_fc }
  http-request set-header X-Forwarded-Proto http if !{ ssl_fc }
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  http-request set-var(txn.path) path
  http-request set-var(txn.key) var(txn.host),concat(,txn.path)
  http-request set-var(txn.be) var(txn.key),map_str(${d('exact.map')})
  http-request set-var(txn.be) var(txn.key),map_beg(${d('prefix.map')}) if !{ var(txn.be) -m found }
  http-request set-var(txn.key) var(txn.host),regsub(^[^.]*,*),concat(,txn.path) if !{ var(txn.be) -m found }
  http-request set-var(txn.be) var(txn.key),map_str(${d('exact.map')}) if !{ var(txn.be) -m found }
  http-request set-var(txn.be) var(txn.key),map_beg(${d('prefix.map')}) if !{ var(txn.be) -m found }
  http-request set-var(txn.be) var(txn.path),map_str(${d('exact.map')}) if !{ var(txn.be) -m found }
  http-request set-var(txn.be) var(txn.path),map_beg(${d('prefix.map')}) if !{ var(txn.be) -m found }
  use_backend %[var(txn.be)] if { var(txn.be) -m found }
  default_backend ${model.defaultBackend ?? NOT_FOUND_BACKEND}

backend ${NOT_FOUND_BACKEND}
  http-request return status 404 content-type text/plain string "404 page not found"
`;
  const backendBlock = (b: Backend, withAddresses: boolean) => {
    const s = slots.get(b.name) ?? [];
    return `
backend ${b.name}
  # Service ${b.namespace}/${b.service} port ${b.port}
  balance roundrobin
${s.map((e, i) => (withAddresses ? serverLine(i, e) : `  server s${i + 1}`)).join('\n')}
`;
  };
  const config = head + model.backends.map((b) => backendBlock(b, true)).join('');
  const structure = JSON.stringify({
    head,
    backends: model.backends.map((b) => backendBlock(b, false)),
    files: [...files],
  });
  return { config, files, structure };
}
