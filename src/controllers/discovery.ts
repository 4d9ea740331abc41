// API discovery for controllers that work on every resource (the garbage
// collector, the namespace controller), as client-go's discovery client:
// read /api/v1 and /apis/<group>/<version> from the API server itself, so
// kinds added at run time (CustomResourceDefinitions) are found like built-in
// ones. A group version that fails to answer does not hide the others
// (upstream's ErrGroupDiscoveryFailed: partial results plus the failures).

import type { ResourceRef } from '../client/client.ts';
import type { Transport } from '../client/transport.ts';

export interface DiscoveredResource extends ResourceRef {
  kind: string;
  verbs: string[];
  /** Served at the group's preferred version (what ServerPreferredResources returns). */
  preferred: boolean;
}

export interface Discovery {
  resources: DiscoveredResource[];
  /** Group versions that could not be read, with why (NamespaceDeletionDiscoveryFailure's message). */
  failed: Map<string, string>;
}

interface APIResource {
  name: string;
  kind: string;
  namespaced: boolean;
  verbs?: string[];
}

interface APIGroup {
  name: string;
  versions: { groupVersion: string; version: string }[];
  preferredVersion?: { version: string };
}

export async function discover(transport: Transport): Promise<Discovery> {
  const resources: DiscoveredResource[] = [];
  const failed = new Map<string, string>();
  const readGroupVersion = async (group: string, version: string, preferred: boolean) => {
    const path = group ? `/apis/${group}/${version}` : `/api/${version}`;
    try {
      const res = await transport.request({ method: 'GET', path });
      const list = (res.body as { resources?: APIResource[] }).resources ?? [];
      for (const r of list) {
        if (r.name.includes('/')) continue; // a subresource
        resources.push({
          group,
          version,
          plural: r.name,
          namespaced: r.namespaced,
          kind: r.kind,
          verbs: r.verbs ?? [],
          preferred,
        });
      }
    } catch (err) {
      failed.set(group ? `${group}/${version}` : version, String((err as Error).message ?? err));
    }
  };
  const reads: Promise<void>[] = [readGroupVersion('', 'v1', true)];
  try {
    const res = await transport.request({ method: 'GET', path: '/apis' });
    for (const g of (res.body as { groups?: APIGroup[] }).groups ?? []) {
      const preferred = g.preferredVersion?.version ?? g.versions[0]?.version;
      for (const v of g.versions) reads.push(readGroupVersion(g.name, v.version, v.version === preferred));
    }
  } catch (err) {
    failed.set('/apis', String((err as Error).message ?? err));
  }
  await Promise.all(reads);
  return { resources, failed };
}

/** Does the resource support every verb in `verbs` (discovery.SupportsAllVerbs)? */
export const supportsAll = (r: DiscoveredResource, verbs: string[]): boolean =>
  verbs.every((v) => r.verbs.includes(v));

/** apiVersion as objects carry it: `v1`, `apps/v1`. */
export const apiVersionOf = (r: { group: string; version: string }): string =>
  r.group ? `${r.group}/${r.version}` : r.version;

/**
 * Maps an ownerReference's apiVersion and kind to its resource, as upstream's
 * RESTMapper does for the garbage collector (any served version, not only
 * the preferred one).
 */
export function restMapper(resources: DiscoveredResource[]) {
  const byKind = new Map<string, DiscoveredResource>();
  for (const r of resources) byKind.set(`${apiVersionOf(r)}|${r.kind}`, r);
  return (apiVersion: string, kind: string): DiscoveredResource | undefined =>
    byKind.get(`${apiVersion}|${kind}`);
}
