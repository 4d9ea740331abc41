// What the Endpoints and EndpointSlice controllers share: which pods back a
// Service, how a Service port maps to a pod's port, which Services a pod
// change concerns, and the last-change-trigger-time bookkeeping. Upstream
// keeps these in staging/src/k8s.io/endpointslice/util and
// pkg/controller/util/endpoint.

import { isApiError } from '../api/errors.ts';
import { selectorFromSet } from '../api/labels.ts';
import { isPodReady, isPodTerminal, podIPs } from '../api/pod-util.ts';
import type { Pod, Service, ServicePort } from '../api/types/core-v1.ts';
import type { Informer } from '../client/informer.ts';
import { NAMESPACE_INDEX } from '../client/informer-factory.ts';

/** Annotation on Endpoints and EndpointSlices: when the change that caused the last write happened. */
export const LAST_CHANGE_TRIGGER_TIME = 'endpoints.kubernetes.io/last-change-trigger-time';
/** Label on the Endpoints and EndpointSlices of a headless Service (v1.IsHeadlessService). */
export const HEADLESS_SERVICE_LABEL = 'service.kubernetes.io/headless';

/** Spec.clusterIP "None": a headless Service. */
const CLUSTER_IP_NONE = 'None';

/** upstream helper.IsServiceIPSet: false for headless Services (and before allocation). */
export const isServiceIPSet = (svc: Service): boolean =>
  !!svc.spec?.clusterIP && svc.spec.clusterIP !== CLUSTER_IP_NONE;

export const isHeadless = (svc: Service): boolean => svc.spec?.clusterIP === CLUSTER_IP_NONE;

/**
 * Whether the controllers build endpoints for this Service at all. Services
 * without a selector get Endpoints/EndpointSlices written by someone else
 * (the user, or the API server for `kubernetes`); ExternalName Services get
 * none (https://issues.k8s.io/105986). An empty selector is the same as none:
 * Go's omitempty drops it on the wire.
 */
export const managesEndpointsOf = (svc: Service): boolean =>
  svc.spec?.type !== 'ExternalName' && Object.keys(svc.spec?.selector ?? {}).length > 0;

export { isPodReady, podIPs };

export const isIPv6 = (ip: string): boolean => ip.includes(':');

/**
 * upstream ShouldPodBeInEndpoints: finished pods (Succeeded/Failed) and pods
 * without an IP never back a Service; pods being deleted only when the caller
 * tolerates terminating endpoints.
 */
export function shouldPodBeInEndpoints(pod: Pod, includeTerminating: boolean): boolean {
  if (isPodTerminal(pod)) return false;
  if (podIPs(pod).length === 0) return false;
  if (!includeTerminating && pod.metadata.deletionTimestamp) return false;
  return true;
}

/**
 * upstream ShouldSetHostname: a pod's hostname is published only for the
 * Service its spec.subdomain names (the per-pod DNS records of headless
 * Services, as StatefulSets use).
 */
export const shouldSetHostname = (pod: Pod, svc: Service): boolean =>
  !!pod.spec?.hostname &&
  pod.spec.subdomain === svc.metadata.name &&
  pod.metadata.namespace === svc.metadata.namespace;

/**
 * upstream podutil.FindPort: a numeric targetPort is used as is; a named one
 * is looked up among the pod's container ports (and those of sidecars, i.e.
 * init containers with restartPolicy Always) with the same protocol, so the
 * same name may resolve to different numbers on different pods.
 */
export function findPort(pod: Pod, port: ServicePort): number | undefined {
  const target = port.targetPort ?? port.port;
  if (typeof target === 'number') return target;
  if (target === undefined) return undefined;
  const protocol = port.protocol ?? 'TCP';
  const sidecars = (pod.spec?.initContainers ?? []).filter((c) => c.restartPolicy === 'Always');
  for (const container of [...(pod.spec?.containers ?? []), ...sidecars]) {
    for (const p of container.ports ?? []) {
      if (p.name === target && (p.protocol ?? 'TCP') === protocol) return p.containerPort;
    }
  }
  return undefined;
}

/** Keys of the Services in the pod's namespace whose selector matches the pod (GetPodServiceMemberships). */
export function servicesForPod(services: Informer<Service>, pod: Pod): Set<string> {
  const keys = new Set<string>();
  const labels = pod.metadata.labels ?? {};
  for (const svc of services.indexer.byIndex(NAMESPACE_INDEX, pod.metadata.namespace ?? '')) {
    const selector = svc.spec?.selector;
    if (!selector || Object.keys(selector).length === 0) continue;
    if (selectorFromSet(selector).matches(labels)) keys.add(`${svc.metadata.namespace}/${svc.metadata.name}`);
  }
  return keys;
}

const sameStrings = (a: string[], b: string[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * The Services to resync after a pod update (upstream
 * GetServicesToUpdateOnPodChange): none if nothing endpoints show changed;
 * the Services of both the old and the new labels if labels (or
 * hostname/subdomain) changed, since the pod may have left a Service.
 * Upstream looks at deletionTimestamp, readiness and IPs; the phase is also
 * compared here so a pod that finished without losing readiness drops out.
 */
export function servicesToUpdateOnPodChange(
  services: Informer<Service>,
  oldPod: Pod,
  newPod: Pod,
): Set<string> {
  if (oldPod.metadata.resourceVersion === newPod.metadata.resourceVersion) return new Set();
  const labelsChanged =
    JSON.stringify(oldPod.metadata.labels ?? {}) !== JSON.stringify(newPod.metadata.labels ?? {}) ||
    oldPod.spec?.hostname !== newPod.spec?.hostname ||
    oldPod.spec?.subdomain !== newPod.spec?.subdomain;
  const endpointChanged =
    oldPod.metadata.deletionTimestamp !== newPod.metadata.deletionTimestamp ||
    isPodReady(oldPod) !== isPodReady(newPod) ||
    isPodTerminal(oldPod) !== isPodTerminal(newPod) ||
    !sameStrings(podIPs(oldPod), podIPs(newPod));
  if (!labelsChanged && !endpointChanged) return new Set();
  const keys = servicesForPod(services, newPod);
  if (labelsChanged) for (const k of servicesForPod(services, oldPod)) keys.add(k);
  return keys;
}

/**
 * Go's time.RFC3339Nano as upstream writes the trigger-time annotation:
 * trailing zeros of the fraction dropped ("2024-05-01T10:00:00Z").
 */
export function formatRFC3339Nano(date: Date): string {
  const iso = date.toISOString(); // 2024-05-01T10:00:00.120Z
  const [whole = '', frac = ''] = iso.slice(0, -1).split('.');
  const trimmed = frac.replace(/0+$/, '');
  return trimmed ? `${whole}.${trimmed}Z` : `${whole}Z`;
}

interface TriggerState {
  podTimes: Map<string, number>;
  serviceTime: number;
}

/**
 * upstream TriggerTimeTracker: the endpoints.kubernetes.io/last-change-trigger-time
 * of a write is the earliest change seen since the previous sync of that
 * Service: a pod's Ready condition lastTransitionTime that moved, or the
 * Service's creation. The first sync of a Service reports its creation time.
 * Syncs of one key never run concurrently (the queue guarantees it), so
 * per-key state needs no locking.
 */
export class TriggerTimeTracker {
  readonly #states = new Map<string, TriggerState>();

  /** The trigger time to write, or undefined when none is known (the annotation is then removed). */
  compute(key: string, svc: Service, pods: Pod[]): Date | undefined {
    const known = this.#states.get(key);
    const podTimes = new Map<string, number>();
    let earliest: number | undefined;
    const consider = (t: number) => {
      earliest = earliest === undefined ? t : Math.min(earliest, t);
    };
    for (const pod of pods) {
      const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
      const t = ready?.lastTransitionTime ? Date.parse(ready.lastTransitionTime) : Number.NaN;
      if (Number.isNaN(t)) continue;
      podTimes.set(pod.metadata.name ?? '', t);
      if (t > (known?.podTimes.get(pod.metadata.name ?? '') ?? Number.NEGATIVE_INFINITY)) consider(t);
    }
    const created = svc.metadata.creationTimestamp ? Date.parse(svc.metadata.creationTimestamp) : 0;
    if (created > (known?.serviceTime ?? Number.NEGATIVE_INFINITY)) consider(created);
    this.#states.set(key, { podTimes, serviceTime: created });
    if (!known) return svc.metadata.creationTimestamp ? new Date(created) : undefined;
    return earliest === undefined ? undefined : new Date(earliest);
  }

  deleteService(key: string): void {
    this.#states.delete(key);
  }
}

/** The API server refused a create because the namespace is going away (NamespaceTerminatingCause). */
export const namespaceTerminating = (err: unknown): boolean =>
  isApiError(err, 'Forbidden') &&
  ((err.status.details?.causes ?? []).some((c) => c.reason === 'NamespaceTerminating') ||
    err.message.endsWith('because it is being terminated'));

/** The IP family a Service's endpoints use (upstream podToEndpointAddressForService). */
export function serviceIPFamily(svc: Service, pod?: Pod): 'IPv4' | 'IPv6' {
  const family = svc.spec?.ipFamilies?.[0];
  if (family === 'IPv4' || family === 'IPv6') return family;
  // An API server that did not default ipFamilies: go by the cluster IP, or
  // for a headless Service by the pod's own first IP.
  const ip = isServiceIPSet(svc) ? (svc.spec?.clusterIP ?? '') : pod ? (podIPs(pod)[0] ?? '') : '';
  return isIPv6(ip) ? 'IPv6' : 'IPv4';
}
