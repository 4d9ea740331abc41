// What a ResourceQuota counts, as upstream's quota evaluators count it
// (pkg/quota/v1/evaluator/core and the generic object-count evaluator): the
// usage of one object under each quota resource name, and which pods a
// quota's scopes select. The ResourceQuota controller sums these over a
// namespace; the ResourceQuota admission plugin charges them for each write.

import { compareQuantity, newQuantity } from './quantity.ts';
import { podResources, quantityOf, type ResourceList } from './resource-list.ts';
import { qosClass } from './resources/core.ts';
import type {
  PersistentVolumeClaim,
  Pod,
  ResourceQuota,
  ScopedResourceSelectorRequirement,
  Service,
} from './types/core-v1.ts';

const ONE = newQuantity(1, 'DecimalSI');
const ZERO = newQuantity(0, 'DecimalSI');

// ---- pods ---------------------------------------------------------------

/** Upstream's QuotaV1Pod: terminal pods, and pods stuck past their deletion grace period, are free. */
export function podCountsForQuota(pod: Pod, now: Date): boolean {
  if (pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded') return false;
  const deletion = pod.metadata.deletionTimestamp;
  const grace = pod.metadata.deletionGracePeriodSeconds;
  if (deletion && grace !== undefined && now.getTime() > Date.parse(deletion) + grace * 1000) return false;
  return true;
}

const COMPUTE_WITH_BARE_NAME = ['cpu', 'memory', 'ephemeral-storage'];

export function podUsage(pod: Pod, now: Date): ResourceList {
  // count/pods tracks every pod in storage; the rest only live ones.
  const usage: ResourceList = new Map([['count/pods', ONE]]);
  if (!podCountsForQuota(pod, now)) return usage;
  usage.set('pods', ONE);
  for (const [name, q] of podResources(pod, 'requests')) {
    if (COMPUTE_WITH_BARE_NAME.includes(name) || name.startsWith('hugepages-')) usage.set(name, q);
    usage.set(`requests.${name}`, q);
  }
  for (const [name, q] of podResources(pod, 'limits')) {
    if (COMPUTE_WITH_BARE_NAME.includes(name)) usage.set(`limits.${name}`, q);
  }
  return usage;
}

export const isPodResource = (name: string) =>
  name === 'pods' ||
  name === 'count/pods' ||
  COMPUTE_WITH_BARE_NAME.includes(name) ||
  name.startsWith('hugepages-') ||
  name.startsWith('requests.') ||
  name.startsWith('limits.');

// ---- scopes -------------------------------------------------------------

function hasCrossNamespacePodAffinity(pod: Pod): boolean {
  const terms: { namespaces?: string[]; namespaceSelector?: unknown }[] = [];
  for (const kind of [pod.spec?.affinity?.podAffinity, pod.spec?.affinity?.podAntiAffinity]) {
    if (!kind) continue;
    terms.push(...(kind.requiredDuringSchedulingIgnoredDuringExecution ?? []));
    for (const w of kind.preferredDuringSchedulingIgnoredDuringExecution ?? []) {
      if (w.podAffinityTerm) terms.push(w.podAffinityTerm);
    }
  }
  return terms.some((t) => (t.namespaces?.length ?? 0) > 0 || t.namespaceSelector != null);
}

/** Whether `pod` is in the scope `req` names (upstream's podMatchesScopeFunc). */
export function podMatchesScope(pod: Pod, req: ScopedResourceSelectorRequirement): boolean {
  const negate = req.operator === 'DoesNotExist';
  let matches: boolean;
  switch (req.scopeName) {
    case 'Terminating':
      matches = pod.spec?.activeDeadlineSeconds != null && pod.spec.activeDeadlineSeconds >= 0;
      break;
    case 'NotTerminating':
      matches = !(pod.spec?.activeDeadlineSeconds != null && pod.spec.activeDeadlineSeconds >= 0);
      break;
    case 'BestEffort':
      matches = (pod.status?.qosClass ?? qosClass(pod.spec ?? {})) === 'BestEffort';
      break;
    case 'NotBestEffort':
      matches = (pod.status?.qosClass ?? qosClass(pod.spec ?? {})) !== 'BestEffort';
      break;
    case 'PriorityClass': {
      // As upstream, the pod's priorityClassName is matched like a label that
      // is always present (possibly empty), so Exists matches every pod.
      const value = pod.spec?.priorityClassName ?? '';
      const values = req.values ?? [];
      if (req.operator === 'In') return values.includes(value);
      if (req.operator === 'NotIn') return !values.includes(value);
      return req.operator === 'Exists';
    }
    case 'CrossNamespacePodAffinity':
      matches = hasCrossNamespacePodAffinity(pod);
      break;
    default:
      return false;
  }
  return negate ? !matches : matches;
}

export function quotaScopes(quota: ResourceQuota): ScopedResourceSelectorRequirement[] {
  return [
    ...(quota.spec?.scopes ?? []).map((scopeName) => ({ scopeName, operator: 'Exists' })),
    ...(quota.spec?.scopeSelector?.matchExpressions ?? []),
  ];
}

// ---- other evaluators ---------------------------------------------------

export function serviceUsage(svc: Service): ResourceList {
  const usage: ResourceList = new Map([
    ['services', ONE],
    ['count/services', ONE],
    ['services.nodeports', ZERO],
    ['services.loadbalancers', ZERO],
  ]);
  const ports = svc.spec?.ports ?? [];
  if (svc.spec?.type === 'NodePort') usage.set('services.nodeports', newQuantity(ports.length, 'DecimalSI'));
  if (svc.spec?.type === 'LoadBalancer') {
    // Node ports are not allocated yet when a quota is checked, so upstream
    // counts the intent: every port, unless node ports are switched off, in
    // which case only the ports that ask for one.
    const nodePorts =
      svc.spec.allocateLoadBalancerNodePorts === false
        ? ports.filter((p) => p.nodePort).length
        : ports.length;
    usage.set('services.nodeports', newQuantity(nodePorts, 'DecimalSI'));
    usage.set('services.loadbalancers', ONE);
  }
  return usage;
}

export const STORAGE_CLASS_SUFFIX = '.storageclass.storage.k8s.io/';

export function pvcUsage(pvc: PersistentVolumeClaim): ResourceList {
  const usage: ResourceList = new Map([
    ['persistentvolumeclaims', ONE],
    ['count/persistentvolumeclaims', ONE],
  ]);
  // A claim being expanded counts at the larger of what it asks and what it
  // has been given (upstream's RecoverVolumeExpansionFailure rule).
  let storage = quantityOf(pvc.spec?.resources?.requests?.storage);
  const allocated = quantityOf(pvc.status?.allocatedResources?.storage);
  if (allocated && (!storage || compareQuantity(allocated, storage) > 0)) storage = allocated;
  if (storage) usage.set('requests.storage', storage);
  const storageClass = pvc.spec?.storageClassName;
  if (storageClass) {
    usage.set(`${storageClass}${STORAGE_CLASS_SUFFIX}persistentvolumeclaims`, ONE);
    if (storage) usage.set(`${storageClass}${STORAGE_CLASS_SUFFIX}requests.storage`, storage);
  }
  return usage;
}
