// The EndpointSlice controller: for every Service with a selector, keeps
// EndpointSlices (discovery.k8s.io/v1) listing its pods, at most
// maxEndpointsPerSlice (100) endpoints each, one group of slices per distinct
// set of resolved ports. Each endpoint carries the ready/serving/terminating
// conditions, the pod as targetRef, its node and the node's zone. Slices are
// labelled kubernetes.io/service-name and managed-by
// endpointslice-controller.k8s.io, and owned by the Service, so deleting the
// Service deletes them through the garbage collector (upstream does not
// delete them itself). Services without a selector are left alone.
// Upstream: pkg/controller/endpointslice/endpointslice_controller.go and the
// reconciler in staging/src/k8s.io/endpointslice/reconciler.go
// (https://github.com/kubernetes/kubernetes/tree/master/staging/src/k8s.io/endpointslice).

import { isApiError } from '../api/errors.ts';
import { selectorFromSet } from '../api/labels.ts';
import { deepCopy, jsonEqual } from '../api/meta.ts';
import type { Node, Pod, Service } from '../api/types/core-v1.ts';
import type { Endpoint, EndpointPort, EndpointSlice } from '../api/types/discovery-v1.ts';
import { NAMESPACE_INDEX } from '../client/informer-factory.ts';
import { type ControllerContext, type ControllerFactory, keyOf, splitKey } from './context.ts';
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
  servicesForPod,
  servicesToUpdateOnPodChange,
  shouldPodBeInEndpoints,
  shouldSetHostname,
  TriggerTimeTracker,
} from './endpoint-util.ts';
import { ownerRef } from './ownership.ts';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
export const CONTROLLER_NAME = 'endpointslice-controller.k8s.io';
/** upstream --max-endpoints-per-slice default. */
export const DEFAULT_MAX_ENDPOINTS_PER_SLICE = 100;
const ZONE_LABEL = 'topology.kubernetes.io/zone';
/**
 * Syncs caused by EndpointSlice events wait at least this long, so a burst
 * of slice changes (often our own writes echoing back) costs one sync
 * (upstream endpointSliceChangeMinSyncDelay).
 */
const SLICE_CHANGE_MIN_SYNC_DELAY_MS = 1000;

type AddressType = 'IPv4' | 'IPv6';

export interface EndpointSliceControllerOptions {
  maxEndpointsPerSlice?: number;
}

/** The controller with non-default settings (tests use a small maxEndpointsPerSlice). */
export function newEndpointSliceController(opts: EndpointSliceControllerOptions = {}): ControllerFactory {
  return (ctx) =>
    endpointSliceControllerWith(ctx, opts.maxEndpointsPerSlice ?? DEFAULT_MAX_ENDPOINTS_PER_SLICE);
}

export const endpointSliceController: ControllerFactory = newEndpointSliceController();

const managedByUs = (slice: EndpointSlice) => slice.metadata.labels?.[MANAGED_BY_LABEL] === CONTROLLER_NAME;
const serviceKeyOf = (slice: EndpointSlice) =>
  `${slice.metadata.namespace}/${slice.metadata.labels?.[SERVICE_NAME_LABEL] ?? ''}`;

function endpointSliceControllerWith(ctx: ControllerContext, maxEndpointsPerSlice: number) {
  const services = ctx.informers.informer('services');
  const pods = ctx.informers.informer('pods');
  const slices = ctx.informers.informer('endpointSlices');
  const nodes = ctx.informers.informer('nodes');
  const recorder = ctx.recorder('endpoint-slice-controller');
  const triggerTimes = new TriggerTimeTracker();
  const tracker = new EndpointSliceTracker();

  const c = queueController(ctx, {
    name: 'endpointslice',
    workers: 5,
    async sync(key) {
      const { namespace = '', name } = splitKey(key);
      const svc = services.indexer.get(key);
      if (!svc) {
        // The slices carry the Service as controller owner: the garbage
        // collector deletes them.
        triggerTimes.deleteService(key);
        tracker.deleteService(key);
        return;
      }
      if (!managesEndpointsOf(svc)) return;

      const selector = selectorFromSet(svc.spec?.selector);
      const selected = pods.indexer
        .byIndex(NAMESPACE_INDEX, namespace)
        .filter((pod) => selector.matches(pod.metadata.labels ?? {}))
        .sort((a, b) => ((a.metadata.name ?? '') < (b.metadata.name ?? '') ? -1 : 1));
      const existing = slices.indexer
        .byIndex(NAMESPACE_INDEX, namespace)
        .filter(
          (s) =>
            managedByUs(s) &&
            s.metadata.labels?.[SERVICE_NAME_LABEL] === name &&
            !s.metadata.deletionTimestamp,
        );
      // Acting on a cache that has not yet seen our own last writes would
      // create duplicates or undo them: wait for it (upstream StaleSlices).
      if (tracker.stale(key, existing)) throw new Error('EndpointSlice informer cache is out of date');

      const triggerTime = triggerTimes.compute(key, svc, selected);
      try {
        await reconcile(svc, selected, existing, triggerTime);
      } catch (err) {
        recorder.event(
          svc,
          'Warning',
          'FailedToUpdateEndpointSlices',
          `Error updating Endpoint Slices for Service ${namespace}/${name}: ${String(err)}`,
        );
        throw err;
      }
    },
  });

  /** Brings the Service's slices to the desired state; throws (after writing) if some pods had to be skipped. */
  async function reconcile(svc: Service, selected: Pod[], existing: EndpointSlice[], triggerTime?: Date) {
    const families = addressTypesOf(svc);
    const plan: Plan = { create: [], update: [], delete: [] };
    const skipped: string[] = [];
    for (const slice of existing) {
      // A slice of an address type the Service no longer has goes away.
      if (!families.includes(slice.addressType as AddressType)) plan.delete.push(slice);
    }
    for (const addressType of families) {
      const ofType = existing.filter((s) => s.addressType === addressType);
      const p = planAddressType(svc, selected, ofType, addressType, skipped);
      plan.create.push(...p.create);
      plan.update.push(...p.update);
      plan.delete.push(...p.delete);
    }
    const dropped = await apply(svc, plan, triggerTime);
    if (dropped) return;
    // Pods on unknown nodes were left out: try again later (the node may be
    // on its way into the cache, or the pod GC will remove the pod).
    if (skipped.length) throw new Error(`skipping pods on unknown nodes: ${skipped.join(', ')}`);
  }

  /** upstream reconcileByAddressType: desired endpoints grouped by port set, then per group. */
  function planAddressType(
    svc: Service,
    selected: Pod[],
    existing: EndpointSlice[],
    addressType: AddressType,
    skipped: string[],
  ): Plan {
    const plan: Plan = { create: [], update: [], delete: [] };
    const existingByPorts = new Map<string, EndpointSlice[]>();
    for (const slice of existing) {
      // Same name, but left by an earlier Service of that name: replace it.
      if (!slice.metadata.ownerReferences?.some((r) => r.uid === svc.metadata.uid)) {
        plan.delete.push(slice);
        continue;
      }
      const k = portsKey(slice.ports ?? []);
      existingByPorts.set(k, [...(existingByPorts.get(k) ?? []), slice]);
    }

    const desiredByPorts = new Map<string, { ports: EndpointPort[]; endpoints: Map<string, Endpoint> }>();
    for (const pod of selected) {
      // Terminating pods stay, with conditions saying so.
      if (!shouldPodBeInEndpoints(pod, true)) continue;
      const nodeName = pod.spec?.nodeName ?? '';
      const node = nodes.indexer.get(nodeName);
      if (!node && !svc.spec?.publishNotReadyAddresses) {
        skipped.push(`${pod.metadata.name} (node "${nodeName}")`);
        continue;
      }
      const endpoint = endpointFor(pod, node, svc, addressType);
      if (!endpoint.addresses?.length) continue;
      const ports = endpointPortsFor(svc, pod);
      const k = portsKey(ports);
      let group = desiredByPorts.get(k);
      if (!group) {
        group = { ports, endpoints: new Map() };
        desiredByPorts.set(k, group);
      }
      group.endpoints.set(endpointKey(endpoint), endpoint);
    }

    for (const [k, group] of desiredByPorts) {
      const p = planPortGroup(svc, existingByPorts.get(k) ?? [], group.endpoints, group.ports, addressType);
      plan.create.push(...p.create);
      plan.update.push(...p.update);
      plan.delete.push(...p.delete);
    }
    for (const [k, stale] of existingByPorts) if (!desiredByPorts.has(k)) plan.delete.push(...stale);

    // A Service with no endpoints still has one (empty) slice, so readers can
    // tell "no endpoints" from "not yet processed". Keep the one there is.
    if (existing.length === plan.delete.length && plan.create.length === 0) {
      const placeholder = newSlice(svc, [], addressType);
      const only = plan.delete[0];
      if (plan.delete.length === 1 && only && isSamePlaceholder(only, placeholder)) plan.delete = [];
      else plan.create.push(placeholder);
    }
    return plan;
  }

  /**
   * upstream reconcileByPortMapping, for the slices sharing one port set:
   * keep endpoints where they are (updating those that changed), drop the
   * ones no longer wanted, then place new endpoints first into slices that
   * are being written anyway (fullest first), then into one unchanged slice
   * they fit in, then into new slices. This keeps writes, and so watch
   * traffic to every kube-proxy, small.
   */
  function planPortGroup(
    svc: Service,
    existing: EndpointSlice[],
    desired: Map<string, Endpoint>,
    ports: EndpointPort[],
    addressType: AddressType,
  ): Plan {
    const byName = new Map<string, EndpointSlice>();
    const unchanged = new Set<string>();
    const toUpdate = new Set<string>();
    const toDelete = new Set<string>();
    const labels = sliceLabels(svc);

    for (const slice of existing) {
      const name = slice.metadata.name ?? '';
      byName.set(name, slice);
      const kept: Endpoint[] = [];
      let endpointChanged = false;
      for (const ep of slice.endpoints ?? []) {
        const k = endpointKey(ep);
        const want = desired.get(k);
        if (!want) continue;
        kept.push(want);
        if (!jsonEqual(want, ep)) endpointChanged = true;
        desired.delete(k);
      }
      if (endpointChanged || kept.length !== (slice.endpoints?.length ?? 0)) {
        if (kept.length === 0) {
          toDelete.add(name);
          continue;
        }
        const copy = deepCopy(slice);
        copy.endpoints = kept;
        copy.metadata.labels = labels;
        byName.set(name, copy);
        toUpdate.add(name);
      } else if (!jsonEqual(slice.metadata.labels ?? {}, labels)) {
        const copy = deepCopy(slice);
        copy.metadata.labels = labels;
        byName.set(name, copy);
        toUpdate.add(name);
      } else {
        unchanged.add(name);
      }
    }

    const takeOne = (): Endpoint => {
      const [k, ep] = desired.entries().next().value as [string, Endpoint];
      desired.delete(k);
      return ep;
    };
    const fill = (slice: EndpointSlice) => {
      slice.endpoints ??= [];
      while (desired.size > 0 && slice.endpoints.length < maxEndpointsPerSlice)
        slice.endpoints.push(takeOne());
    };

    if (desired.size > 0 && toUpdate.size > 0) {
      const updating = [...toUpdate].map((n) => byName.get(n)!);
      updating.sort((a, b) => (b.endpoints?.length ?? 0) - (a.endpoints?.length ?? 0));
      for (const slice of updating) fill(slice);
    }

    const create: EndpointSlice[] = [];
    while (desired.size > 0) {
      let target: EndpointSlice | undefined;
      if (desired.size < maxEndpointsPerSlice && unchanged.size > 0) {
        const candidate = sliceToFill(
          [...unchanged].map((n) => byName.get(n)!),
          desired.size,
          maxEndpointsPerSlice,
        );
        if (candidate) {
          target = deepCopy(candidate);
          byName.set(target.metadata.name ?? '', target);
        }
      }
      target ??= newSlice(svc, ports, addressType);
      fill(target);
      if (target.metadata.name) {
        toUpdate.add(target.metadata.name);
        unchanged.delete(target.metadata.name);
      } else {
        create.push(target);
      }
    }
    return {
      create,
      update: [...toUpdate].map((n) => byName.get(n)!),
      delete: [...toDelete].map((n) => byName.get(n)!),
    };
  }

  function newSlice(svc: Service, ports: EndpointPort[], addressType: AddressType): EndpointSlice {
    const slice: EndpointSlice = {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        generateName: `${svc.metadata.name}-`,
        namespace: svc.metadata.namespace ?? '',
        labels: sliceLabels(svc),
        ownerReferences: [ownerRef(svc, 'v1', 'Service')],
      },
      addressType,
      endpoints: [],
    };
    if (ports.length) slice.ports = ports;
    return slice;
  }

  /**
   * Writes the plan (upstream finalize). A slice about to be deleted is
   * reused for one about to be created, turning two writes into one update.
   * Returns true when the namespace is terminating (nothing more to do).
   */
  async function apply(svc: Service, plan: Plan, triggerTime?: Date): Promise<boolean> {
    const namespace = svc.metadata.namespace ?? '';
    for (let i = 0; i < plan.delete.length && plan.create.length > 0; ) {
      const old = plan.delete[i]!;
      const fresh = plan.create[plan.create.length - 1]!;
      if (
        old.addressType === fresh.addressType &&
        old.metadata.ownerReferences?.some((r) => r.uid === svc.metadata.uid)
      ) {
        fresh.metadata.name = old.metadata.name ?? '';
        delete fresh.metadata.generateName;
        fresh.metadata.resourceVersion = old.metadata.resourceVersion ?? '';
        plan.create.pop();
        plan.update.push(fresh);
        plan.delete.splice(i, 1);
      } else {
        i++;
      }
    }

    // No new slices for a Service being deleted: the garbage collector would
    // race to remove them.
    if (!svc.metadata.deletionTimestamp) {
      for (const slice of plan.create) {
        setTriggerTime(slice, triggerTime);
        try {
          tracker.update(svc, await ctx.clients.endpointSlices.create(namespace, slice));
        } catch (err) {
          if (namespaceTerminating(err)) return true;
          throw err;
        }
      }
    }
    for (const slice of plan.update) {
      setTriggerTime(slice, triggerTime);
      tracker.update(svc, await ctx.clients.endpointSlices.update(slice));
    }
    for (const slice of plan.delete) {
      try {
        await ctx.clients.endpointSlices.delete(namespace, slice.metadata.name ?? '');
      } catch (err) {
        if (!isApiError(err, 'NotFound')) throw err;
      }
      tracker.expectDeletion(svc, slice);
    }
    return false;
  }

  const enqueueAll = (keys: Iterable<string>) => {
    for (const k of keys) c.queue.add(k);
  };
  const enqueueForSlice = (slice: EndpointSlice) => {
    if (!slice.metadata.labels?.[SERVICE_NAME_LABEL]) return;
    c.queue.addAfter(serviceKeyOf(slice), SLICE_CHANGE_MIN_SYNC_DELAY_MS);
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
  // Slice events matter only when someone else changed a slice we manage:
  // our own writes are already known to the tracker.
  slices.on({
    add: (slice) => {
      if (managedByUs(slice) && tracker.shouldSync(slice)) enqueueForSlice(slice);
    },
    update: (oldSlice, slice) => {
      // Labels do not bump the generation: a moved service-name or
      // managed-by label concerns both the old and the new Service.
      if (
        oldSlice.metadata.labels?.[SERVICE_NAME_LABEL] !== slice.metadata.labels?.[SERVICE_NAME_LABEL] ||
        managedByUs(oldSlice) !== managedByUs(slice)
      ) {
        enqueueForSlice(oldSlice);
        enqueueForSlice(slice);
      } else if (managedByUs(slice) && tracker.shouldSync(slice)) {
        enqueueForSlice(slice);
      }
    },
    delete: (slice) => {
      // A deletion we did not ask for is repaired at the next sync.
      if (managedByUs(slice) && tracker.has(slice) && !tracker.handleDeletion(slice)) enqueueForSlice(slice);
    },
  });
  return c;
}

interface Plan {
  create: EndpointSlice[];
  update: EndpointSlice[];
  delete: EndpointSlice[];
}

/** The address types a Service's slices have: its IP families (headless Services without families get both). */
function addressTypesOf(svc: Service): AddressType[] {
  const families = (svc.spec?.ipFamilies ?? []).filter((f): f is AddressType => f === 'IPv4' || f === 'IPv6');
  if (families.length) return families;
  if (isServiceIPSet(svc)) return [isIPv6(svc.spec?.clusterIP ?? '') ? 'IPv6' : 'IPv4'];
  return ['IPv4', 'IPv6'];
}

/** Service labels (minus the ones the controller reserves) plus the controller's own (setEndpointSliceLabels). */
function sliceLabels(svc: Service): Record<string, string> {
  const labels: Record<string, string> = { ...svc.metadata.labels };
  delete labels[SERVICE_NAME_LABEL];
  delete labels[MANAGED_BY_LABEL];
  delete labels[HEADLESS_SERVICE_LABEL];
  if (!isServiceIPSet(svc)) labels[HEADLESS_SERVICE_LABEL] = '';
  labels[SERVICE_NAME_LABEL] = svc.metadata.name ?? '';
  labels[MANAGED_BY_LABEL] = CONTROLLER_NAME;
  return labels;
}

/** upstream podToEndpoint. */
function endpointFor(pod: Pod, node: Node | undefined, svc: Service, addressType: AddressType): Endpoint {
  const serving = isPodReady(pod);
  const terminating = !!pod.metadata.deletionTimestamp;
  // "ready" never says true for a terminating pod, unless the Service asks
  // for every address to be published: clients that only read "ready" keep
  // their old meaning.
  const ready = svc.spec?.publishNotReadyAddresses === true || (serving && !terminating);
  const endpoint: Endpoint = {
    addresses: podIPs(pod).filter((ip) => isIPv6(ip) === (addressType === 'IPv6')),
    conditions: { ready, serving, terminating },
    targetRef: {
      kind: 'Pod',
      namespace: pod.metadata.namespace ?? '',
      name: pod.metadata.name ?? '',
      uid: pod.metadata.uid ?? '',
    },
  };
  if (pod.spec?.nodeName) endpoint.nodeName = pod.spec.nodeName;
  const zone = node?.metadata.labels?.[ZONE_LABEL];
  if (zone) endpoint.zone = zone;
  if (shouldSetHostname(pod, svc)) endpoint.hostname = pod.spec?.hostname ?? '';
  return endpoint;
}

/** upstream getEndpointPorts: the Service's ports as this pod serves them. */
function endpointPortsFor(svc: Service, pod: Pod): EndpointPort[] {
  const servicePorts = svc.spec?.ports ?? [];
  if (servicePorts.length === 0 && isHeadless(svc)) return [];
  const out: EndpointPort[] = [];
  for (const sp of servicePorts) {
    const port = findPort(pod, sp);
    if (port === undefined) continue;
    const ep: EndpointPort = { name: sp.name ?? '', port, protocol: sp.protocol ?? 'TCP' };
    if (sp.appProtocol) ep.appProtocol = sp.appProtocol;
    out.push(ep);
  }
  return out;
}

const portsKey = (ports: EndpointPort[]) =>
  JSON.stringify(ports.map((p) => [p.name ?? '', p.port ?? 0, p.protocol ?? '', p.appProtocol ?? '']).sort());

/** An endpoint's identity across syncs (upstream hashEndpoint): addresses, hostname and target pod. */
const endpointKey = (ep: Endpoint) =>
  JSON.stringify([
    [...(ep.addresses ?? [])].sort(),
    ep.hostname ?? '',
    ep.targetRef?.namespace ?? '',
    ep.targetRef?.name ?? '',
  ]);

/** The unchanged slice the remaining endpoints fill most completely (upstream getSliceToFill). */
function sliceToFill(candidates: EndpointSlice[], count: number, max: number): EndpointSlice | undefined {
  let best: EndpointSlice | undefined;
  let bestRoomLeft = max;
  for (const slice of candidates) {
    const roomLeft = max - (count + (slice.endpoints?.length ?? 0));
    if (roomLeft >= 0 && roomLeft < bestRoomLeft) {
      best = slice;
      bestRoomLeft = roomLeft;
      if (roomLeft === 0) break;
    }
  }
  return best;
}

/** Whether an existing slice already is the empty placeholder (ignoring name and other metadata). */
function isSamePlaceholder(slice: EndpointSlice, placeholder: EndpointSlice): boolean {
  return (
    slice.metadata.namespace === placeholder.metadata.namespace &&
    slice.addressType === placeholder.addressType &&
    (slice.ports ?? []).length === 0 &&
    (slice.endpoints ?? []).length === 0 &&
    jsonEqual(slice.metadata.labels ?? {}, placeholder.metadata.labels ?? {})
  );
}

function setTriggerTime(slice: EndpointSlice, triggerTime: Date | undefined) {
  const annotations = { ...slice.metadata.annotations };
  if (triggerTime) annotations[LAST_CHANGE_TRIGGER_TIME] = formatRFC3339Nano(triggerTime);
  else delete annotations[LAST_CHANGE_TRIGGER_TIME];
  slice.metadata.annotations = annotations;
}

/** A generation the tracker uses to mean "we deleted this slice". */
const DELETION_EXPECTED = -1;

/**
 * What this controller last wrote, per Service: each slice's uid and
 * generation (upstream EndpointSliceTracker). It tells our own writes echoing
 * back through the informer (no sync needed) from changes by others, and
 * detects a cache that has not caught up with our writes yet.
 */
class EndpointSliceTracker {
  readonly #byService = new Map<string, Map<string, number>>();

  #of(key: string): Map<string, number> {
    let m = this.#byService.get(key);
    if (!m) {
      m = new Map();
      this.#byService.set(key, m);
    }
    return m;
  }

  update(svc: Service, slice: EndpointSlice): void {
    this.#of(keyOf(svc)).set(slice.metadata.uid ?? '', slice.metadata.generation ?? 0);
  }

  expectDeletion(svc: Service, slice: EndpointSlice): void {
    this.#of(keyOf(svc)).set(slice.metadata.uid ?? '', DELETION_EXPECTED);
  }

  has(slice: EndpointSlice): boolean {
    return this.#byService.get(serviceKeyOf(slice))?.has(slice.metadata.uid ?? '') ?? false;
  }

  /** True unless this is our own write (same or older generation than we know). */
  shouldSync(slice: EndpointSlice): boolean {
    const known = this.#byService.get(serviceKeyOf(slice))?.get(slice.metadata.uid ?? '');
    return known === undefined || (slice.metadata.generation ?? 0) > known;
  }

  /** Forgets a deleted slice; true if we deleted it ourselves. */
  handleDeletion(slice: EndpointSlice): boolean {
    const m = this.#byService.get(serviceKeyOf(slice));
    const known = m?.get(slice.metadata.uid ?? '');
    m?.delete(slice.metadata.uid ?? '');
    return known === DELETION_EXPECTED;
  }

  /**
   * The cache is stale if it shows an older generation than we wrote, still
   * shows a slice we deleted, or lacks one we created.
   */
  stale(key: string, cached: EndpointSlice[]): boolean {
    const known = this.#byService.get(key);
    if (!known) return false;
    const seen = new Set<string>();
    for (const slice of cached) {
      const uid = slice.metadata.uid ?? '';
      seen.add(uid);
      const g = known.get(uid);
      if (g !== undefined && (g === DELETION_EXPECTED || g > (slice.metadata.generation ?? 0))) return true;
    }
    for (const [uid, g] of known) if (g !== DELETION_EXPECTED && !seen.has(uid)) return true;
    return false;
  }

  deleteService(key: string): void {
    this.#byService.delete(key);
  }
}
