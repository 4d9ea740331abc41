// Every kind the cluster serves, from the API's discovery documents (/api,
// /apis and each group version), so the dashboard lists CRDs without code.

import { request } from './api.ts';

export interface ResourceType {
  group: string;
  version: string;
  /** The plural, as in URLs: pods, deployments. */
  resource: string;
  kind: string;
  namespaced: boolean;
  verbs: string[];
  shortNames: string[];
  /** Subresources the API lists for it: status, scale, log, exec... */
  subresources: string[];
}

interface APIResource {
  name: string;
  kind: string;
  namespaced: boolean;
  verbs: string[];
  shortNames?: string[];
}

/** The group/version prefix of a resource's URLs. */
export const groupVersionPath = (group: string, version: string) =>
  group === '' ? `/api/${version}` : `/apis/${group}/${version}`;

/** The URL of a collection (namespace undefined for all namespaces) or, with a name, of one object. */
export function resourcePath(t: ResourceType, namespace?: string, name?: string): string {
  const ns = t.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const one = name ? `/${encodeURIComponent(name)}` : '';
  return `${groupVersionPath(t.group, t.version)}${ns}/${t.resource}${one}`;
}

export const apiVersionOf = (t: ResourceType) => (t.group ? `${t.group}/${t.version}` : t.version);

/** Reads discovery: the preferred version of every group, with its listable resources. */
export async function discover(): Promise<ResourceType[]> {
  const core = await request<{ versions: string[] }>('/api');
  const groups = await request<{ groups: { name: string; preferredVersion: { version: string } }[] }>(
    '/apis',
  );
  const versions = [
    { group: '', version: core.versions[0] ?? 'v1' },
    ...groups.groups.map((g) => ({ group: g.name, version: g.preferredVersion.version })),
  ];
  const lists = await Promise.all(
    versions.map(async ({ group, version }) => {
      try {
        const list = await request<{ resources: APIResource[] }>(groupVersionPath(group, version));
        return typesOf(group, version, list.resources);
      } catch {
        return []; // a group version that does not answer is left out, as kubectl warns and goes on
      }
    }),
  );
  return lists.flat().sort((a, b) => a.kind.localeCompare(b.kind));
}

export function typesOf(group: string, version: string, resources: APIResource[]): ResourceType[] {
  const subresources = new Map<string, string[]>();
  for (const r of resources) {
    const [main, sub] = r.name.split('/');
    if (sub) subresources.set(main!, [...(subresources.get(main!) ?? []), sub]);
  }
  return resources
    .filter((r) => !r.name.includes('/') && r.verbs.includes('list'))
    .map((r) => ({
      group,
      version,
      resource: r.name,
      kind: r.kind,
      namespaced: r.namespaced,
      verbs: r.verbs,
      shortNames: r.shortNames ?? [],
      subresources: subresources.get(r.name) ?? [],
    }));
}

/** The type of apiVersion + kind (a manifest's), or undefined when the cluster does not serve it. */
export function typeForKind(
  types: ResourceType[],
  apiVersion: string,
  kind: string,
): ResourceType | undefined {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  return (
    types.find((t) => t.group === group && t.kind === kind && t.version === version) ??
    types.find((t) => t.group === group && t.kind === kind)
  );
}

export function typeFor(types: ResourceType[], group: string, resource: string): ResourceType | undefined {
  return types.find((t) => t.group === group && t.resource === resource);
}
