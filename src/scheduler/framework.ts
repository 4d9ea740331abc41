// The scheduling framework, after kube-scheduler's framework/interface.go:
// small per-stage plugin interfaces, statuses instead of exceptions, a
// per-cycle state that PreFilter fills for Filter and Score, and, for each
// plugin, the cluster events that can make a pod it rejected schedulable.
//
// Placement is pure logic over a read-only snapshot of nodes (NodeInfo), so
// plugins are tested against hand-built snapshots without a cluster.

import type { Node, Pod } from '../api/types/core-v1.ts';
import type { Clientset } from '../client/clientset.ts';
import type { EventRecorder } from '../client/events.ts';
import type { InformerFactory } from '../client/informer-factory.ts';
import type { NodeInfo } from './nodeinfo.ts';

export const Code = {
  Success: 0,
  Error: 1,
  /** This node cannot take the pod now; preemption might help. */
  Unschedulable: 2,
  /** This node cannot take the pod, and preemption will not change that. */
  UnschedulableAndUnresolvable: 3,
  Wait: 4,
  /** The plugin has nothing to say for this pod (PreFilter/PreScore): skip its later stages. */
  Skip: 5,
} as const;
export type Code = (typeof Code)[keyof typeof Code];

export interface Status {
  code: Code;
  /** Reasons as users read them in FailedScheduling events ("node(s) had untolerated taint {...}"). */
  reasons: string[];
  /** The plugin that said so. */
  plugin?: string;
}

export const SUCCESS: Status = Object.freeze({ code: Code.Success, reasons: [] }) as Status;
export const SKIP: Status = Object.freeze({ code: Code.Skip, reasons: [] }) as Status;

export const unschedulable = (...reasons: string[]): Status => ({ code: Code.Unschedulable, reasons });
export const unresolvable = (...reasons: string[]): Status => ({
  code: Code.UnschedulableAndUnresolvable,
  reasons,
});
export const asError = (err: unknown): Status => ({ code: Code.Error, reasons: [String(err)] });

export const isSuccess = (s: Status | undefined): boolean => !s || s.code === Code.Success;
export const isRejection = (s: Status): boolean =>
  s.code === Code.Unschedulable || s.code === Code.UnschedulableAndUnresolvable;

/** Per-cycle scratch space: PreFilter results for Filter, PreScore results for Score. */
export class CycleState {
  readonly #data = new Map<string, unknown>();
  /** Plugins whose PreFilter said Skip: their Filter is not run this cycle. */
  readonly skipFilter = new Set<string>();
  readonly skipScore = new Set<string>();
  /** When the cycle began, on the scheduler's clock (ms): for the attempt's duration metric. */
  startedAt = 0;

  read<T>(key: string): T | undefined {
    return this.#data.get(key) as T | undefined;
  }

  write(key: string, value: unknown): void {
    this.#data.set(key, value);
  }

  /** A copy for preemption's what-if runs (values are cloned by plugins that mutate them). */
  clone(): CycleState {
    const c = new CycleState();
    for (const [k, v] of this.#data) {
      const cloneable = v as { clone?: () => unknown };
      c.#data.set(k, typeof cloneable?.clone === 'function' ? cloneable.clone() : v);
    }
    for (const s of this.skipFilter) c.skipFilter.add(s);
    for (const s of this.skipScore) c.skipScore.add(s);
    return c;
  }
}

/** What PreFilter may narrow the candidate nodes to (NodeAffinity's matchFields on metadata.name, NodeName). */
export interface PreFilterResult {
  nodeNames?: Set<string>;
}

/** The read-only view of the cluster a cycle works on. */
export interface Snapshot {
  nodes(): NodeInfo[];
  get(name: string): NodeInfo | undefined;
  /** Nodes with at least one pod that has (anti-)affinity terms: what InterPodAffinity scans. */
  havePodsWithAffinity(): NodeInfo[];
  havePodsWithRequiredAntiAffinity(): NodeInfo[];
}

// --- cluster events, for targeted requeueing ---------------------------------

export type EventResource =
  | 'Pod'
  | 'AssignedPod'
  | 'Node'
  | 'PersistentVolumeClaim'
  | 'PersistentVolume'
  | 'StorageClass'
  | 'CSINode'
  | 'Service'
  | 'PriorityClass'
  | '*';

export type ActionType =
  | 'Add'
  | 'Delete'
  | 'Update'
  | 'UpdateNodeLabel'
  | 'UpdateNodeTaint'
  | 'UpdateNodeAllocatable'
  | 'UpdateNodeCondition'
  | 'UpdatePodLabel'
  | 'UpdatePodScaleDown'
  | 'All';

export interface ClusterEvent {
  resource: EventResource;
  actions: ActionType[];
  /** A human label, e.g. "NodeAdd", for logs. */
  label?: string;
}

export interface ClusterEventWithHint {
  event: ClusterEvent;
  /**
   * Whether this particular event may make `pod` schedulable (upstream's
   * QueueingHintFn). Absent: assume it may.
   */
  hint?: (pod: Pod, oldObj: unknown, newObj: unknown) => boolean;
}

// --- plugins -----------------------------------------------------------------

export interface Plugin {
  readonly name: string;
}

export interface QueueSortPlugin extends Plugin {
  less(a: QueuedPodInfo, b: QueuedPodInfo): boolean;
}

export interface EnqueueExtensions extends Plugin {
  /** The events that can make a pod this plugin rejected schedulable. */
  events(): ClusterEventWithHint[];
}

export interface PreFilterPlugin extends Plugin {
  preFilter(state: CycleState, pod: Pod, snapshot: Snapshot): { status: Status; result?: PreFilterResult };
  /** For preemption: adjust PreFilter state as if `victim` were removed from / added to `node`. */
  removePod?(state: CycleState, pod: Pod, victim: PodInfo, node: NodeInfo): Status;
  addPod?(state: CycleState, pod: Pod, added: PodInfo, node: NodeInfo): Status;
}

export interface FilterPlugin extends Plugin {
  filter(state: CycleState, pod: Pod, node: NodeInfo): Status;
}

export interface PostFilterPlugin extends Plugin {
  /**
   * Runs when no node fits (preemption). May nominate a node; a nominatedNodeName
   * of '' clears the pod's earlier nomination (upstream's ModeOverride with no node).
   */
  postFilter(
    state: CycleState,
    pod: Pod,
    statuses: Map<string, Status>,
    handle: FrameworkHandle,
  ): Promise<{ status: Status; nominatedNodeName?: string }>;
}

/**
 * What a PostFilter plugin may use of the running scheduler, after upstream's
 * framework.Handle: the cycle's snapshot, the profile's filters (counting
 * nominated pods, as upstream's RunFilterPluginsWithNominatedPods), the
 * PreFilter extensions for what-if runs, and the clients to act with.
 */
export interface FrameworkHandle {
  readonly snapshot: Snapshot;
  readonly schedulerName: string;
  readonly clients: Clientset;
  readonly recorder: EventRecorder;
  readonly informers: InformerFactory;
  runFilterPluginsWithNominatedPods(state: CycleState, pod: Pod, node: NodeInfo): Status;
  runPreFilterExtensionRemovePod(state: CycleState, pod: Pod, victim: PodInfo, node: NodeInfo): Status;
  runPreFilterExtensionAddPod(state: CycleState, pod: Pod, added: PodInfo, node: NodeInfo): Status;
  /** Pending pods nominated to run on `nodeName` (status.nominatedNodeName or a preemption of this scheduler). */
  nominatedPodsForNode(nodeName: string): readonly PodInfo[];
  rand(): number;
  now(): Date;
}

export interface PreScorePlugin extends Plugin {
  preScore(state: CycleState, pod: Pod, nodes: NodeInfo[], snapshot: Snapshot): Status;
}

export interface ScorePlugin extends Plugin {
  score(state: CycleState, pod: Pod, node: NodeInfo): number;
  /** Maps raw scores to 0..MAX_NODE_SCORE, in place. */
  normalize?(state: CycleState, pod: Pod, scores: NodeScore[]): void;
}

export interface ReservePlugin extends Plugin {
  reserve(state: CycleState, pod: Pod, nodeName: string): Status;
  unreserve(state: CycleState, pod: Pod, nodeName: string): void;
}

/** Runs after Reserve, before Bind, and may write to the API (VolumeBinding's selected-node). */
export interface PreBindPlugin extends Plugin {
  preBind(state: CycleState, pod: Pod, nodeName: string): Promise<Status>;
}

export interface BindPlugin extends Plugin {
  bind(state: CycleState, pod: Pod, nodeName: string): Promise<Status>;
}

export const MAX_NODE_SCORE = 100;

export interface NodeScore {
  name: string;
  score: number;
}

/** A pod as the scheduler keeps it: parsed once, with what plugins need precomputed. */
export interface PodInfo {
  pod: Pod;
  /** Requests (init-container rules applied), in the units NodeInfo uses. */
  requests: Resources;
  /** The same with upstream's non-zero defaults (100m CPU, 200 MiB) for scoring. */
  nonZeroRequests: Resources;
  hasAffinity: boolean;
  hasRequiredAntiAffinity: boolean;
}

export interface QueuedPodInfo {
  info: PodInfo;
  /** When the pod was first added to the queue (ms, monotonic): the FIFO tie-breaker. */
  initialAttemptTimestamp: number;
  timestamp: number;
  attempts: number;
  /** Plugins that rejected it last time: only their events requeue it. */
  unschedulablePlugins: Set<string>;
  /** Pods whose last failure was an error (not a rejection) are retried on any event. */
  lastFailureWasError: boolean;
}

/** Resource amounts: cpu in millicores, memory and storage in bytes, the rest in units. */
export interface Resources {
  milliCPU: number;
  memory: number;
  ephemeralStorage: number;
  /** Extended and other scalar resources (nvidia.com/gpu, hugepages-2Mi, ...). */
  scalar: Map<string, number>;
}

export type { Node, NodeInfo, Pod };
