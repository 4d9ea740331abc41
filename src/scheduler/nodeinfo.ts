// NodeInfo: a node plus what the scheduler knows is on it (bound and assumed
// pods), with the sums plugins need kept up to date as pods come and go:
// requested resources, host ports in use, pods with (anti-)affinity.
// Quantities are parsed once, when a pod enters the cache.

import { milliValue, parseQuantity, value } from '../api/quantity.ts';
import type { Container, Node, Pod, ResourceRequirements } from '../api/types/core-v1.ts';
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

function quantity(q: string | number | undefined, milli: boolean): number {
  if (q === undefined) return 0;
  try {
    const parsed = parseQuantity(String(q));
    return Number(milli ? milliValue(parsed) : value(parsed));
  } catch {
    return 0;
  }
}

/** Parses a resource list (requests, allocatable) into Resources; `pods` is returned apart. */
export function parseResourceList(list: Record<string, string> | undefined): {
  res: Resources;
  pods: number;
} {
  const res = emptyResources();
  let pods = 0;
  for (const [name, q] of Object.entries(list ?? {})) {
    if (name === 'cpu') res.milliCPU = quantity(q, true);
    else if (name === 'memory') res.memory = quantity(q, false);
    else if (name === 'ephemeral-storage') res.ephemeralStorage = quantity(q, false);
    else if (name === 'pods') pods = quantity(q, false);
    else res.scalar.set(name, quantity(q, false));
  }
  return { res, pods };
}

function add(into: Resources, r: Resources, sign = 1): void {
  into.milliCPU += sign * r.milliCPU;
  into.memory += sign * r.memory;
  into.ephemeralStorage += sign * r.ephemeralStorage;
  for (const [k, v] of r.scalar) into.scalar.set(k, (into.scalar.get(k) ?? 0) + sign * v);
}

function max(into: Resources, r: Resources): void {
  into.milliCPU = Math.max(into.milliCPU, r.milliCPU);
  into.memory = Math.max(into.memory, r.memory);
  into.ephemeralStorage = Math.max(into.ephemeralStorage, r.ephemeralStorage);
  for (const [k, v] of r.scalar) into.scalar.set(k, Math.max(into.scalar.get(k) ?? 0, v));
}

function containerRequests(c: Container, nonZero: boolean): Resources {
  const r = parseResourceList((c.resources as ResourceRequirements | undefined)?.requests).res;
  if (nonZero) {
    const req = c.resources?.requests ?? {};
    if (req.cpu === undefined) r.milliCPU = DEFAULT_MILLI_CPU_REQUEST;
    if (req.memory === undefined) r.memory = DEFAULT_MEMORY_REQUEST;
  }
  return r;
}

/**
 * A pod's effective request, as upstream's resource helpers compute it: the
 * sum of its app containers and running sidecars (restartable init
 * containers), or the largest init container plus the sidecars started before
 * it, whichever is larger, plus the pod overhead.
 */
export function podRequests(pod: Pod, nonZero = false): Resources {
  const spec = pod.spec ?? {};
  const total = emptyResources();
  for (const c of spec.containers ?? []) add(total, containerRequests(c, nonZero));
  const sidecars = emptyResources();
  const initMax = emptyResources();
  for (const c of spec.initContainers ?? []) {
    const r = containerRequests(c, nonZero);
    if (c.restartPolicy === 'Always') {
      add(total, r);
      add(sidecars, r);
      max(initMax, sidecars);
    } else {
      const during = emptyResources();
      add(during, r);
      add(during, sidecars);
      max(initMax, during);
    }
  }
  max(total, initMax);
  if (spec.overhead) add(total, parseResourceList(spec.overhead).res);
  return total;
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
