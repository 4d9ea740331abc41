// The roles and bindings every cluster starts with: upstream's bootstrap
// policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy, whose testdata
// lists what `kubectl get clusterroles` shows on a new cluster). The API
// server creates them at start and reconciles them (reconcile.ts): a role
// annotated rbac.authorization.kubernetes.io/autoupdate=false is left alone.
//
// The per-controller roles (system:controller:*) are in controller-roles.ts.

import type { ObjectMeta } from '../../api/meta.ts';
import type { ClusterRole, ClusterRoleBinding, PolicyRule, Subject } from '../../api/types/rbac-v1.ts';

export const AUTOUPDATE_ANNOTATION = 'rbac.authorization.kubernetes.io/autoupdate';
const BOOTSTRAPPING_LABEL = 'kubernetes.io/bootstrapping';
const RBAC_GROUP = 'rbac.authorization.k8s.io';

const words = (s: string) => s.split(/\s+/).filter((w) => w !== '');

/**
 * A resource rule, written compactly: space-separated verbs, API groups
 * ('' is the core group, written as "core" here) and resources.
 */
export function rule(verbs: string, groups: string, resources: string, names?: string): PolicyRule {
  return {
    verbs: words(verbs),
    apiGroups: words(groups).map((g) => (g === 'core' ? '' : g)),
    resources: words(resources),
    ...(names ? { resourceNames: words(names) } : {}),
  };
}

/** A non-resource rule: verbs and paths. */
export const pathRule = (verbs: string, paths: string): PolicyRule => ({
  verbs: words(verbs),
  nonResourceURLs: words(paths),
});

const READ = 'get list watch';
const WRITE = 'create delete deletecollection patch update';
const EVENTS = rule('create patch update', 'core events.k8s.io', 'events');

export function bootstrapMeta(
  name: string,
  labels: Record<string, string> = {},
  namespace?: string,
): ObjectMeta {
  return {
    name,
    ...(namespace ? { namespace } : {}),
    labels: { [BOOTSTRAPPING_LABEL]: 'rbac-defaults', ...labels },
    annotations: { [AUTOUPDATE_ANNOTATION]: 'true' },
  };
}

const role = (name: string, rules: PolicyRule[], labels: Record<string, string> = {}): ClusterRole => ({
  apiVersion: `${RBAC_GROUP}/v1`,
  kind: 'ClusterRole',
  metadata: bootstrapMeta(name, labels),
  rules,
});

/** A role whose rules are those of the roles carrying `aggregate-to-<into>`, filled in by the aggregation controller. */
const aggregated = (name: string, labels: Record<string, string> = {}): ClusterRole => ({
  ...role(name, [], labels),
  aggregationRule: {
    clusterRoleSelectors: [{ matchLabels: { [`rbac.authorization.k8s.io/aggregate-to-${name}`]: 'true' } }],
  },
});

const aggregateTo = (into: string) => ({ [`rbac.authorization.k8s.io/aggregate-to-${into}`]: 'true' });

export function bootstrapClusterRoles(): ClusterRole[] {
  return [
    role('cluster-admin', [rule('*', '*', '*'), pathRule('*', '*')]),
    aggregated('admin'),
    aggregated('edit', aggregateTo('admin')),
    aggregated('view', aggregateTo('edit')),
    role(
      'system:aggregate-to-admin',
      [
        rule('create', 'authorization.k8s.io', 'localsubjectaccessreviews'),
        rule(`${WRITE} get list watch`, RBAC_GROUP, 'rolebindings roles'),
      ],
      aggregateTo('admin'),
    ),
    role(
      'system:aggregate-to-edit',
      [
        rule(READ, 'core', 'pods/attach pods/exec pods/portforward pods/proxy secrets services/proxy'),
        rule('impersonate', 'core', 'serviceaccounts'),
        rule(WRITE, 'core', 'pods pods/attach pods/exec pods/portforward pods/proxy'),
        rule('create', 'core', 'pods/eviction'),
        rule(
          WRITE,
          'core',
          'configmaps events persistentvolumeclaims replicationcontrollers replicationcontrollers/scale secrets serviceaccounts services services/proxy',
        ),
        rule('create', 'core', 'serviceaccounts/token'),
        rule(
          WRITE,
          'apps',
          'daemonsets deployments deployments/rollback deployments/scale replicasets replicasets/scale statefulsets statefulsets/scale',
        ),
        rule(WRITE, 'autoscaling', 'horizontalpodautoscalers'),
        rule(WRITE, 'batch', 'cronjobs jobs'),
        rule(
          WRITE,
          'extensions',
          'daemonsets deployments deployments/rollback deployments/scale ingresses networkpolicies replicasets replicasets/scale replicationcontrollers/scale',
        ),
        rule(WRITE, 'policy', 'poddisruptionbudgets'),
        rule(WRITE, 'networking.k8s.io', 'ingresses networkpolicies'),
        rule(`${WRITE} get list watch`, 'coordination.k8s.io', 'leases'),
      ],
      aggregateTo('edit'),
    ),
    role(
      'system:aggregate-to-view',
      [
        rule(
          READ,
          'core',
          'configmaps endpoints persistentvolumeclaims persistentvolumeclaims/status pods replicationcontrollers replicationcontrollers/scale serviceaccounts services services/status',
        ),
        rule(
          READ,
          'core',
          'bindings events limitranges namespaces/status pods/log pods/status replicationcontrollers/status resourcequotas resourcequotas/status',
        ),
        rule(READ, 'core', 'namespaces'),
        rule(READ, 'discovery.k8s.io', 'endpointslices'),
        rule(
          READ,
          'apps',
          'controllerrevisions daemonsets daemonsets/status deployments deployments/scale deployments/status replicasets replicasets/scale replicasets/status statefulsets statefulsets/scale statefulsets/status',
        ),
        rule(READ, 'autoscaling', 'horizontalpodautoscalers horizontalpodautoscalers/status'),
        rule(READ, 'batch', 'cronjobs cronjobs/status jobs jobs/status'),
        rule(
          READ,
          'extensions',
          'daemonsets daemonsets/status deployments deployments/scale deployments/status ingresses ingresses/status networkpolicies replicasets replicasets/scale replicasets/status replicationcontrollers/scale',
        ),
        rule(READ, 'policy', 'poddisruptionbudgets poddisruptionbudgets/status'),
        rule(READ, 'networking.k8s.io', 'ingresses ingresses/status networkpolicies'),
      ],
      aggregateTo('view'),
    ),
    role('system:auth-delegator', [
      rule('create', 'authentication.k8s.io', 'tokenreviews'),
      rule('create', 'authorization.k8s.io', 'subjectaccessreviews'),
    ]),
    role('system:basic-user', [
      rule('create', 'authorization.k8s.io', 'selfsubjectaccessreviews selfsubjectrulesreviews'),
      rule('create', 'authentication.k8s.io', 'selfsubjectreviews'),
    ]),
    role('system:certificates.k8s.io:certificatesigningrequests:nodeclient', [
      rule('create', 'certificates.k8s.io', 'certificatesigningrequests/nodeclient'),
    ]),
    role('system:certificates.k8s.io:certificatesigningrequests:selfnodeclient', [
      rule('create', 'certificates.k8s.io', 'certificatesigningrequests/selfnodeclient'),
    ]),
    ...['kube-apiserver-client', 'kube-apiserver-client-kubelet', 'kubelet-serving', 'legacy-unknown'].map(
      (signer) =>
        role(`system:certificates.k8s.io:${signer}-approver`, [
          rule('approve', 'certificates.k8s.io', 'signers', `kubernetes.io/${signer}`),
        ]),
    ),
    role('system:discovery', [
      pathRule(
        'get',
        '/api /api/* /apis /apis/* /healthz /livez /openapi /openapi/* /readyz /version /version/',
      ),
    ]),
    role('system:heapster', [
      rule(READ, 'core', 'events namespaces nodes pods'),
      rule(READ, 'extensions', 'deployments'),
    ]),
    role('system:kube-aggregator', [rule(READ, 'core', 'endpoints services')]),
    role('system:kube-controller-manager', [
      EVENTS,
      rule('create', 'coordination.k8s.io', 'leases'),
      rule('get update', 'coordination.k8s.io', 'leases', 'kube-controller-manager'),
      rule('create', 'core', 'secrets serviceaccounts'),
      rule('delete', 'core', 'secrets'),
      rule('get', 'core', 'configmaps namespaces secrets serviceaccounts'),
      rule('update', 'core', 'secrets serviceaccounts'),
      rule('create', 'authentication.k8s.io', 'tokenreviews'),
      rule('create', 'authorization.k8s.io', 'subjectaccessreviews'),
      rule('list watch', '*', '*'),
      rule('create', 'core', 'serviceaccounts/token'),
    ]),
    role('system:kube-dns', [rule('list watch', 'core', 'endpoints services')]),
    // k3s's role for its CoreDNS (not upstream's bootstrap): Skiff's cluster DNS reads EndpointSlices.
    role('system:coredns', [
      rule('list watch', 'core', 'endpoints services pods namespaces'),
      rule('list watch', 'discovery.k8s.io', 'endpointslices'),
    ]),
    role('system:kube-scheduler', [
      EVENTS,
      rule('create', 'coordination.k8s.io', 'leases'),
      rule('get update', 'coordination.k8s.io', 'leases', 'kube-scheduler'),
      rule(READ, 'core', 'nodes'),
      rule(`delete ${READ}`, 'core', 'pods'),
      rule('create', 'core', 'bindings pods/binding'),
      rule('patch update', 'core', 'pods/status'),
      rule(READ, 'core', 'replicationcontrollers services'),
      rule(READ, 'apps extensions', 'replicasets'),
      rule(READ, 'apps', 'statefulsets'),
      rule(READ, 'policy', 'poddisruptionbudgets'),
      rule(READ, 'core', 'persistentvolumeclaims persistentvolumes'),
      // Upstream grants these through system:volume-scheduler, bound to the scheduler too.
      rule('patch update', 'core', 'persistentvolumeclaims persistentvolumes'),
      rule(READ, 'storage.k8s.io', 'storageclasses'),
      rule('create', 'authentication.k8s.io', 'tokenreviews'),
      rule('create', 'authorization.k8s.io', 'subjectaccessreviews'),
      rule(READ, 'storage.k8s.io', 'csinodes'),
      rule(READ, 'core', 'namespaces'),
      rule(READ, 'storage.k8s.io', 'csidrivers'),
      rule(READ, 'storage.k8s.io', 'csistoragecapacities'),
    ]),
    role('system:kubelet-api-admin', [
      rule(READ, 'core', 'nodes'),
      rule('proxy', 'core', 'nodes'),
      rule('*', 'core', 'nodes/log nodes/metrics nodes/proxy nodes/stats'),
    ]),
    // metrics-server's own (its upstream manifest's, as k3s ships it): read
    // nodes and pods, and get the kubelets' nodes/metrics (its scrapes of
    // /metrics/resource, authorized by the kubelet's SubjectAccessReview).
    // Skiff's reads only nodes: the API server supplies the pods' labels.
    role('system:metrics-server', [
      rule('get', 'core', 'nodes/metrics nodes/stats'),
      rule(READ, 'core', 'nodes pods'),
    ]),
    // Who may read metrics.k8s.io: whoever holds view, edit or admin (metrics-server's manifest).
    role('system:aggregated-metrics-reader', [rule(READ, 'metrics.k8s.io', 'pods nodes')], {
      ...aggregateTo('view'),
      ...aggregateTo('edit'),
      ...aggregateTo('admin'),
    }),
    role('system:monitoring', [
      pathRule('get', '/healthz /healthz/* /livez /livez/* /metrics /metrics/slis /readyz /readyz/*'),
    ]),
    // What a kubelet may do at most; the Node authorizer narrows it to its own node's objects.
    role('system:node', [
      rule('create', 'authentication.k8s.io', 'tokenreviews'),
      rule('create', 'authorization.k8s.io', 'localsubjectaccessreviews subjectaccessreviews'),
      rule(READ, 'core', 'services'),
      rule(`create ${READ}`, 'core', 'nodes'),
      rule('patch update', 'core', 'nodes/status'),
      rule('patch update', 'core', 'nodes'),
      rule('create patch update', 'core', 'events'),
      rule(READ, 'core', 'pods'),
      rule('create delete', 'core', 'pods'),
      rule('patch update', 'core', 'pods/status'),
      rule('create', 'core', 'pods/eviction'),
      rule(READ, 'core', 'configmaps secrets'),
      rule('get', 'core', 'persistentvolumeclaims persistentvolumes'),
      rule('get', 'core', 'endpoints'),
      rule(`create ${READ}`, 'certificates.k8s.io', 'certificatesigningrequests'),
      rule('create delete get patch update', 'coordination.k8s.io', 'leases'),
      rule('get', 'storage.k8s.io', 'volumeattachments'),
      rule('create', 'core', 'serviceaccounts/token'),
      rule('get patch update', 'core', 'persistentvolumeclaims/status'),
      rule(READ, 'storage.k8s.io', 'csidrivers'),
      rule('create delete get patch update', 'storage.k8s.io', 'csinodes'),
      rule(READ, 'node.k8s.io', 'runtimeclasses'),
    ]),
    role('system:node-bootstrapper', [
      rule(`create ${READ}`, 'certificates.k8s.io', 'certificatesigningrequests'),
    ]),
    role('system:node-problem-detector', [
      rule('get', 'core', 'nodes'),
      rule('patch', 'core', 'nodes/status'),
      EVENTS,
    ]),
    role('system:node-proxier', [
      rule('list watch', 'core', 'endpoints services'),
      rule(READ, 'core', 'nodes'),
      EVENTS,
      rule('list watch', 'discovery.k8s.io', 'endpointslices'),
    ]),
    role('system:persistent-volume-provisioner', [
      rule(`create delete ${READ}`, 'core', 'persistentvolumes'),
      rule(`update ${READ}`, 'core', 'persistentvolumeclaims'),
      rule(READ, 'storage.k8s.io', 'storageclasses'),
      rule('watch', 'core', 'events'),
      EVENTS,
    ]),
    role('system:public-info-viewer', [pathRule('get', '/healthz /livez /readyz /version /version/')]),
    role('system:service-account-issuer-discovery', [
      pathRule('get', '/.well-known/openid-configuration /openid/v1/jwks'),
    ]),
    role('system:volume-scheduler', [
      rule(`patch update ${READ}`, 'core', 'persistentvolumes'),
      rule(READ, 'storage.k8s.io', 'storageclasses'),
      rule(`patch update ${READ}`, 'core', 'persistentvolumeclaims'),
    ]),
    // Skiff's own: the nodes' NetworkPolicy controller (src/network/policy-controller.ts)
    // reads every pod (peers may be on any node), namespace and policy, and
    // writes nothing; as upstream's kube-network-policies and k3s's
    // system:k3s-controller (which adds what its other controllers need).
    role('system:skiff-network-policy', [
      rule('list watch', 'core', 'pods namespaces'),
      rule('list watch', 'networking.k8s.io', 'networkpolicies'),
    ]),
    // Skiff's own: the nodes' ingress controller (src/ingress/controller.ts)
    // reads what routing needs (Ingresses and classes, Services, their
    // EndpointSlices, Nodes for the status addresses, Secrets for TLS: it
    // lists them by type kubernetes.io/tls, which RBAC cannot narrow, as
    // ingress-nginx's role), writes only Ingress status and Events.
    role('system:skiff-ingress', [
      rule('list watch', 'networking.k8s.io', 'ingresses ingressclasses'),
      rule('update', 'networking.k8s.io', 'ingresses/status'),
      rule('list watch', 'core', 'services secrets nodes'),
      rule('list watch', 'discovery.k8s.io', 'endpointslices'),
      EVENTS,
    ]),
    // Skiff's own: what a hollow fleet's kubelets do (`skiff agent --hollow-nodes`),
    // for any of its nodes. They run no containers, so no Secret, ConfigMap,
    // volume or token is read.
    role('system:skiff-hollow-node', [
      rule(`create ${READ} patch update`, 'core', 'nodes'),
      rule('patch update', 'core', 'nodes/status'),
      rule(`create delete ${READ}`, 'core', 'pods'),
      rule('patch update', 'core', 'pods/status'),
      rule(READ, 'core', 'services'),
      // The agent's load balancer learns the servers from the kubernetes Endpoints, as a kubelet may.
      rule('get', 'core', 'endpoints'),
      EVENTS,
      rule('create delete get patch update', 'coordination.k8s.io', 'leases'),
      rule(READ, 'node.k8s.io', 'runtimeclasses'),
    ]),
  ];
}

const user = (name: string): Subject => ({ apiGroup: RBAC_GROUP, kind: 'User', name });
const group = (name: string): Subject => ({ apiGroup: RBAC_GROUP, kind: 'Group', name });

const binding = (name: string, roleName: string, subjects: Subject[]): ClusterRoleBinding => ({
  apiVersion: `${RBAC_GROUP}/v1`,
  kind: 'ClusterRoleBinding',
  metadata: bootstrapMeta(name),
  roleRef: { apiGroup: RBAC_GROUP, kind: 'ClusterRole', name: roleName },
  subjects,
});

export function bootstrapClusterRoleBindings(): ClusterRoleBinding[] {
  const same = (name: string, subjects: Subject[]) => binding(name, name, subjects);
  return [
    binding('cluster-admin', 'cluster-admin', [group('system:masters')]),
    same('system:basic-user', [group('system:authenticated')]),
    same('system:discovery', [group('system:authenticated')]),
    same('system:kube-controller-manager', [user('system:kube-controller-manager')]),
    same('system:kube-dns', [{ kind: 'ServiceAccount', name: 'kube-dns', namespace: 'kube-system' }]),
    same('system:coredns', [{ kind: 'ServiceAccount', name: 'coredns', namespace: 'kube-system' }]),
    // The cluster DNS inside each joined agent (node-token.ts's client-dns.crt).
    binding('system:skiff-dns', 'system:coredns', [user('system:skiff-dns')]),
    same('system:skiff-hollow-node', [user('system:skiff-hollow-fleet')]),
    same('system:skiff-network-policy', [user('system:skiff-network-policy')]),
    same('system:skiff-ingress', [user('system:skiff-ingress')]),
    same('system:kube-scheduler', [user('system:kube-scheduler')]),
    same('system:monitoring', [group('system:monitoring')]),
    same('system:metrics-server', [user('system:metrics-server')]),
    // No subjects: nodes are authorized by the Node authorizer, not this binding (upstream since 1.8).
    same('system:node', []),
    same('system:node-proxier', [user('system:kube-proxy')]),
    same('system:public-info-viewer', [group('system:authenticated'), group('system:unauthenticated')]),
    same('system:service-account-issuer-discovery', [group('system:serviceaccounts')]),
    same('system:volume-scheduler', [user('system:kube-scheduler')]),
  ];
}
