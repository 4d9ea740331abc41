// The per-controller roles (upstream's bootstrappolicy controller_policy.go):
// each controller of the controller manager acts as its own ServiceAccount
// kube-system/<name> (upstream's --use-service-account-credentials), bound
// to ClusterRole system:controller:<name> with only what it needs.

import type { ClusterRole, ClusterRoleBinding, PolicyRule } from '../../api/types/rbac-v1.ts';
import { bootstrapMeta, rule } from './bootstrap-policy.ts';

export const CONTROLLER_ROLE_PREFIX = 'system:controller:';
const EVENTS = rule('create update patch', 'core events.k8s.io', 'events');
const READ = 'get list watch';

/** The ServiceAccount (and role) name of each upstream controller, by role suffix. */
const roles: Record<string, PolicyRule[]> = {
  'attachdetach-controller': [
    rule('list watch', 'core', 'persistentvolumes persistentvolumeclaims'),
    rule(READ, 'core', 'nodes'),
    rule('patch update', 'core', 'nodes/status'),
    rule('list watch', 'core', 'pods'),
    EVENTS,
    rule('get create delete list watch', 'storage.k8s.io', 'volumeattachments'),
    rule(READ, 'storage.k8s.io', 'csidrivers'),
    rule(READ, 'storage.k8s.io', 'csinodes'),
  ],
  'clusterrole-aggregation-controller': [
    rule('escalate get list watch update patch', 'rbac.authorization.k8s.io', 'clusterroles'),
  ],
  // csrapproving, csrsigning and csrcleaner.
  'certificate-controller': [
    rule('get list watch delete', 'certificates.k8s.io', 'certificatesigningrequests'),
    rule(
      'update',
      'certificates.k8s.io',
      'certificatesigningrequests/status certificatesigningrequests/approval',
    ),
    rule('approve', 'certificates.k8s.io', 'signers', 'kubernetes.io/kube-apiserver-client-kubelet'),
    rule(
      'sign',
      'certificates.k8s.io',
      'signers',
      'kubernetes.io/legacy-unknown kubernetes.io/kube-apiserver-client kubernetes.io/kube-apiserver-client-kubelet kubernetes.io/kubelet-serving',
    ),
    rule('create', 'authorization.k8s.io', 'subjectaccessreviews'),
    EVENTS,
  ],
  'cronjob-controller': [
    rule(`${READ} update`, 'batch', 'cronjobs'),
    rule(`${READ} create update delete patch`, 'batch', 'jobs'),
    rule('update', 'batch', 'cronjobs/status'),
    rule('update', 'batch', 'cronjobs/finalizers'),
    rule('list watch delete', 'core', 'pods'),
    EVENTS,
  ],
  'daemon-set-controller': [
    rule(READ, 'extensions apps', 'daemonsets'),
    rule('update', 'extensions apps', 'daemonsets/status'),
    rule('update', 'extensions apps', 'daemonsets/finalizers'),
    rule('list watch', 'core', 'nodes'),
    rule('list watch create delete patch', 'core', 'pods'),
    rule('create', 'core', 'pods/binding'),
    rule(`${READ} create delete update patch`, 'apps', 'controllerrevisions'),
    EVENTS,
  ],
  'deployment-controller': [
    rule(`${READ} update`, 'extensions apps', 'deployments'),
    rule('update', 'extensions apps', 'deployments/status'),
    rule('update', 'extensions apps', 'deployments/finalizers'),
    rule(`${READ} create update patch delete`, 'apps extensions', 'replicasets'),
    rule(`${READ} update`, 'core', 'pods'),
    EVENTS,
  ],
  'disruption-controller': [
    rule(READ, 'extensions apps', 'deployments'),
    rule(READ, 'apps extensions', 'replicasets'),
    rule(READ, 'core', 'replicationcontrollers'),
    rule(READ, 'policy', 'poddisruptionbudgets'),
    rule(READ, 'apps', 'statefulsets'),
    rule('update', 'policy', 'poddisruptionbudgets/status'),
    rule('patch update', 'core', 'pods/status'),
    rule('get', '*', '*/scale'),
    EVENTS,
  ],
  'horizontal-pod-autoscaler': [
    rule(READ, 'autoscaling', 'horizontalpodautoscalers'),
    rule('update', 'autoscaling', 'horizontalpodautoscalers/status'),
    rule('get update', '*', '*/scale'),
    rule('list watch', 'core', 'pods'),
    // Resource metrics; custom and external metrics are not served, but the role allows them as upstream's.
    rule('list', 'metrics.k8s.io', 'pods'),
    rule('get list', 'custom.metrics.k8s.io', '*'),
    rule('get list', 'external.metrics.k8s.io', '*'),
    EVENTS,
  ],
  'endpoint-controller': [
    rule(READ, 'core', 'services pods'),
    rule(`${READ} create update delete`, 'core', 'endpoints'),
    rule('create', 'core', 'endpoints/restricted'),
    EVENTS,
  ],
  'endpointslice-controller': [
    rule(READ, 'core', 'services pods nodes'),
    rule('update', 'core', 'services/finalizers'),
    rule(`${READ} create update delete`, 'discovery.k8s.io', 'endpointslices'),
    EVENTS,
  ],
  'generic-garbage-collector': [rule(`${READ} patch update delete`, '*', '*'), EVENTS],
  'job-controller': [
    rule(`${READ} update patch`, 'batch', 'jobs'),
    rule('update', 'batch', 'jobs/status'),
    rule('update', 'batch', 'jobs/finalizers'),
    rule('list watch create delete patch', 'core', 'pods'),
    EVENTS,
  ],
  'namespace-controller': [
    rule(`${READ} delete`, 'core', 'namespaces'),
    rule('update', 'core', 'namespaces/finalize namespaces/status'),
    rule(`${READ} delete deletecollection`, '*', '*'),
  ],
  'node-controller': [
    rule(`${READ} update delete patch`, 'core', 'nodes'),
    rule('patch update', 'core', 'nodes/status'),
    rule('patch update', 'core', 'pods/status'),
    rule('list watch get delete', 'core', 'pods'),
    EVENTS,
  ],
  'pod-garbage-collector': [
    rule('list watch delete', 'core', 'pods'),
    rule(READ, 'core', 'nodes'),
    rule('patch', 'core', 'pods/status'),
  ],
  'replicaset-controller': [
    rule(`${READ} update`, 'apps extensions', 'replicasets'),
    rule('update', 'apps extensions', 'replicasets/status'),
    rule('update', 'apps extensions', 'replicasets/finalizers'),
    rule('list watch patch create delete', 'core', 'pods'),
    EVENTS,
  ],
  'replication-controller': [
    rule(`${READ} update`, 'core', 'replicationcontrollers'),
    rule('update', 'core', 'replicationcontrollers/status'),
    rule('update', 'core', 'replicationcontrollers/finalizers'),
    rule('list watch patch create delete', 'core', 'pods'),
    EVENTS,
  ],
  'resourcequota-controller': [
    rule('list watch', '*', '*'),
    rule('update', 'core', 'resourcequotas/status'),
    EVENTS,
  ],
  'service-account-controller': [rule('create', 'core', 'serviceaccounts'), EVENTS],
  'service-controller': [
    rule(READ, 'core', 'services'),
    rule('patch update', 'core', 'services/status'),
    rule('list watch', 'core', 'nodes'),
    EVENTS,
  ],
  'statefulset-controller': [
    rule('list watch', 'core', 'pods'),
    rule(READ, 'apps', 'statefulsets'),
    rule('update', 'apps', 'statefulsets/status'),
    rule('update', 'apps', 'statefulsets/finalizers'),
    rule('get create delete update patch', 'core', 'pods'),
    rule(`get create delete update patch list watch`, 'apps', 'controllerrevisions'),
    rule('get create list watch', 'core', 'persistentvolumeclaims'),
    rule('update delete', 'core', 'persistentvolumeclaims'),
    rule('update', 'core', 'pods/finalizers'),
    EVENTS,
  ],
  // persistentvolume-binder (upstream's persistent-volume-binder role).
  'persistent-volume-binder': [
    rule('create delete get list update watch', 'core', 'persistentvolumes'),
    rule('update', 'core', 'persistentvolumes/status'),
    rule('get list update watch', 'core', 'persistentvolumeclaims'),
    rule('update', 'core', 'persistentvolumeclaims/status'),
    rule('list watch get create delete', 'core', 'pods'),
    rule('get', 'core', 'endpoints services'),
    rule('create delete', 'core', 'services'),
    rule('create delete get', 'core', 'endpoints'),
    rule('get', 'core', 'secrets'),
    rule('list watch', 'core', 'nodes'),
    rule('watch get list', 'storage.k8s.io', 'storageclasses'),
    EVENTS,
  ],
  'pvc-protection-controller': [
    rule('get list watch update', 'core', 'persistentvolumeclaims'),
    rule('list watch get', 'core', 'pods'),
    EVENTS,
  ],
  // k3s's local-path-provisioner-role, less what its helper pods needed.
  'local-path-provisioner-service-account': [
    rule('get list watch', 'core', 'nodes'),
    rule('get list watch update', 'core', 'persistentvolumeclaims'),
    // The resizer's part, as the external-resizer's role.
    rule('patch', 'core', 'persistentvolumeclaims/status'),
    rule('get list watch create patch update delete', 'core', 'persistentvolumes'),
    rule('get list watch', 'storage.k8s.io', 'storageclasses'),
    EVENTS,
  ],
  'pv-protection-controller': [rule('get list watch update', 'core', 'persistentvolumes'), EVENTS],
  'ephemeral-volume-controller': [
    rule('get list watch', 'core', 'pods'),
    rule('update', 'core', 'pods/finalizers'),
    rule('get list watch create', 'core', 'persistentvolumeclaims'),
    EVENTS,
  ],
  'ttl-after-finished-controller': [rule(`${READ} delete`, 'batch', 'jobs'), EVENTS],
  'root-ca-cert-publisher': [rule('create update', 'core', 'configmaps'), EVENTS],
  // Skiff's (k3s's) node-password controller: the <node>.node-password.skiff Secrets of deleted Nodes.
  'node-password-controller': [
    rule(READ, 'core', 'nodes'),
    rule(`${READ} delete`, 'core', 'secrets'),
    EVENTS,
  ],
};

export function controllerClusterRoles(): ClusterRole[] {
  return Object.entries(roles).map(([name, rules]) => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: bootstrapMeta(`${CONTROLLER_ROLE_PREFIX}${name}`),
    rules,
  }));
}

/** Each role bound to its controller's ServiceAccount in kube-system. */
export function controllerClusterRoleBindings(): ClusterRoleBinding[] {
  return Object.keys(roles).map((name) => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: bootstrapMeta(`${CONTROLLER_ROLE_PREFIX}${name}`),
    roleRef: {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: `${CONTROLLER_ROLE_PREFIX}${name}`,
    },
    subjects: [{ kind: 'ServiceAccount', name, namespace: 'kube-system' }],
  }));
}

/**
 * The ServiceAccount each Skiff controller (src/controllers/index.ts names)
 * acts as, upstream's where upstream has the controller.
 */
/**
 * Controllers that act as the controller manager itself
 * (system:kube-controller-manager), as upstream starts them with its root
 * credentials: the tokens controller writes every token Secret.
 */
export const ROOT_CREDENTIAL_CONTROLLERS = new Set(['serviceaccount-token']);

export const CONTROLLER_SERVICE_ACCOUNTS: Record<string, string> = {
  endpoint: 'endpoint-controller',
  endpointslice: 'endpointslice-controller',
  servicelb: 'service-controller',
  serviceaccount: 'service-account-controller',
  'root-ca-cert-publisher': 'root-ca-cert-publisher',
  deployment: 'deployment-controller',
  replicaset: 'replicaset-controller',
  replicationcontroller: 'replication-controller',
  statefulset: 'statefulset-controller',
  disruption: 'disruption-controller',
  daemonset: 'daemon-set-controller',
  job: 'job-controller',
  cronjob: 'cronjob-controller',
  horizontalpodautoscaling: 'horizontal-pod-autoscaler',
  'ttl-after-finished': 'ttl-after-finished-controller',
  nodeipam: 'node-controller',
  nodelifecycle: 'node-controller',
  'taint-eviction-controller': 'node-controller',
  podgc: 'pod-garbage-collector',
  'persistentvolume-binder': 'persistent-volume-binder',
  'pvc-protection': 'pvc-protection-controller',
  'pv-protection': 'pv-protection-controller',
  'ephemeral-volume': 'ephemeral-volume-controller',
  'local-path-provisioner': 'local-path-provisioner-service-account',
  resourcequota: 'resourcequota-controller',
  namespace: 'namespace-controller',
  garbagecollector: 'generic-garbage-collector',
  'clusterrole-aggregation': 'clusterrole-aggregation-controller',
  nodepassword: 'node-password-controller',
  csrsigning: 'certificate-controller',
  csrapproving: 'certificate-controller',
  csrcleaner: 'certificate-controller',
};
