// Typed clients for the built-in resources, like client-go's kubernetes.Clientset:
// `clients.pods.list('default')` returns Pods, `clients.replicaSets.get(...)` a
// ReplicaSet. Each client is made on first use.

import type { KubeObject } from '../api/meta.ts';
import type {
  ControllerRevision,
  DaemonSet,
  Deployment,
  ReplicaSet,
  StatefulSet,
} from '../api/types/apps-v1.ts';
import type { CronJob, Job } from '../api/types/batch-v1.ts';
import type { CertificateSigningRequest } from '../api/types/certificates-v1.ts';
import type { Lease } from '../api/types/coordination-v1.ts';
import type {
  ConfigMap,
  Endpoints,
  Event,
  LimitRange,
  Namespace,
  Node,
  PersistentVolume,
  PersistentVolumeClaim,
  Pod,
  PodTemplate,
  ReplicationController,
  ResourceQuota,
  Secret,
  Service,
  ServiceAccount,
} from '../api/types/core-v1.ts';
import type { EndpointSlice } from '../api/types/discovery-v1.ts';
import type { Ingress, IngressClass, NetworkPolicy } from '../api/types/networking-v1.ts';
import type { PodDisruptionBudget } from '../api/types/policy-v1.ts';
import type { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from '../api/types/rbac-v1.ts';
import type { PriorityClass } from '../api/types/scheduling-v1.ts';
import type { StorageClass } from '../api/types/storage-v1.ts';
import { ResourceClient, type ResourceRef } from './client.ts';
import type { Transport } from './transport.ts';

const ref = (group: string, version: string, plural: string, namespaced = true): ResourceRef => ({
  group,
  version,
  plural,
  namespaced,
});

/** The built-in resources components use, by the name the clientset gives them. */
export const resources = {
  pods: ref('', 'v1', 'pods'),
  nodes: ref('', 'v1', 'nodes', false),
  namespaces: ref('', 'v1', 'namespaces', false),
  services: ref('', 'v1', 'services'),
  endpoints: ref('', 'v1', 'endpoints'),
  configMaps: ref('', 'v1', 'configmaps'),
  secrets: ref('', 'v1', 'secrets'),
  serviceAccounts: ref('', 'v1', 'serviceaccounts'),
  events: ref('', 'v1', 'events'),
  replicationControllers: ref('', 'v1', 'replicationcontrollers'),
  podTemplates: ref('', 'v1', 'podtemplates'),
  resourceQuotas: ref('', 'v1', 'resourcequotas'),
  limitRanges: ref('', 'v1', 'limitranges'),
  persistentVolumeClaims: ref('', 'v1', 'persistentvolumeclaims'),
  persistentVolumes: ref('', 'v1', 'persistentvolumes', false),
  replicaSets: ref('apps', 'v1', 'replicasets'),
  deployments: ref('apps', 'v1', 'deployments'),
  daemonSets: ref('apps', 'v1', 'daemonsets'),
  statefulSets: ref('apps', 'v1', 'statefulsets'),
  controllerRevisions: ref('apps', 'v1', 'controllerrevisions'),
  jobs: ref('batch', 'v1', 'jobs'),
  cronJobs: ref('batch', 'v1', 'cronjobs'),
  leases: ref('coordination.k8s.io', 'v1', 'leases'),
  endpointSlices: ref('discovery.k8s.io', 'v1', 'endpointslices'),
  networkPolicies: ref('networking.k8s.io', 'v1', 'networkpolicies'),
  ingresses: ref('networking.k8s.io', 'v1', 'ingresses'),
  ingressClasses: ref('networking.k8s.io', 'v1', 'ingressclasses', false),
  podDisruptionBudgets: ref('policy', 'v1', 'poddisruptionbudgets'),
  priorityClasses: ref('scheduling.k8s.io', 'v1', 'priorityclasses', false),
  storageClasses: ref('storage.k8s.io', 'v1', 'storageclasses', false),
  clusterRoles: ref('rbac.authorization.k8s.io', 'v1', 'clusterroles', false),
  clusterRoleBindings: ref('rbac.authorization.k8s.io', 'v1', 'clusterrolebindings', false),
  roles: ref('rbac.authorization.k8s.io', 'v1', 'roles'),
  roleBindings: ref('rbac.authorization.k8s.io', 'v1', 'rolebindings'),
  certificateSigningRequests: ref('certificates.k8s.io', 'v1', 'certificatesigningrequests', false),
} as const;

/** Which TypeScript type each resource's objects have. */
export interface ResourceTypes {
  pods: Pod;
  nodes: Node;
  namespaces: Namespace;
  services: Service;
  endpoints: Endpoints;
  configMaps: ConfigMap;
  secrets: Secret;
  serviceAccounts: ServiceAccount;
  events: Event;
  replicationControllers: ReplicationController;
  podTemplates: PodTemplate;
  resourceQuotas: ResourceQuota;
  limitRanges: LimitRange;
  persistentVolumeClaims: PersistentVolumeClaim;
  persistentVolumes: PersistentVolume;
  replicaSets: ReplicaSet;
  deployments: Deployment;
  daemonSets: DaemonSet;
  statefulSets: StatefulSet;
  controllerRevisions: ControllerRevision;
  jobs: Job;
  cronJobs: CronJob;
  leases: Lease;
  endpointSlices: EndpointSlice;
  networkPolicies: NetworkPolicy;
  ingresses: Ingress;
  ingressClasses: IngressClass;
  podDisruptionBudgets: PodDisruptionBudget;
  priorityClasses: PriorityClass;
  storageClasses: StorageClass;
  clusterRoles: ClusterRole;
  clusterRoleBindings: ClusterRoleBinding;
  roles: Role;
  roleBindings: RoleBinding;
  certificateSigningRequests: CertificateSigningRequest;
}

export type ResourceName = keyof typeof resources;

export type Clientset = { readonly [R in ResourceName]: ResourceClient<ResourceTypes[R]> } & {
  readonly transport: Transport;
  /** A client for any resource, typed by the caller (custom or rarely used kinds). */
  forResource<T extends KubeObject = KubeObject>(ref: ResourceRef): ResourceClient<T>;
};

export function createClientset(transport: Transport): Clientset {
  const made = new Map<string, ResourceClient>();
  const forResource = <T extends KubeObject>(r: ResourceRef): ResourceClient<T> => {
    const key = `${r.group}/${r.version}/${r.plural}`;
    let c = made.get(key);
    if (!c) {
      c = new ResourceClient(transport, r);
      made.set(key, c);
    }
    return c as unknown as ResourceClient<T>;
  };
  const set: Record<string, unknown> = { transport, forResource };
  for (const [name, r] of Object.entries(resources)) {
    Object.defineProperty(set, name, { get: () => forResource(r), enumerable: true });
  }
  return set as Clientset;
}
