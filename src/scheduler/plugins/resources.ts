// NodeResourcesFit (filter + LeastAllocated score), NodeResourcesBalancedAllocation,
// NodePorts and ImageLocality (pkg/scheduler/framework/plugins/noderesources,
// nodeports, imagelocality).

import type { Pod } from '../../api/types/core-v1.ts';
import {
  type ClusterEventWithHint,
  type CycleState,
  type EnqueueExtensions,
  type FilterPlugin,
  MAX_NODE_SCORE,
  type PreFilterPlugin,
  type PreScorePlugin,
  type Resources,
  type ScorePlugin,
  SKIP,
  type Snapshot,
  type Status,
  SUCCESS,
  unschedulable,
} from '../framework.ts';
import { type HostPort, hostPortsOf, type NodeInfo, newPodInfo, normalizedImageName } from '../nodeinfo.ts';

const FIT_STATE = 'PreFilterNodeResourcesFit';

interface FitState {
  requests: Resources;
  nonZero: Resources;
}

function fitState(state: CycleState, pod: Pod): FitState {
  let s = state.read<FitState>(FIT_STATE);
  if (!s) {
    const info = newPodInfo(pod);
    s = { requests: info.requests, nonZero: info.nonZeroRequests };
    state.write(FIT_STATE, s);
  }
  return s;
}

/**
 * Whether `req` fits on `node`, without building reasons: the filter runs
 * for hundreds of nodes per pod and almost all of them fit, so the common
 * case allocates nothing (allocating reasons for every node was the
 * scheduler's single hottest function at 5,000 nodes).
 */
function fits(req: Resources, node: NodeInfo): boolean {
  if (node.pods.size + 1 > node.allowedPodNumber) return false;
  const free = node.allocatable;
  const used = node.requested;
  if (req.milliCPU > 0 && req.milliCPU > free.milliCPU - used.milliCPU) return false;
  if (req.memory > 0 && req.memory > free.memory - used.memory) return false;
  if (req.ephemeralStorage > 0 && req.ephemeralStorage > free.ephemeralStorage - used.ephemeralStorage)
    return false;
  if (req.scalar.size === 0) return true;
  for (const [name, q] of req.scalar) {
    if (q > 0 && q > (free.scalar.get(name) ?? 0) - (used.scalar.get(name) ?? 0)) return false;
  }
  return true;
}

/** Everything about `node` that would not fit `req`, in upstream's words. */
export function insufficientResources(req: Resources, node: NodeInfo): string[] {
  if (fits(req, node)) return [];
  const reasons: string[] = [];
  if (node.pods.size + 1 > node.allowedPodNumber) reasons.push('Too many pods');
  if (req.milliCPU > 0 && req.milliCPU > node.allocatable.milliCPU - node.requested.milliCPU) {
    reasons.push('Insufficient cpu');
  }
  if (req.memory > 0 && req.memory > node.allocatable.memory - node.requested.memory) {
    reasons.push('Insufficient memory');
  }
  if (
    req.ephemeralStorage > 0 &&
    req.ephemeralStorage > node.allocatable.ephemeralStorage - node.requested.ephemeralStorage
  ) {
    reasons.push('Insufficient ephemeral-storage');
  }
  for (const [name, q] of req.scalar) {
    if (q > 0 && q > (node.allocatable.scalar.get(name) ?? 0) - (node.requested.scalar.get(name) ?? 0)) {
      reasons.push(`Insufficient ${name}`);
    }
  }
  return reasons;
}

const resourceEvents = (): ClusterEventWithHint[] => [
  { event: { resource: 'AssignedPod', actions: ['Delete'] } },
  {
    event: {
      resource: 'Node',
      actions: ['Add', 'UpdateNodeAllocatable', 'UpdateNodeTaint', 'UpdateNodeLabel'],
    },
  },
];

/** The fraction of cpu and memory requested on `node` if `pod` joined it, by LeastAllocated's rule. */
function leastAllocated(requested: number, allocatable: number): number {
  if (allocatable === 0 || requested > allocatable) return 0;
  return ((allocatable - requested) * MAX_NODE_SCORE) / allocatable;
}

export const nodeResourcesFit: PreFilterPlugin & FilterPlugin & ScorePlugin & EnqueueExtensions = {
  name: 'NodeResourcesFit',
  events: resourceEvents,
  preFilter(state, pod) {
    fitState(state, pod);
    return { status: SUCCESS };
  },
  filter(state, pod, node) {
    const { requests } = fitState(state, pod);
    if (fits(requests, node)) return SUCCESS;
    return unschedulable(...insufficientResources(requests, node));
  },
  // LeastAllocated over cpu and memory, weight 1 each (upstream's default strategy).
  score(state, pod, node) {
    const { nonZero } = fitState(state, pod);
    const cpu = leastAllocated(node.nonZeroRequested.milliCPU + nonZero.milliCPU, node.allocatable.milliCPU);
    const mem = leastAllocated(node.nonZeroRequested.memory + nonZero.memory, node.allocatable.memory);
    return Math.trunc((cpu + mem) / 2);
  },
};

export const nodeResourcesBalancedAllocation: ScorePlugin & EnqueueExtensions = {
  name: 'NodeResourcesBalancedAllocation',
  events: resourceEvents,
  // Nodes whose cpu and memory would be used in equal proportion score
  // higher: 1 - the standard deviation of the two fractions.
  score(state, pod, node) {
    const { nonZero } = fitState(state, pod);
    const frac = (req: number, alloc: number) => (alloc === 0 ? 0 : Math.min(1, req / alloc));
    const cpu = frac(node.nonZeroRequested.milliCPU + nonZero.milliCPU, node.allocatable.milliCPU);
    const mem = frac(node.nonZeroRequested.memory + nonZero.memory, node.allocatable.memory);
    const std = Math.abs(cpu - mem) / 2;
    return Math.trunc((1 - std) * MAX_NODE_SCORE);
  },
};

export const ERR_NODE_PORTS = "node(s) didn't have free ports for the requested pod ports";
const PORTS_STATE = 'PreFilterNodePorts';

export const nodePorts: PreFilterPlugin & FilterPlugin & EnqueueExtensions = {
  name: 'NodePorts',
  events: () => [
    { event: { resource: 'AssignedPod', actions: ['Delete'] } },
    { event: { resource: 'Node', actions: ['Add', 'Update'] } },
  ],
  preFilter(state, pod) {
    const ports = hostPortsOf(pod);
    if (ports.length === 0) return { status: SKIP };
    state.write(PORTS_STATE, ports);
    return { status: SUCCESS };
  },
  filter(state, _pod, node) {
    const ports = state.read<HostPort[]>(PORTS_STATE) ?? [];
    for (const p of ports) if (!node.portFree(p)) return unschedulable(ERR_NODE_PORTS);
    return SUCCESS;
  },
};

// ImageLocality: nodes that already have the pod's images score higher,
// weighted by how widely each image is spread (so one node does not attract
// every pod of a popular image). As upstream, the spread comes from the
// cache (NodeInfo.images, counted as nodes come and go) rather than from a
// scan of every node per pod: at 5,000 nodes that scan was a tenth of the
// scheduler's own time.
const MB = 1024 * 1024;
const MIN_THRESHOLD = 23 * MB;
const MAX_CONTAINER_THRESHOLD = 1000 * MB;
const IMAGE_STATE = 'PreScoreImageLocality';

export { normalizedImageName };

interface ImageState {
  /** One entry per container (init containers too), as upstream sums them. */
  images: string[];
  totalNodes: number;
}

export const imageLocality: PreScorePlugin & ScorePlugin = {
  name: 'ImageLocality',
  preScore(state, pod, _nodes, snapshot: Snapshot) {
    const images = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]
      .map((c) => c.image)
      .filter((i): i is string => !!i)
      .map(normalizedImageName);
    if (!images.length) return SKIP;
    state.write(IMAGE_STATE, { images, totalNodes: snapshot.nodes().length } satisfies ImageState);
    return SUCCESS;
  },
  score(state, _pod, node) {
    const s = state.read<ImageState>(IMAGE_STATE);
    if (!s || node.images.size === 0) return 0;
    let sum = 0;
    for (const image of s.images) {
      const held = node.images.get(image);
      if (held) sum += held.sizeBytes * (held.spread.numNodes / s.totalNodes);
    }
    const maxThreshold = MAX_CONTAINER_THRESHOLD * s.images.length;
    const clamped = Math.min(Math.max(sum, MIN_THRESHOLD), maxThreshold);
    return Math.trunc((MAX_NODE_SCORE * (clamped - MIN_THRESHOLD)) / (maxThreshold - MIN_THRESHOLD));
  },
};

export type { Status };
