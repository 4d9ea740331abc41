// The scheduler's cache: every node with the pods bound or assumed onto it.
//
// A pod is *assumed* onto its node as soon as the scheduling cycle picks the
// node, before the binding is written, so the next cycle already counts its
// resources and ports. When the bound pod arrives from the watch the
// assumption is confirmed; if the bind fails it is forgotten; if the bound pod
// never shows up, the assumption expires (upstream's assumed-pod TTL).
//
// Upstream copies changed NodeInfos into a fresh snapshot each cycle because
// its cache is written from other goroutines mid-cycle. Here a scheduling
// cycle (filter, score, assume) runs synchronously, so nothing can change the
// cache under it: the cache itself is the cycle's snapshot.

import type { Node, Pod } from '../api/types/core-v1.ts';
import type { PodInfo, Snapshot } from './framework.ts';
import { type ImageSpread, NodeInfo, newPodInfo, normalizedImageName, podKey } from './nodeinfo.ts';

/** How long an assumed pod whose binding finished may wait for its watch event. */
export const ASSUMED_POD_TTL_MS = 30_000;

interface Assumed {
  nodeName: string;
  /** Set once binding finished: the assumption expires at this time. */
  deadline?: number;
}

export class SchedulerCache implements Snapshot {
  readonly #nodes = new Map<string, NodeInfo>();
  /** Nodes in a stable order, for round-robin sampling (rebuilt lazily). */
  #list: NodeInfo[] | undefined;
  /**
   * The nodes InterPodAffinity scans every cycle, kept (like upstream's
   * snapshot lists havePodsWithAffinityNodeInfoList) rather than filtered
   * out of every node twice a cycle: at 5,000 nodes that filtering was a
   * tenth of the scheduler's time. Rebuilt lazily after a pod with such
   * terms comes or goes, or the node list changes.
   */
  #withAffinity: NodeInfo[] | undefined;
  #withRequiredAntiAffinity: NodeInfo[] | undefined;
  /** Where each known pod is: bound (from the API) or assumed. */
  readonly #podNode = new Map<string, string>();
  readonly #assumed = new Map<string, Assumed>();
  /** On how many (real) nodes each image is, by normalized name, for ImageLocality (upstream's imageStates). */
  readonly #imageSpread = new Map<string, ImageSpread>();
  readonly #now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  // --- Snapshot ---------------------------------------------------------------

  nodes(): NodeInfo[] {
    this.#list ??= [...this.#nodes.values()].filter((n) => !n.ghost);
    return this.#list;
  }

  get(name: string): NodeInfo | undefined {
    return this.#nodes.get(name);
  }

  havePodsWithAffinity(): NodeInfo[] {
    this.#withAffinity ??= this.nodes().filter((n) => n.podsWithAffinity.size > 0);
    return this.#withAffinity;
  }

  havePodsWithRequiredAntiAffinity(): NodeInfo[] {
    this.#withRequiredAntiAffinity ??= this.nodes().filter((n) => n.podsWithRequiredAntiAffinity.size > 0);
    return this.#withRequiredAntiAffinity;
  }

  #nodeListChanged(): void {
    this.#list = undefined;
    this.#withAffinity = undefined;
    this.#withRequiredAntiAffinity = undefined;
  }

  /** A pod entered or left a node: forget the affinity lists it may change. */
  #podChanged(info: PodInfo | undefined): void {
    if (info?.hasAffinity) this.#withAffinity = undefined;
    if (info?.hasRequiredAntiAffinity) this.#withRequiredAntiAffinity = undefined;
  }

  // --- nodes ------------------------------------------------------------------

  addOrUpdateNode(node: Node): void {
    const name = node.metadata.name ?? '';
    let info = this.#nodes.get(name);
    if (info) {
      info.setNode(node);
      if (info.ghost) {
        info.ghost = false;
        this.#nodeListChanged();
      }
    } else {
      info = new NodeInfo(node);
      this.#nodes.set(name, info);
      this.#nodeListChanged();
    }
    this.#trackImages(info, node);
  }

  /** Re-counts the images `info` holds: those of `node`, or none once the node is gone. */
  #trackImages(info: NodeInfo, node: Node | undefined): void {
    for (const name of info.images.keys()) {
      const spread = this.#imageSpread.get(name);
      if (spread && --spread.numNodes === 0) this.#imageSpread.delete(name);
    }
    const images: NodeInfo['images'] = new Map();
    for (const image of node?.status?.images ?? []) {
      for (const raw of image.names ?? []) {
        const name = normalizedImageName(raw);
        if (images.has(name)) continue;
        let spread = this.#imageSpread.get(name);
        if (!spread) {
          spread = { numNodes: 0 };
          this.#imageSpread.set(name, spread);
        }
        spread.numNodes++;
        images.set(name, { sizeBytes: image.sizeBytes ?? 0, spread });
      }
    }
    info.images = images;
  }

  removeNode(name: string): void {
    // Pods on a deleted node stay known until they are deleted (the pod GC
    // does that); the node is no longer a candidate.
    const info = this.#nodes.get(name);
    if (!info) return;
    this.#trackImages(info, undefined);
    if (info.pods.size > 0) info.ghost = true;
    else this.#nodes.delete(name);
    this.#nodeListChanged();
  }

  get nodeCount(): number {
    return this.nodes().length;
  }

  // --- pods -------------------------------------------------------------------

  /** The scheduling cycle chose `nodeName`: count the pod there from now on. */
  assume(pod: Pod, nodeName: string): PodInfo {
    const key = podKey(pod);
    const bound = { ...pod, spec: { ...pod.spec, nodeName } } as Pod;
    const info = newPodInfo(bound);
    this.#place(key, nodeName, info);
    this.#assumed.set(key, { nodeName });
    return info;
  }

  /** The binding was written: the assumption now expires unless the watch confirms it. */
  finishBinding(pod: Pod): void {
    const a = this.#assumed.get(podKey(pod));
    if (a) a.deadline = this.#now() + ASSUMED_POD_TTL_MS;
  }

  /** The binding failed: undo the assumption. */
  forget(pod: Pod): void {
    const key = podKey(pod);
    const a = this.#assumed.get(key);
    if (!a) return;
    this.#assumed.delete(key);
    this.#unplace(key);
  }

  isAssumed(pod: Pod): boolean {
    return this.#assumed.has(podKey(pod));
  }

  /** A pod with spec.nodeName arrived or changed (from the watch). Confirms an assumption. */
  addOrUpdatePod(pod: Pod): void {
    const nodeName = pod.spec?.nodeName;
    const key = podKey(pod);
    if (!nodeName) return;
    this.#assumed.delete(key);
    // Terminated pods hold no resources.
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') {
      this.#unplace(key);
      return;
    }
    this.#place(key, nodeName, newPodInfo(pod));
  }

  removePod(pod: Pod): void {
    const key = podKey(pod);
    this.#assumed.delete(key);
    this.#unplace(key);
  }

  /** Drops assumptions whose binding finished long ago without a watch event. Returns them. */
  cleanupExpiredAssumed(): string[] {
    const now = this.#now();
    const expired: string[] = [];
    for (const [key, a] of this.#assumed) {
      if (a.deadline !== undefined && a.deadline <= now) {
        this.#assumed.delete(key);
        this.#unplace(key);
        expired.push(key);
      }
    }
    return expired;
  }

  #place(key: string, nodeName: string, info: PodInfo): void {
    const prev = this.#podNode.get(key);
    // The pod's earlier version, wherever it was, leaves; the new one arrives.
    if (prev !== undefined) this.#podChanged(this.#nodes.get(prev)?.pods.get(key));
    this.#podChanged(info);
    if (prev !== undefined && prev !== nodeName) this.#nodes.get(prev)?.removePod(key);
    this.#podNode.set(key, nodeName);
    // A pod bound to a node the cache does not know (yet): remember where it
    // is; it is counted once the node appears.
    let node = this.#nodes.get(nodeName);
    if (!node) {
      node = new NodeInfo({ metadata: { name: nodeName } });
      node.ghost = true;
      this.#nodes.set(nodeName, node);
    }
    node.addPod(info);
  }

  #unplace(key: string): void {
    const nodeName = this.#podNode.get(key);
    if (nodeName === undefined) return;
    this.#podNode.delete(key);
    const node = this.#nodes.get(nodeName);
    this.#podChanged(node?.pods.get(key));
    node?.removePod(key);
    if (node?.ghost && node.pods.size === 0) this.#nodes.delete(nodeName);
  }
}
