// Where the authorizers read the cluster: shared informers over the API
// server's own loopback transport, as upstream's kube-apiserver feeds RBAC
// and the Node authorizer from a privileged loopback client's informers.

import { type InformerFactory, NAMESPACE_INDEX } from '../../client/informer-factory.ts';
import { NodeGraph } from './node.ts';
import type { RBACSource } from './rbac.ts';

/** Roles and bindings, read from the informers' caches. */
export function informerRBACSource(informers: InformerFactory): RBACSource {
  const clusterRoles = informers.informer('clusterRoles');
  const clusterRoleBindings = informers.informer('clusterRoleBindings');
  const roles = informers.informer('roles');
  const roleBindings = informers.informer('roleBindings');
  return {
    clusterRoleBindings: () => clusterRoleBindings.indexer.list(),
    roleBindings: (ns) => roleBindings.indexer.byIndex(NAMESPACE_INDEX, ns),
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
