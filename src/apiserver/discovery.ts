// API discovery, derived from the registry: the legacy documents (/api,
// /apis, /api/v1, /apis/<group>/<version>) and aggregated discovery
// (apidiscovery.k8s.io v2 and v2beta1), which kubectl 1.30+ asks for first.

import { ALL_VERBS, groupVersion, type Registry, type ResourceType } from '../api/registry.ts';
import { parseAccept } from './tables.ts';

const subresourceVerbs: Record<string, string[]> = {
  status: ['get', 'patch', 'update'],
  scale: ['get', 'patch', 'update'],
  binding: ['create'],
  eviction: ['create'],
  log: ['get'],
  exec: ['create', 'get'],
  attach: ['create', 'get'],
  portforward: ['create', 'get'],
  proxy: ['create', 'delete', 'get', 'patch', 'update'],
  ephemeralcontainers: ['get', 'patch', 'update'],
  finalize: ['update'],
  token: ['create'],
  approval: ['get', 'patch', 'update'],
};

function subresourcesOf(rt: ResourceType): string[] {
  return [...(rt.status ? ['status'] : []), ...(rt.scale ? ['scale'] : []), ...(rt.subresources ?? [])];
}

function subresourceKind(rt: ResourceType, sub: string): { group: string; version: string; kind: string } {
  if (sub === 'scale') return { group: 'autoscaling', version: 'v1', kind: 'Scale' };
  if (sub === 'binding') return { group: '', version: 'v1', kind: 'Binding' };
  if (sub === 'eviction') return { group: 'policy', version: 'v1', kind: 'Eviction' };
  if (sub === 'token') return { group: 'authentication.k8s.io', version: 'v1', kind: 'TokenRequest' };
  if (['log', 'exec', 'attach', 'portforward', 'proxy'].includes(sub))
    return {
      group: '',
      version: 'v1',
      kind:
        sub === 'log'
          ? 'Pod'
          : `${rt.kind}${sub === 'exec' ? 'ExecOptions' : sub === 'attach' ? 'AttachOptions' : sub === 'portforward' ? 'PortForwardOptions' : 'ProxyOptions'}`,
    };
  return { group: rt.group, version: rt.version, kind: rt.kind };
}

export function apiVersions(serverAddress: string) {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

export function apiGroupList(registry: Registry) {
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: registry
      .groups()
      .filter((g) => g.group !== '')
      .map(apiGroup),
  };
}

export function apiGroup(g: { group: string; versions: string[]; preferredVersion: string }) {
  const gv = (v: string) => ({ groupVersion: `${g.group}/${v}`, version: v });
  return {
    kind: 'APIGroup',
    apiVersion: 'v1',
    name: g.group,
    versions: g.versions.map(gv),
    preferredVersion: gv(g.preferredVersion),
  };
}

export function apiResourceList(registry: Registry, group: string, version: string) {
  const resources: unknown[] = [];
  for (const rt of registry.inGroupVersion(group, version)) {
    resources.push({
      name: rt.plural,
      singularName: rt.singular,
      namespaced: rt.namespaced,
      kind: rt.kind,
      verbs: rt.verbs ?? ALL_VERBS,
      ...(rt.shortNames ? { shortNames: rt.shortNames } : {}),
      ...(rt.categories ? { categories: rt.categories } : {}),
    });
    for (const sub of subresourcesOf(rt)) {
      const k = subresourceKind(rt, sub);
      resources.push({
        name: `${rt.plural}/${sub}`,
        singularName: '',
        namespaced: rt.namespaced,
        ...(k.group !== rt.group || k.version !== rt.version ? { group: k.group, version: k.version } : {}),
        kind: k.kind,
        verbs: subresourceVerbs[sub] ?? ['get'],
      });
    }
  }
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: groupVersion({ group, version }),
    resources,
  };
}

/** The aggregated-discovery version the client asked for, if any. */
export function aggregatedVersion(accept: string | undefined): 'v2' | 'v2beta1' | undefined {
  for (const m of parseAccept(accept)) {
    if (m.params.as === 'APIGroupDiscoveryList' && m.params.g === 'apidiscovery.k8s.io') {
      if (m.params.v === 'v2' || m.params.v === 'v2beta1') return m.params.v;
    }
    if (m.type === 'application/json' && !m.params.as) return undefined;
  }
  return undefined;
}

/** APIGroupDiscoveryList for /api (legacy: true) or /apis. */
export function aggregatedDiscovery(registry: Registry, legacy: boolean, version: 'v2' | 'v2beta1') {
  const items = registry
    .groups()
    .filter((g) => (legacy ? g.group === '' : g.group !== ''))
    .map((g) => ({
      metadata: { name: g.group, creationTimestamp: null },
      versions: g.versions.map((v) => ({
        version: v,
        resources: registry.inGroupVersion(g.group, v).map((rt) => ({
          resource: rt.plural,
          responseKind: { group: rt.group, version: rt.version, kind: rt.kind },
          scope: rt.namespaced ? 'Namespaced' : 'Cluster',
          singularResource: rt.singular,
          verbs: rt.verbs ?? ALL_VERBS,
          ...(rt.shortNames ? { shortNames: rt.shortNames } : {}),
          ...(rt.categories ? { categories: rt.categories } : {}),
          ...(subresourcesOf(rt).length
            ? {
                subresources: subresourcesOf(rt).map((sub) => ({
                  subresource: sub,
                  responseKind: subresourceKind(rt, sub),
                  verbs: subresourceVerbs[sub] ?? ['get'],
                })),
              }
            : {}),
        })),
        freshness: 'Current',
      })),
    }));
  return { kind: 'APIGroupDiscoveryList', apiVersion: `apidiscovery.k8s.io/${version}`, metadata: {}, items };
}

export const aggregatedContentType = (version: string) =>
  `application/json;g=apidiscovery.k8s.io;v=${version};as=APIGroupDiscoveryList`;
