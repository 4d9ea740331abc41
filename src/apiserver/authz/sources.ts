// Where the authorizers read the cluster: shared informers over the API
// server's own loopback transport, as upstream's kube-apiserver feeds RBAC
// and the Node authorizer from a privileged loopback client's informers.

import type { ClusterRoleBinding, RoleBinding } from '../../api/types/rbac-v1.ts';
import { type InformerFactory, NAMESPACE_INDEX } from '../../client/informer-factory.ts';
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
  return {
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
  return graph;
}
