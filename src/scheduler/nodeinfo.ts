// NodeInfo: a node plus what the scheduler knows is on it (bound and assumed
// pods), with the sums plugins need kept up to date as pods come and go:
// requested resources, host ports in use, pods with (anti-)affinity.
// Quantities are parsed once, when a pod enters the cache.

import { milliValue, newMilliQuantity, newQuantity, value } from '../api/quantity.ts';
import { podResources, type ResourceList, toList } from '../api/resource-list.ts';
import type { Node, Pod } from '../api/types/core-v1.ts';
import type { PodInfo, Resources } from './framework.ts';

/** Upstream's defaults for scoring pods that request nothing (schedutil.DefaultMilliCPURequest, DefaultMemoryRequest). */
export const DEFAULT_MILLI_CPU_REQUEST = 100;
export const DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024;

export const emptyResources = (): Resources => ({
  milliCPU: 0,
  memory: 0,
  ephemeralStorage: 0,
  scalar: new Map(),
});

/** Parses a resource list (requests, allocatable) into Resources; `pods` is returned apart. */
export function parseResourceList(list: Record<string, string> | undefined): {
  res: Resources;
  pods: number;
} {
  return fromResourceList(toList(list));
}

function fromResourceList(list: ResourceList): { res: Resources; pods: number } {
  const res = emptyResources();
  let pods = 0;
  for (const [name, q] of list) {
    if (name === 'cpu') res.milliCPU = Number(milliValue(q));
    else if (name === 'memory') res.memory = Number(value(q));
    else if (name === 'ephemeral-storage') res.ephemeralStorage = Number(value(q));
    else if (name === 'pods') pods = Number(value(q));
    else res.scalar.set(name, Number(value(q)));
  }
  return { res, pods };
}

function add(into: Resources, r: Resources, sign = 1): void {
  into.milliCPU += sign * r.milliCPU;
  into.memory += sign * r.memory;
  into.ephemeralStorage += sign * r.ephemeralStorage;
  for (const [k, v] of r.scalar) into.scalar.set(k, (into.scalar.get(k) ?? 0) + sign * v);
}

/** What a container asking for no CPU or memory is scored as (NonMissingContainerRequests). */
const NON_ZERO_REQUESTS: ResourceList = new Map([
  ['cpu', newMilliQuantity(DEFAULT_MILLI_CPU_REQUEST, 'DecimalSI')],
  ['memory', newQuantity(DEFAULT_MEMORY_REQUEST, 'BinarySI')],
]);

/**
 * A pod's effective request (src/api/resource-list.ts podResources, as
 * upstream's resourcehelper.PodRequests), in the scheduler's units; with
 * `nonZero`, containers that ask for no CPU or memory count as the defaults.
 */
export function podRequests(pod: Pod, nonZero = false): Resources {
  return fromResourceList(
    podResources(pod, 'requests', nonZero ? { nonMissingContainerRequests: NON_ZERO_REQUESTS } : {}),
  ).res;
}

export function newPodInfo(pod: Pod): PodInfo {
  const affinity = pod.spec?.affinity;
  return {
    pod,
    requests: podRequests(pod),
    nonZeroRequests: podRequests(pod, true),
    hasAffinity: !!(affinity?.podAffinity || affinity?.podAntiAffinity),
    hasRequiredAntiAffinity:
      !!affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.length,
  };
}

export const podKey = (pod: Pod): string => `${pod.metadata.namespace}/${pod.metadata.name}`;

/** A host port in use: protocol, host IP (0.0.0.0 = every address) and port. */
export interface HostPort {
  ip: string;
  protocol: string;
  port: number;
}

export function hostPortsOf(pod: Pod): HostPort[] {
  const out: HostPort[] = [];
  const containers = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  for (const c of containers) {
    for (const p of c.ports ?? []) {
      if (!p.hostPort || p.hostPort <= 0) continue;
      out.push({ ip: p.hostIP || '0.0.0.0', protocol: p.protocol || 'TCP', port: p.hostPort });
    }
  }
  return out;
}

/** Image references as the runtime reports them: busybox → docker.io/library/busybox:latest. */
export function normalizedImageName(image: string): string {
  let name = image;
  const lastSlash = name.lastIndexOf('/');
  if (!name.slice(lastSlash + 1).includes(':') && !name.includes('@')) name += ':latest';
  const first = name.split('/')[0]!;
  const hasRegistry =
    name.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasRegistry) name = name.includes('/') ? `docker.io/${name}` : `docker.io/library/${name}`;
  return name;
}

/** On how many nodes an image is: one object per image, shared by the NodeInfos holding it (upstream's ImageStateSummary). */
export interface ImageSpread {
  numNodes: number;
}

/** What label-counting plugins read of each pod on a node, in one shape. */
export interface PodLabelsSummary {
  namespace: string;
  labels: Record<string, string>;
  terminating: boolean;
}

export class NodeInfo {
  node: Node;
  readonly pods = new Map<string, PodInfo>();
  readonly requested = emptyResources();
  readonly nonZeroRequested = emptyResources();
  allocatable: Resources;
  allowedPodNumber: number;
  /** Host ports in use, keyed `${protocol}/${port}` → the host IPs using it. */
  readonly usedPorts = new Map<string, Set<string>>();
  readonly podsWithAffinity = new Set<string>();
  readonly podsWithRequiredAntiAffinity = new Set<string>();
  /** Bumped on every change, so snapshots copy only what changed. */
  generation = 0;
  /** Known only through pods bound to it: the Node object is absent (not yet seen, or deleted). */
  ghost = false;
  #podLabels: PodLabelsSummary[] | undefined;
  /** The node's images by normalized name; kept by the SchedulerCache, which counts their spread. */
  images = new Map<string, { sizeBytes: number; spread: ImageSpread }>();

  constructor(node: Node) {
    this.node = node;
    const { res, pods } = parseResourceList(node.status?.allocatable);
    this.allocatable = res;
    this.allowedPodNumber = pods;
  }

  get name(): string {
    return this.node.metadata.name ?? '';
  }

  /**
   * The pods' namespaces and labels, rebuilt only after a pod comes or goes.
   * PodTopologySpread counts matching pods on every node for every pod it
   * schedules; reading them off the Pod objects themselves (each parsed JSON
   * with its own shape) made that loop most of its time at 5,000 nodes.
   */
  podLabels(): PodLabelsSummary[] {
    this.#podLabels ??= [...this.pods.values()].map(({ pod }) => ({
      namespace: pod.metadata.namespace ?? '',
      labels: pod.metadata.labels ?? {},
      terminating: !!pod.metadata.deletionTimestamp,
    }));
    return this.#podLabels;
  }

  setNode(node: Node): void {
    this.node = node;
    const { res, pods } = parseResourceList(node.status?.allocatable);
    this.allocatable = res;
    this.allowedPodNumber = pods;
    this.generation++;
  }

  addPod(info: PodInfo): void {
    const key = podKey(info.pod);
    if (this.pods.has(key)) this.removePod(key);
    this.pods.set(key, info);
    add(this.requested, info.requests);
    add(this.nonZeroRequested, info.nonZeroRequests);
    for (const hp of hostPortsOf(info.pod)) {
      const k = `${hp.protocol}/${hp.port}`;
      const ips = this.usedPorts.get(k) ?? new Set<string>();
      ips.add(hp.ip);
      this.usedPorts.set(k, ips);
    }
    if (info.hasAffinity) this.podsWithAffinity.add(key);
    if (info.hasRequiredAntiAffinity) this.podsWithRequiredAntiAffinity.add(key);
    this.#podLabels = undefined;
    this.generation++;
  }

  removePod(key: string): boolean {
    const info = this.pods.get(key);
    if (!info) return false;
    this.pods.delete(key);
    add(this.requested, info.requests, -1);
    add(this.nonZeroRequested, info.nonZeroRequests, -1);
    for (const hp of hostPortsOf(info.pod)) {
      const k = `${hp.protocol}/${hp.port}`;
      const ips = this.usedPorts.get(k);
      ips?.delete(hp.ip);
      if (ips?.size === 0) this.usedPorts.delete(k);
    }
    this.podsWithAffinity.delete(key);
    this.podsWithRequiredAntiAffinity.delete(key);
    this.#podLabels = undefined;
    this.generation++;
    return true;
  }

  /** Whether a host port is free, with upstream's 0.0.0.0 rule: it conflicts with every address. */
  portFree(hp: HostPort): boolean {
    const ips = this.usedPorts.get(`${hp.protocol}/${hp.port}`);
    if (!ips || ips.size === 0) return true;
    if (hp.ip === '0.0.0.0' || ips.has('0.0.0.0')) return false;
    return !ips.has(hp.ip);
  }

  /** A deep-enough copy for a snapshot or a preemption what-if. */
  clone(): NodeInfo {
    const c = new NodeInfo(this.node);
    c.images = this.images;
    for (const info of this.pods.values()) c.addPod(info);
    c.generation = this.generation;
    return c;
  }
}
