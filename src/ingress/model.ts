// The ingress model: what the proxy must do, computed from the cluster's
// Ingresses, IngressClasses, Services, EndpointSlices and TLS Secrets. Pure
// logic over plain objects (no I/O), so every rule upstream defines is tested
// without a proxy (model.test.ts); haproxy-config.ts renders it.
//
// The rules this follows (https://kubernetes.io/docs/concepts/services-networking/ingress/):
// - an Ingress is ours when spec.ingressClassName names a class whose
//   controller is ours, or, with no class named, when the legacy
//   kubernetes.io/ingress.class annotation names our class; others are ignored;
// - hosts match exactly or as a `*.example.com` wildcard (one DNS label);
// - pathType Exact matches the path exactly; Prefix matches by path
//   elements split by "/" (a trailing slash ignored, /foo matches /foo and
//   /foo/bar but not /foobar); ImplementationSpecific is a plain string
//   prefix here (as ingress-nginx and Traefik without regexes treat it);
// - the longest matching path wins, and at equal length Exact beats Prefix;
// - a request that matches no rule goes to a defaultBackend (the oldest
//   Ingress's that has one), otherwise to the built-in 404 backend.
//
// A bad Ingress (a missing Service or port, a missing TLS Secret, a host and
// path another Ingress already claims) becomes a problem with an Event
// reason and message; the rest of the model is built without that part, so
// one bad Ingress never breaks the others.

import type { Secret, Service } from '../api/types/core-v1.ts';
import type { EndpointSlice } from '../api/types/discovery-v1.ts';
import type { Ingress, IngressBackend, IngressClass } from '../api/types/networking-v1.ts';

/** The controller name of the class Skiff serves (IngressClass spec.controller). */
export const INGRESS_CONTROLLER = 'skiff.io/ingress';
/** The IngressClass the server creates, marked default. */
export const DEFAULT_INGRESS_CLASS = 'skiff';
/** The annotation that marks a default class (upstream's networking.k8s.io/v1 AnnotationIsDefaultIngressClass). */
export const IS_DEFAULT_INGRESS_CLASS = 'ingressclass.kubernetes.io/is-default-class';
/** The class annotation from before spec.ingressClassName (still honoured by every controller). */
export const LEGACY_CLASS_ANNOTATION = 'kubernetes.io/ingress.class';
/** Redirects HTTP to HTTPS for the Ingress's TLS hosts when "true" (as ingress-nginx's ssl-redirect). */
export const SSL_REDIRECT_ANNOTATION = 'ingress.skiff.io/ssl-redirect';

export type PathType = 'Exact' | 'Prefix' | 'ImplementationSpecific';

export interface Route {
  /** '' for a rule without a host (every host), 'a.example.com', or '*.example.com'. */
  host: string;
  /** As written, normalised for Prefix (no trailing slash, '/' kept). */
  path: string;
  pathType: PathType;
  backend: string;
  /** namespace/name of the Ingress that asked for it. */
  ingress: string;
}

export interface Endpoint {
  ip: string;
  port: number;
}

export interface Backend {
  /** A name safe in the proxy's config: <namespace>_<service>_<port>. */
  name: string;
  namespace: string;
  service: string;
  /** The Service port as the Ingress names it (a number or a name). */
  port: string;
  /** Ready endpoints, or the serving terminating ones when none is ready (as kube-proxy). */
  endpoints: Endpoint[];
}

export interface TlsCertificate {
  /** namespace/secretName. */
  secret: string;
  /** The certificate chain then the key, PEM, as HAProxy reads one file. */
  pem: string;
  /** The SNI names it is chosen for (empty: the Ingress's rule hosts). */
  hosts: string[];
}

export interface Problem {
  /** namespace/name of the Ingress. */
  ingress: string;
  reason: string;
  message: string;
}

export interface IngressModel {
  routes: Route[];
  backends: Backend[];
  /** The backend for requests no rule matches, or undefined for the built-in 404. */
  defaultBackend?: string;
  certificates: TlsCertificate[];
  /** Hosts whose plain HTTP requests are redirected to HTTPS. */
  redirectHosts: string[];
  problems: Problem[];
  /** namespace/name of every Ingress served (their status is ours to write). */
  ingresses: string[];
}

export interface ModelInput {
  ingresses: readonly Ingress[];
  classes: readonly IngressClass[];
  services: readonly Service[];
  endpointSlices: readonly EndpointSlice[];
  secrets: readonly Secret[];
  /** Our controller name (default INGRESS_CONTROLLER). */
  controller?: string;
}

const keyOf = (o: { metadata: { namespace?: string; name?: string } }) =>
  `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;

/** Whether an Ingress is this controller's, by its class (the named one, or the legacy annotation). */
export function isOurs(
  ing: Ingress,
  classes: readonly IngressClass[],
  controller = INGRESS_CONTROLLER,
): boolean {
  const ours = new Set(classes.filter((c) => c.spec?.controller === controller).map((c) => c.metadata.name));
  const named = ing.spec?.ingressClassName;
  if (named) return ours.has(named);
  const legacy = ing.metadata.annotations?.[LEGACY_CLASS_ANNOTATION];
  if (legacy) return ours.has(legacy);
  // No class at all: the DefaultIngressClass admission plugin names the
  // default on create, so this is an Ingress made before any default
  // existed. Upstream controllers serve it when their class is the default.
  return classes.some(
    (c) => c.spec?.controller === controller && c.metadata.annotations?.[IS_DEFAULT_INGRESS_CLASS] === 'true',
  );
}

/** Prefix paths are compared element-wise; a trailing slash is not an element. */
export function normalisePrefix(path: string): string {
  const p = path.replace(/\/+$/, '');
  return p === '' ? '/' : p;
}

/**
 * Whether a request path matches an Ingress path, as upstream defines it:
 * the reference the proxy's maps are tested against (model.test.ts runs the
 * Ingress docs' table through both).
 */
export function pathMatches(pathType: PathType, rulePath: string, requestPath: string): boolean {
  if (pathType === 'Exact') return rulePath === requestPath;
  if (pathType === 'ImplementationSpecific') return requestPath.startsWith(rulePath);
  const p = normalisePrefix(rulePath);
  if (p === '/') return requestPath.startsWith('/');
  return requestPath === p || requestPath.startsWith(`${p}/`);
}

/** Whether a request host matches a rule host: '' any, exact, or a one-label wildcard. */
export function hostMatches(ruleHost: string, requestHost: string): boolean {
  if (ruleHost === '') return true;
  if (!ruleHost.startsWith('*.')) return ruleHost === requestHost;
  const dot = requestHost.indexOf('.');
  return dot > 0 && requestHost.slice(dot) === ruleHost.slice(1);
}

/**
 * The route a request takes in the model (the reference for tests): the
 * exact host first, then the wildcard, then host-less rules; within one,
 * the longest path, Exact before Prefix at equal length.
 */
export function routeFor(routes: readonly Route[], host: string, path: string): Route | undefined {
  const dot = host.indexOf('.');
  const wildcard = dot > 0 ? `*${host.slice(dot)}` : undefined;
  for (const h of [host, wildcard, ''])
    if (h !== undefined) {
      let best: Route | undefined;
      for (const r of routes) {
        if (r.host !== h || !pathMatches(r.pathType, r.path, path)) continue;
        if (
          !best ||
          r.path.length > best.path.length ||
          (r.path.length === best.path.length && r.pathType === 'Exact' && best.pathType !== 'Exact')
        )
          best = r;
      }
      if (best) return best;
    }
  return undefined;
}

/** A name HAProxy accepts for a backend (letters, digits, - _ . :). */
export const backendName = (namespace: string, service: string, port: string): string =>
  `${namespace}_${service}_${port}`;

/** Ready endpoints of a Service port, or the serving terminating ones when none is ready. */
export function serviceEndpoints(
  svc: Service,
  servicePort: string,
  slices: readonly EndpointSlice[],
): Endpoint[] | undefined {
  const sp = (svc.spec?.ports ?? []).find((p) =>
    /^\d+$/.test(servicePort) ? p.port === Number(servicePort) : p.name === servicePort,
  );
  if (!sp || (sp.protocol ?? 'TCP') !== 'TCP') return undefined;
  const ready = new Map<string, Endpoint>();
  const terminating = new Map<string, Endpoint>();
  for (const slice of slices) {
    if (slice.addressType !== 'IPv4') continue;
    const port = (slice.ports ?? []).find((p) => (p.name ?? '') === (sp.name ?? ''));
    if (!port?.port) continue;
    for (const e of slice.endpoints ?? []) {
      const c = e.conditions ?? {};
      const isReady = c.ready !== false;
      if (!isReady && !(c.serving && c.terminating)) continue;
      for (const ip of e.addresses ?? [])
        (isReady ? ready : terminating).set(`${ip}:${port.port}`, { ip, port: port.port });
    }
  }
  const chosen = ready.size > 0 ? ready : terminating;
  return [...chosen.values()].sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : a.port - b.port));
}

const created = (o: Ingress) => {
  const t = Date.parse(o.metadata.creationTimestamp ?? '');
  return Number.isNaN(t) ? 0 : t;
};

/** Builds the model. Ingresses are taken oldest first, so the oldest claim to a host and path wins, as upstream controllers do. */
export function buildModel(input: ModelInput): IngressModel {
  const controller = input.controller ?? INGRESS_CONTROLLER;
  const services = new Map(input.services.map((s) => [keyOf(s), s]));
  const slicesByService = new Map<string, EndpointSlice[]>();
  for (const s of input.endpointSlices) {
    const svc = s.metadata.labels?.['kubernetes.io/service-name'];
    if (!svc) continue;
    const k = `${s.metadata.namespace ?? ''}/${svc}`;
    const list = slicesByService.get(k) ?? [];
    list.push(s);
    slicesByService.set(k, list);
  }
  const secrets = new Map(input.secrets.map((s) => [keyOf(s), s]));
  const model: IngressModel = {
    routes: [],
    backends: [],
    certificates: [],
    redirectHosts: [],
    problems: [],
    ingresses: [],
  };
  const backends = new Map<string, Backend>();
  const claimed = new Map<string, string>();
  const redirect = new Set<string>();

  const ours = input.ingresses
    .filter((i) => isOurs(i, input.classes, controller))
    .sort((a, b) => created(a) - created(b) || (keyOf(a) < keyOf(b) ? -1 : 1));

  for (const ing of ours) {
    const ns = ing.metadata.namespace ?? 'default';
    const ingKey = keyOf(ing);
    model.ingresses.push(ingKey);
    const problem = (reason: string, message: string) =>
      model.problems.push({ ingress: ingKey, reason, message });
    const backendFor = (b: IngressBackend | undefined): string | undefined => {
      const svcName = b?.service?.name;
      const port = b?.service?.port;
      if (!svcName || !port) {
        if (b?.resource)
          problem('UnsupportedBackend', `resource backends (${b.resource.kind}) are not supported`);
        return undefined;
      }
      const portRef = port.name ? port.name : String(port.number ?? '');
      const name = backendName(ns, svcName, portRef);
      if (backends.has(name)) return name;
      const svc = services.get(`${ns}/${svcName}`);
      if (!svc) {
        problem('ServiceNotFound', `service "${ns}/${svcName}" not found`);
        return undefined;
      }
      const endpoints = serviceEndpoints(svc, portRef, slicesByService.get(`${ns}/${svcName}`) ?? []);
      if (!endpoints) {
        problem('ServicePortNotFound', `service "${ns}/${svcName}" has no TCP port ${portRef}`);
        return undefined;
      }
      backends.set(name, { name, namespace: ns, service: svcName, port: portRef, endpoints });
      return name;
    };

    const spec = ing.spec ?? {};
    if (spec.defaultBackend) {
      const b = backendFor(spec.defaultBackend);
      if (b && model.defaultBackend === undefined) model.defaultBackend = b;
      else if (b)
        problem(
          'DuplicateDefaultBackend',
          'another Ingress already sets the default backend; this one is ignored',
        );
    }
    const ruleHosts = new Set<string>();
    for (const rule of spec.rules ?? []) {
      const host = (rule.host ?? '').toLowerCase();
      ruleHosts.add(host);
      for (const p of rule.http?.paths ?? []) {
        const pathType = (p.pathType ?? 'ImplementationSpecific') as PathType;
        const raw = p.path || '/';
        const path = pathType === 'Prefix' ? normalisePrefix(raw) : raw;
        const claim = `${host} ${pathType === 'Exact' ? 'Exact' : 'Prefix'} ${path}`;
        const holder = claimed.get(claim);
        if (holder !== undefined) {
          problem(
            'DuplicatePath',
            `host "${host || '*'}" path "${path}" is already served by Ingress ${holder}; this path is ignored`,
          );
          continue;
        }
        const backend = backendFor(p.backend);
        if (!backend) continue;
        claimed.set(claim, ingKey);
        model.routes.push({ host, path, pathType, backend, ingress: ingKey });
      }
    }
    const wantsRedirect = ing.metadata.annotations?.[SSL_REDIRECT_ANNOTATION] === 'true';
    for (const tls of spec.tls ?? []) {
      const hosts = (tls.hosts ?? []).map((h) => h.toLowerCase());
      if (wantsRedirect) for (const h of hosts.length ? hosts : [...ruleHosts]) if (h) redirect.add(h);
      if (!tls.secretName) continue; // upstream: the default certificate serves these hosts
      const secretKey = `${ns}/${tls.secretName}`;
      const secret = secrets.get(secretKey);
      const data = secret?.data ?? {};
      const crt = data['tls.crt'] ? Buffer.from(data['tls.crt'], 'base64').toString('utf8') : '';
      const key = data['tls.key'] ? Buffer.from(data['tls.key'], 'base64').toString('utf8') : '';
      if (!secret) {
        problem(
          'SecretNotFound',
          `TLS secret "${secretKey}" not found; its hosts get the default certificate`,
        );
        continue;
      }
      if (!crt.includes('BEGIN CERTIFICATE') || !key.includes('PRIVATE KEY')) {
        problem('InvalidSecret', `TLS secret "${secretKey}" has no PEM tls.crt and tls.key`);
        continue;
      }
      model.certificates.push({
        secret: secretKey,
        pem: `${crt.trim()}\n${key.trim()}\n`,
        hosts: hosts.length ? hosts : [...ruleHosts].filter(Boolean),
      });
    }
  }
  model.backends = [...backends.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  model.redirectHosts = [...redirect].sort();
  return model;
}
