// The Endpoints controller: keeps one Endpoints object per Service with a
// selector, listing the IPs of the Service's pods (ready ones under
// `addresses`, the others under `notReadyAddresses`) and the target port each
// pod serves. Services without a selector are left alone: their Endpoints are
// written by the user (or, for `kubernetes`, by the API server's bootstrap).
// Deleting a Service deletes its Endpoints.
// Upstream: pkg/controller/endpoint/endpoints_controller.go
// (https://github.com/kubernetes/kubernetes/blob/master/pkg/controller/endpoint/endpoints_controller.go)

import { isApiError } from '../api/errors.ts';
import { selectorFromSet } from '../api/labels.ts';
import { deepCopy, jsonEqual } from '../api/meta.ts';
import type {
  EndpointAddress,
  EndpointPort,
  EndpointSubset,
  Endpoints,
  Pod,
  Service,
  ServicePort,
} from '../api/types/core-v1.ts';
import { NAMESPACE_INDEX } from '../client/informer-factory.ts';
import { type ControllerFactory, keyOf, splitKey } from './context.ts';
import { queueController } from './controller.ts';
import {
  findPort,
  formatRFC3339Nano,
  HEADLESS_SERVICE_LABEL,
  isHeadless,
  isIPv6,
  isPodReady,
  isServiceIPSet,
  LAST_CHANGE_TRIGGER_TIME,
  managesEndpointsOf,
  namespaceTerminating,
  podIPs,
  serviceIPFamily,
  servicesForPod,
  servicesToUpdateOnPodChange,
  shouldPodBeInEndpoints,
  shouldSetHostname,
  TriggerTimeTracker,
} from './endpoint-util.ts';

/** Endpoints hold at most this many addresses; the rest are dropped (upstream maxCapacity). */
export const MAX_ENDPOINTS_CAPACITY = 1000;
/** Set to "truncated" on Endpoints that hit MAX_ENDPOINTS_CAPACITY. */
export const OVER_CAPACITY_ANNOTATION = 'endpoints.kubernetes.io/over-capacity';
/**
 * Endpoints that carry a leader-election record (old-style locks) are not
 * backed by a Service: the startup sweep for leftover Endpoints skips them.
 */
const LEADER_ANNOTATION = 'control-plane.alpha.kubernetes.io/leader';

export const endpointsController: ControllerFactory = (ctx) => {
  const services = ctx.informers.informer('services');
  const pods = ctx.informers.informer('pods');
  const endpoints = ctx.informers.informer('endpoints');
  const recorder = ctx.recorder('endpoint-controller');
  const triggerTimes = new TriggerTimeTracker();

  const c = queueController(ctx, {
    name: 'endpoint',
    workers: 5,
    async sync(key) {
      const { namespace = '', name } = splitKey(key);
      const svc = services.indexer.get(key);
      if (!svc) {
        // The Service is gone: so are its Endpoints, whoever wrote them.
        triggerTimes.deleteService(key);
        try {
          await ctx.clients.endpoints.delete(namespace, name);
        } catch (err) {
          if (!isApiError(err, 'NotFound')) throw err;
        }
        return;
      }
      if (!managesEndpointsOf(svc)) return;

      const selector = selectorFromSet(svc.spec?.selector);
      const selected = pods.indexer
        .byIndex(NAMESPACE_INDEX, namespace)
        .filter((pod) => selector.matches(pod.metadata.labels ?? {}));
      const triggerTime = triggerTimes.compute(key, svc, selected);
      const { subsets, truncated: overCapacity } = truncateToCapacity(
        repackSubsets(subsetsFor(svc, selected)),
      );

      const current = endpoints.indexer.get(key);
      const labels: Record<string, string> = { ...svc.metadata.labels };
      delete labels[HEADLESS_SERVICE_LABEL];
      if (!isServiceIPSet(svc)) labels[HEADLESS_SERVICE_LABEL] = '';
      if (
        current &&
        jsonEqual(current.subsets ?? [], subsets) &&
        jsonEqual(current.metadata.labels ?? {}, labels) &&
        (current.metadata.annotations?.[OVER_CAPACITY_ANNOTATION] !== undefined) === overCapacity
      ) {
        return; // nothing a reader would see changed
      }

      const desired: Endpoints = current
        ? deepCopy(current)
        : { apiVersion: 'v1', kind: 'Endpoints', metadata: { name, namespace } };
      desired.metadata.labels = labels;
      if (subsets.length > 0) desired.subsets = subsets;
      else delete desired.subsets;
      const annotations = { ...desired.metadata.annotations };
      if (triggerTime) annotations[LAST_CHANGE_TRIGGER_TIME] = formatRFC3339Nano(triggerTime);
      else delete annotations[LAST_CHANGE_TRIGGER_TIME];
      if (overCapacity) annotations[OVER_CAPACITY_ANNOTATION] = 'truncated';
      else delete annotations[OVER_CAPACITY_ANNOTATION];
      desired.metadata.annotations = annotations;

      try {
        if (current) await ctx.clients.endpoints.update(desired);
        else await ctx.clients.endpoints.create(namespace, desired);
      } catch (err) {
        // Creates keep failing while the namespace terminates: drop the key.
        if (!current && namespaceTerminating(err)) return;
        if (current) {
          recorder.event(
            desired,
            'Warning',
            'FailedToUpdateEndpoint',
            `Failed to update endpoint ${namespace}/${name}: ${String(err)}`,
          );
        } else {
          recorder.event(
            desired,
            'Warning',
            'FailedToCreateEndpoint',
            `Failed to create endpoint for service ${namespace}/${name}: ${String(err)}`,
          );
        }
        throw err;
      }
    },
    onRun() {
      // Endpoints whose Service was deleted while no controller ran would
      // never get an event: sync every one once (upstream checkLeftoverEndpoints).
      for (const ep of endpoints.indexer.list()) {
        if (ep.metadata.annotations?.[LEADER_ANNOTATION] !== undefined) continue;
        c.queue.add(keyOf(ep));
      }
    },
  });

  const enqueueAll = (keys: Iterable<string>) => {
    for (const k of keys) c.queue.add(k);
  };
  services.on({
    add: (svc) => c.queue.add(keyOf(svc)),
    update: (_old, svc) => c.queue.add(keyOf(svc)),
    delete: (svc) => c.queue.add(keyOf(svc)),
  });
  pods.on({
    add: (pod) => enqueueAll(servicesForPod(services, pod)),
    update: (oldPod, pod) => enqueueAll(servicesToUpdateOnPodChange(services, oldPod, pod)),
    delete: (pod) => enqueueAll(servicesForPod(services, pod)),
  });
  // Someone deleted Endpoints we keep: put them back (upstream onEndpointsDelete).
  endpoints.on({ delete: (ep) => c.queue.add(keyOf(ep)) });
  return c;
};

/**
 * One single-address subset per (pod, service port), as upstream builds them
 * before repacking. A port name resolves per pod, so pods serving a named
 * port on different numbers end up in different subsets after the repack.
 */
function subsetsFor(svc: Service, selected: Pod[]): EndpointSubset[] {
  const publishNotReady = svc.spec?.publishNotReadyAddresses === true;
  const servicePorts = svc.spec?.ports ?? [];
  const out: EndpointSubset[] = [];
  for (const pod of selected) {
    if (!shouldPodBeInEndpoints(pod, publishNotReady)) continue;
    const address = endpointAddressFor(svc, pod);
    if (!address) continue;
    const ready = publishNotReady || isPodReady(pod);
    const subset = (ports: EndpointPort[]): EndpointSubset =>
      ready ? { addresses: [address], ports } : { notReadyAddresses: [address], ports };
    // A headless Service may have no ports: its endpoints are bare IPs (for DNS).
    if (servicePorts.length === 0) {
      if (isHeadless(svc)) out.push(subset([]));
      continue;
    }
    for (const sp of servicePorts) {
      const port = findPort(pod, sp);
      if (port === undefined) continue; // this pod does not serve this port
      out.push(subset([endpointPortFor(sp, port)]));
    }
  }
  return out;
}

/** The pod's address in the Service's IP family, or undefined when it has none. */
function endpointAddressFor(svc: Service, pod: Pod): EndpointAddress | undefined {
  const wantIPv6 = serviceIPFamily(svc, pod) === 'IPv6';
  const ip = podIPs(pod).find((a) => isIPv6(a) === wantIPv6);
  if (!ip) return undefined;
  const address: EndpointAddress = {
    ip,
    targetRef: {
      kind: 'Pod',
      namespace: pod.metadata.namespace ?? '',
      name: pod.metadata.name ?? '',
      uid: pod.metadata.uid ?? '',
    },
  };
  if (pod.spec?.nodeName) address.nodeName = pod.spec.nodeName;
  if (shouldSetHostname(pod, svc)) address.hostname = pod.spec?.hostname ?? '';
  return address;
}

function endpointPortFor(sp: ServicePort, port: number): EndpointPort {
  const out: EndpointPort = { name: sp.name ?? '', port, protocol: sp.protocol ?? 'TCP' };
  if (sp.appProtocol) out.appProtocol = sp.appProtocol;
  return out;
}

// ---- RepackSubsets (pkg/api/v1/endpoints) ----

/** Addresses are one endpoint per IP and target (two pods may share an IP, e.g. hostNetwork). */
const addressKey = (a: EndpointAddress) => `${a.ip ?? ''}/${a.targetRef?.uid ?? ''}`;
const portKey = (p: EndpointPort | undefined) =>
  p ? JSON.stringify([p.name ?? '', p.port ?? 0, p.protocol ?? '', p.appProtocol ?? '']) : '';

function compareAddresses(a: EndpointAddress, b: EndpointAddress): number {
  if (a.ip !== b.ip) return (a.ip ?? '') < (b.ip ?? '') ? -1 : 1;
  const ua = a.targetRef?.uid ?? '';
  const ub = b.targetRef?.uid ?? '';
  return ua === ub ? 0 : ua < ub ? -1 : 1;
}

/**
 * Regroups subsets into the canonical form the API expects (upstream
 * RepackSubsets): every set of ports served by exactly the same set of
 * addresses becomes one subset, each address appears once per subset, an
 * address not ready on a port stays not ready there even if another subset
 * says ready ("not ready trumps ready"), and everything is sorted so that an
 * unchanged cluster always yields the same subsets (no spurious writes).
 * Addresses without ports (headless Services) are kept, as a subset without ports.
 */
export function repackSubsets(subsets: EndpointSubset[]): EndpointSubset[] {
  const addresses = new Map<string, EndpointAddress>();
  // port key → (address key → ready)
  const byPort = new Map<string, { port: EndpointPort | undefined; ready: Map<string, boolean> }>();
  const note = (address: EndpointAddress, port: EndpointPort | undefined, ready: boolean) => {
    const ak = addressKey(address);
    if (!addresses.has(ak)) addresses.set(ak, address);
    const pk = portKey(port);
    let entry = byPort.get(pk);
    if (!entry) {
      entry = { port, ready: new Map() };
      byPort.set(pk, entry);
    }
    if (entry.ready.get(ak) !== false) entry.ready.set(ak, ready);
  };
  for (const subset of subsets) {
    const ports: (EndpointPort | undefined)[] = subset.ports?.length ? subset.ports : [undefined];
    for (const port of ports) {
      for (const a of subset.addresses ?? []) note(a, port, true);
      for (const a of subset.notReadyAddresses ?? []) note(a, port, false);
    }
  }

  // Ports served by the same addresses (with the same readiness) share a subset.
  const groups = new Map<string, { ready: Map<string, boolean>; ports: EndpointPort[] }>();
  for (const { port, ready } of byPort.values()) {
    const signature = JSON.stringify([...ready].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    let group = groups.get(signature);
    if (!group) {
      group = { ready, ports: [] };
      groups.set(signature, group);
    }
    if (port) group.ports.push(port);
  }

  const out: EndpointSubset[] = [];
  for (const { ready, ports } of groups.values()) {
    const subset: EndpointSubset = {};
    const readyAddrs: EndpointAddress[] = [];
    const notReadyAddrs: EndpointAddress[] = [];
    for (const [ak, isReady] of ready) (isReady ? readyAddrs : notReadyAddrs).push(addresses.get(ak)!);
    if (readyAddrs.length) subset.addresses = readyAddrs.sort(compareAddresses);
    if (notReadyAddrs.length) subset.notReadyAddresses = notReadyAddrs.sort(compareAddresses);
    if (ports.length) subset.ports = ports.sort((a, b) => (portKey(a) < portKey(b) ? -1 : 1));
    out.push(subset);
  }
  const subsetKey = (s: EndpointSubset) =>
    JSON.stringify([
      (s.ports ?? []).map(portKey),
      (s.addresses ?? []).map(addressKey),
      (s.notReadyAddresses ?? []).map(addressKey),
    ]);
  return out.sort((a, b) => (subsetKey(a) < subsetKey(b) ? -1 : 1));
}

/**
 * Caps the addresses at MAX_ENDPOINTS_CAPACITY as upstream's truncateEndpoints:
 * ready addresses are kept before not-ready ones, and what survives is spread
 * over the subsets in proportion to their size (rounded up, the last subsets
 * get what is left).
 */
export function truncateToCapacity(
  subsets: EndpointSubset[],
  capacity = MAX_ENDPOINTS_CAPACITY,
): { subsets: EndpointSubset[]; truncated: boolean } {
  let totalReady = 0;
  let totalNotReady = 0;
  for (const s of subsets) {
    totalReady += s.addresses?.length ?? 0;
    totalNotReady += s.notReadyAddresses?.length ?? 0;
  }
  if (totalReady + totalNotReady <= capacity) return { subsets, truncated: false };

  // Either ready addresses alone overflow (keep a share of them, drop every
  // not-ready one), or they fit and the not-ready ones share what is left.
  const truncateReady = totalReady > capacity;
  const room = truncateReady ? capacity : capacity - totalReady;
  const total = truncateReady ? totalReady : totalNotReady;
  let left = room;
  const out = subsets.map((s) => {
    const list = (truncateReady ? s.addresses : s.notReadyAddresses) ?? [];
    const share = Math.min(Math.ceil((list.length / total) * room), left);
    const kept = list.slice(0, share);
    left -= kept.length;
    const next: EndpointSubset = { ...s };
    if (truncateReady) {
      next.addresses = kept;
      delete next.notReadyAddresses;
    } else {
      next.notReadyAddresses = kept;
    }
    if (next.addresses?.length === 0) delete next.addresses;
    if (next.notReadyAddresses?.length === 0) delete next.notReadyAddresses;
    return next;
  });
  return { subsets: out.filter((s) => s.addresses || s.notReadyAddresses), truncated: true };
}
