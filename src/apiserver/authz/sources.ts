// Where the authorizers read the cluster: shared informers over the API
// server's own loopback transport, as upstream's kube-apiserver feeds RBAC
// and the Node authorizer from a privileged loopback client's informers.

import type { KubeObject } from '../../api/meta.ts';
import type { PersistentVolume, PersistentVolumeClaim, Pod } from '../../api/types/core-v1.ts';
import type { ClusterRoleBinding, RoleBinding } from '../../api/types/rbac-v1.ts';
import { type InformerFactory, NAMESPACE_INDEX } from '../../client/informer-factory.ts';
import type { ApiServer } from '../apiserver.ts';
import type { CacheEvent } from '../watch-cache.ts';
import { NodeGraph } from './node.ts';
import { bindingSubjectKeys, type RBACSource, userSubjectKeys } from './rbac.ts';

const SUBJECT_INDEX = 'rbac-subject';

/** Roles and bindings, read from the informers' caches. */
export function informerRBACSource(informers: InformerFactory): RBACSource {
  const clusterRoles = informers.informer('clusterRoles');
  const clusterRoleBindings = informers.informer('clusterRoleBindings');
  const roles = informers.informer('roles');
  const roleBindings = informers.informer('roleBindings');
  // By subject, so a request looks only at the bindings that may name its user.
  clusterRoleBindings.indexer.addIndexer(SUBJECT_INDEX, (b) =>
    bindingSubjectKeys((b as ClusterRoleBinding).subjects, ''),
  );
  roleBindings.indexer.addIndexer(SUBJECT_INDEX, (b) =>
    bindingSubjectKeys((b as RoleBinding).subjects, b.metadata.namespace ?? '').map(
      (k) => `${b.metadata.namespace}|${k}`,
    ),
  );
  const unique = <T extends { metadata: { name?: string } }>(lists: T[][]): T[] => {
    if (lists.length === 1) return lists[0]!;
    const seen = new Set<T>();
    for (const l of lists) for (const b of l) seen.add(b);
    return [...seen];
  };
  // Any change to a role or binding makes every resolved rule list stale.
  let generation = 0;
  const bump = { add: () => generation++, update: () => generation++, delete: () => generation++ };
  for (const i of [clusterRoles, clusterRoleBindings, roles, roleBindings]) i.on(bump);
  return {
    generation: () => generation,
    clusterRoleBindings: () => clusterRoleBindings.indexer.list(),
    roleBindings: (ns) => roleBindings.indexer.byIndex(NAMESPACE_INDEX, ns),
    clusterRoleBindingsFor: (user) =>
      unique(userSubjectKeys(user).map((k) => clusterRoleBindings.indexer.byIndex(SUBJECT_INDEX, k))),
    roleBindingsFor: (ns, user) =>
      unique(userSubjectKeys(user).map((k) => roleBindings.indexer.byIndex(SUBJECT_INDEX, `${ns}|${k}`))),
    clusterRole: (name) => clusterRoles.indexer.get(name),
    role: (ns, name) => roles.indexer.get(`${ns}/${name}`),
  };
}

/** A NodeGraph kept current from the pod and claim informers. */
export function informerNodeGraph(informers: InformerFactory): NodeGraph {
  const graph = new NodeGraph();
  informers.informer('pods').on({
    add: (p) => graph.setPod(p),
    update: (_old, p) => graph.setPod(p),
    delete: (p) => graph.deletePod(p),
  });
  informers.informer('persistentVolumeClaims').on({
    add: (c) => graph.setPVC(c),
    update: (_old, c) => graph.setPVC(c),
    delete: (c) => graph.deletePVC(c),
  });
  informers.informer('persistentVolumes').on({
    add: (v) => graph.setPV(v),
    update: (_old, v) => graph.setPV(v),
    delete: (v) => graph.deletePV(v),
  });
  return graph;
}

/**
 * A NodeGraph fed straight from the API server's watch caches of pods and
 * claims: the same events an informer would get, without encoding every pod
 * to JSON and parsing it back (the graph only reads them). Returns the graph
 * once it holds every object, and a function that stops the feed.
 */
export async function watchCacheNodeGraph(api: ApiServer): Promise<{ graph: NodeGraph; stop: () => void }> {
  const graph = new NodeGraph();
  const feed = async (plural: string, set: (o: KubeObject) => void, remove: (o: KubeObject) => void) => {
    const storage = api.storage('', 'v1', plural)!;
    await storage.cache.start();
    // One tick: the revision and the list are of the same moment.
    const revision = storage.cache.revision;
    for (const o of storage.cache.list(storage.scopePrefix(undefined))) set(o);
    const apply = (events: CacheEvent[]) => {
      for (const e of events) (e.type === 'DELETED' ? remove : set)(e.object);
    };
    const w = storage.cache.watch(revision, { send: apply, close: () => {} });
    apply(w.backlog);
    return w.stop;
  };
  const stops = [
    await feed(
      'pods',
      (p) => graph.setPod(p as Pod),
      (p) => graph.deletePod(p as Pod),
    ),
    await feed(
      'persistentvolumeclaims',
      (c) => graph.setPVC(c as PersistentVolumeClaim),
      (c) => graph.deletePVC(c as PersistentVolumeClaim),
    ),
    await feed(
      'persistentvolumes',
      (v) => graph.setPV(v as PersistentVolume),
      (v) => graph.deletePV(v as PersistentVolume),
    ),
  ];
  return {
    graph,
    stop: () => {
      for (const s of stops) s();
    },
  };
}
