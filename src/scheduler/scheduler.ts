// The scheduler: takes pending pods from the scheduling queue one at a time,
// finds the nodes that can take each (Filter), ranks them (Score), assumes the
// pod onto the best one and binds it through `pods/binding`, in the
// background, while the next pod is already being scheduled. A pod no node can
// take gets PodScheduled=False/Unschedulable and a FailedScheduling event that
// says why, node by node, as upstream words it; preemption may then nominate
// a node for it.
//
// It acts only through the API (informers for reads, the client for writes),
// so it runs inside `skiff server` or anywhere else over HTTPS.

import { rfc3339 } from '../api/meta.ts';
import type { Node, Pod, PodCondition } from '../api/types/core-v1.ts';
import type { Clientset } from '../client/clientset.ts';
import type { EventRecorder } from '../client/events.ts';
import type { InformerFactory } from '../client/informer-factory.ts';
import { type Clock, realClock } from '../client/workqueue.ts';
import type { Log } from '../util/log.ts';
import { SchedulerCache } from './cache.ts';
import {
  type ActionType,
  asError,
  Code,
  CycleState,
  type FrameworkHandle,
  isRejection,
  MAX_NODE_SCORE,
  type NodeScore,
  type QueuedPodInfo,
  type Status,
} from './framework.ts';
import type { NodeInfo } from './nodeinfo.ts';
import { Nominator, runFiltersWithNominatedPods, runPreFilterExtensions } from './nominator.ts';
import type { Profile } from './profile.ts';
import { eventsByPlugin } from './profile.ts';
import { SchedulingQueue } from './queue.ts';

export const DEFAULT_SCHEDULER_NAME = 'default-scheduler';
/** upstream's minFeasibleNodesToFind and minFeasibleNodesPercentageToFind */
const MIN_FEASIBLE_NODES = 100;
const MIN_FEASIBLE_PERCENTAGE = 5;

/**
 * How many feasible nodes to find before scoring, as upstream: all of them in
 * small clusters; in large ones a percentage, adaptive by default (50% minus
 * 1% per 125 nodes, floored at 5%), and never fewer than 100.
 */
export function numFeasibleNodesToFind(numAllNodes: number, percentageOfNodesToScore = 0): number {
  if (numAllNodes < MIN_FEASIBLE_NODES) return numAllNodes;
  let percentage = percentageOfNodesToScore;
  if (percentage === 0) {
    percentage = 50 - Math.trunc(numAllNodes / 125);
    if (percentage < MIN_FEASIBLE_PERCENTAGE) percentage = MIN_FEASIBLE_PERCENTAGE;
  }
  const n = Math.trunc((numAllNodes * percentage) / 100);
  return Math.max(n, MIN_FEASIBLE_NODES);
}

/** Why a pod fits nowhere: per-node statuses, summarized as upstream's FitError. */
export class FitError extends Error {
  readonly numAllNodes: number;
  readonly statuses: Map<string, Status>;
  preFilterMessage: string;
  postFilterMessage = '';
  readonly unschedulablePlugins: Set<string>;

  constructor(numAllNodes: number, statuses: Map<string, Status>, preFilterMessage = '') {
    // No message argument: Error would make it an own property, hiding the getter.
    super();
    this.numAllNodes = numAllNodes;
    this.statuses = statuses;
    this.preFilterMessage = preFilterMessage;
    this.unschedulablePlugins = new Set([...statuses.values()].map((s) => s.plugin ?? '').filter(Boolean));
  }

  override get message(): string {
    // upstream's ErrNoNodesAvailable, reported as Unschedulable.
    if (this.numAllNodes === 0) return 'no nodes available to schedule pods';
    let msg = `0/${this.numAllNodes} nodes are available:`;
    if (this.preFilterMessage) msg += ` ${this.preFilterMessage}.`;
    else msg += this.#histogram();
    if (this.postFilterMessage) msg += ` ${this.postFilterMessage}.`;
    return msg;
  }

  #histogram(): string {
    const histogram = new Map<string, number>();
    for (const s of this.statuses.values()) {
      for (const r of s.reasons) histogram.set(r, (histogram.get(r) ?? 0) + 1);
    }
    const reasons = [...histogram].map(([r, n]) => `${n} ${r}`).sort();
    return reasons.length ? ` ${reasons.join(', ')}.` : '';
  }
}

export interface SchedulerOptions {
  clients: Clientset;
  informers: InformerFactory;
  recorder: EventRecorder;
  log: Log;
  profile: Profile;
  /** 0 (default): adaptive, as upstream. */
  percentageOfNodesToScore?: number;
  clock?: Clock;
  now?: () => Date;
  /** Tie-breaking between equally scored nodes; injectable for tests. */
  rand?: () => number;
  /** Binds written at once; beyond this the next cycle waits. */
  maxInFlightBinds?: number;
  /** Told of each scheduling attempt's result and duration (metrics/scheduler.ts); none when unset. */
  metrics?: SchedulerMetrics;
}

/** What the scheduler tells its metrics: each attempt, as upstream's scheduler_scheduling_attempt_duration_seconds. */
export interface SchedulerMetrics {
  attempt(result: 'scheduled' | 'unschedulable' | 'error', profile: string, seconds: number): void;
}

export interface Scheduler {
  readonly cache: SchedulerCache;
  readonly queue: SchedulingQueue;
  run(): void;
  stop(): Promise<void>;
  /** Counters for benchmarks and tests. */
  readonly stats: { scheduled: number; failed: number; bindErrors: number };
}

const isTerminal = (pod: Pod) => pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';

export function createScheduler(opts: SchedulerOptions): Scheduler {
  const { clients, profile, log } = opts;
  const clock = opts.clock ?? realClock;
  const now = opts.now ?? (() => new Date());
  const rand = opts.rand ?? Math.random;
  const cache = new SchedulerCache(() => clock.now());
  const queue = new SchedulingQueue({
    less: (a, b) => profile.queueSort.less(a, b),
    eventsByPlugin: eventsByPlugin(profile),
    clock,
  });
  const pods = opts.informers.informer('pods');
  const nodes = opts.informers.informer('nodes');
  const stats = { scheduled: 0, failed: 0, bindErrors: 0 };
  const nominator = new Nominator();
  // Preemption reads PodDisruptionBudgets; its informer must start (and sync) with the others.
  if (profile.postFilter.length) opts.informers.informer('podDisruptionBudgets');
  const maxInFlightBinds = opts.maxInFlightBinds ?? 256;
  let inFlightBinds = 0;
  let bindSlot: (() => void) | undefined;
  let nextStartNodeIndex = 0;
  let stopped = false;
  let loop: Promise<void> | undefined;

  const responsible = (pod: Pod) =>
    (pod.spec?.schedulerName ?? DEFAULT_SCHEDULER_NAME) === profile.schedulerName;
  const pending = (pod: Pod) =>
    !pod.spec?.nodeName && !pod.metadata.deletionTimestamp && !isTerminal(pod) && responsible(pod);

  // --- informer handlers: keep the cache and the queue current --------------

  pods.on({
    add(pod) {
      if (pod.spec?.nodeName) {
        cache.addOrUpdatePod(pod);
        queue.moveOnEvent({ resource: 'AssignedPod', actions: ['Add'] }, undefined, pod);
      } else if (pending(pod)) {
        nominator.update(undefined, pod);
        queue.add(pod);
      }
    },
    update(old, pod) {
      if (pod.spec?.nodeName) {
        cache.addOrUpdatePod(pod);
        nominator.delete(pod);
        if (!old.spec?.nodeName) queue.delete(pod);
        else if (JSON.stringify(old.metadata.labels) !== JSON.stringify(pod.metadata.labels)) {
          queue.moveOnEvent({ resource: 'AssignedPod', actions: ['UpdatePodLabel'] }, old, pod);
        }
        if (isTerminal(pod) && !isTerminal(old)) {
          queue.moveOnEvent({ resource: 'AssignedPod', actions: ['Delete'] }, old, pod);
        }
      } else if (pending(pod)) {
        nominator.update(old, pod);
        queue.update(pod);
      } else {
        nominator.delete(pod);
        queue.delete(pod);
      }
    },
    delete(pod) {
      nominator.delete(pod);
      if (pod.spec?.nodeName || cache.isAssumed(pod)) {
        cache.removePod(pod);
        queue.moveOnEvent({ resource: 'AssignedPod', actions: ['Delete'] }, pod, undefined);
      }
      queue.delete(pod);
    },
  });

  nodes.on({
    add(node) {
      cache.addOrUpdateNode(node);
      queue.moveOnEvent({ resource: 'Node', actions: ['Add'] }, undefined, node);
    },
    update(old, node) {
      cache.addOrUpdateNode(node);
      const actions = nodeUpdateActions(old, node);
      if (actions.length) queue.moveOnEvent({ resource: 'Node', actions }, old, node);
    },
    delete(node) {
      cache.removeNode(node.metadata.name ?? '');
    },
  });

  // Storage objects, for the plugins that wait on them (VolumeBinding).
  const declared = new Set([...eventsByPlugin(profile).values()].flat().map((e) => e.event.resource));
  for (const [resource, informer] of [
    ['PersistentVolumeClaim', 'persistentVolumeClaims'],
    ['PersistentVolume', 'persistentVolumes'],
    ['StorageClass', 'storageClasses'],
  ] as const) {
    if (!declared.has(resource)) continue;
    opts.informers.informer(informer).on({
      add: (o) => queue.moveOnEvent({ resource, actions: ['Add'] }, undefined, o),
      update: (old, o) => queue.moveOnEvent({ resource, actions: ['Update'] }, old, o),
    });
  }

  // --- one scheduling cycle ------------------------------------------------

  /** Filter and score, synchronously: nothing changes the cache meanwhile. */
  function schedulePod(state: CycleState, pod: Pod): { node: string; evaluated: number; feasible: number } {
    const all = cache.nodes();
    if (all.length === 0) throw new FitError(0, new Map());
    let candidates: NodeInfo[] = all;
    for (const p of profile.preFilter) {
      const { status, result } = p.preFilter(state, pod, cache);
      if (status.code === Code.Skip) {
        state.skipFilter.add(p.name);
        continue;
      }
      if (status.code === Code.Error) throw new Error(`${p.name}: ${status.reasons.join(', ')}`);
      if (isRejection(status)) {
        // Every node gets the PreFilter's status (preemption reads them);
        // the message says it once.
        const statuses = new Map<string, Status>();
        for (const n of all) statuses.set(n.name, { ...status, plugin: p.name });
        throw new FitError(all.length, statuses, status.reasons.join(', '));
      }
      if (result?.nodeNames) {
        const names = result.nodeNames;
        candidates = candidates.filter((n) => names.has(n.name));
      }
    }

    const statuses = new Map<string, Status>();
    const feasible = findFeasible(state, pod, candidates, all.length, statuses);
    if (feasible.length === 0) throw new FitError(all.length, statuses);
    if (feasible.length === 1) return { node: feasible[0]!.name, evaluated: statuses.size + 1, feasible: 1 };

    for (const p of profile.preScore) {
      const s = p.preScore(state, pod, feasible, cache);
      if (s.code === Code.Skip) state.skipScore.add(p.name);
      else if (s.code !== Code.Success) throw new Error(`${p.name}: ${s.reasons.join(', ')}`);
    }
    const totals = new Float64Array(feasible.length);
    for (const { plugin, weight } of profile.score) {
      if (state.skipScore.has(plugin.name)) continue;
      const scores: NodeScore[] = feasible.map((n) => ({ name: n.name, score: plugin.score(state, pod, n) }));
      plugin.normalize?.(state, pod, scores);
      for (let i = 0; i < scores.length; i++) {
        const s = Math.max(0, Math.min(MAX_NODE_SCORE, scores[i]!.score));
        totals[i]! += s * weight;
      }
    }
    // The highest total wins; ties are broken uniformly at random
    // (reservoir sampling, as upstream's selectHost).
    let best = 0;
    let ties = 1;
    for (let i = 1; i < totals.length; i++) {
      if (totals[i]! > totals[best]!) {
        best = i;
        ties = 1;
      } else if (totals[i] === totals[best]) {
        ties++;
        if (rand() * ties < 1) best = i;
      }
    }
    return {
      node: feasible[best]!.name,
      evaluated: statuses.size + feasible.length,
      feasible: feasible.length,
    };
  }

  /**
   * Runs the filters over nodes, round-robin from where the last cycle
   * stopped, until enough feasible nodes are found (percentageOfNodesToScore).
   */
  function findFeasible(
    state: CycleState,
    pod: Pod,
    candidates: NodeInfo[],
    numAllNodes: number,
    statuses: Map<string, Status>,
  ): NodeInfo[] {
    const want = numFeasibleNodesToFind(numAllNodes, opts.percentageOfNodesToScore);
    const feasible: NodeInfo[] = [];
    const n = candidates.length;
    const start = candidates === cache.nodes() ? nextStartNodeIndex % Math.max(1, n) : 0;
    let processed = 0;
    for (let i = 0; i < n && feasible.length < want; i++) {
      const node = candidates[(start + i) % n]!;
      processed++;
      const s = handle.runFilterPluginsWithNominatedPods(state, pod, node);
      if (s.code !== Code.Success) statuses.set(node.name, s);
      else feasible.push(node);
    }
    if (candidates === cache.nodes()) nextStartNodeIndex = (start + processed) % Math.max(1, n);
    return feasible;
  }

  async function scheduleOne(q: QueuedPodInfo): Promise<void> {
    const cycle = queue.schedulingCycle;
    // The queue may hold a stale copy: decide on the informer's.
    const pod = pods.indexer.get(`${q.info.pod.metadata.namespace}/${q.info.pod.metadata.name}`);
    if (!pod || !pending(pod) || pod.metadata.uid !== q.info.pod.metadata.uid) {
      queue.done(q.info.pod);
      return;
    }
    const state = new CycleState();
    state.startedAt = clock.now();
    let chosen: string;
    try {
      chosen = schedulePod(state, pod).node;
    } catch (err) {
      await handleFailure(q, pod, state, err, cycle);
      return;
    }
    // Assume and reserve, still synchronously, then bind in the background.
    cache.assume(pod, chosen);
    nominator.delete(pod);
    for (const r of profile.reserve) {
      const s = r.reserve(state, pod, chosen);
      if (s.code !== Code.Success) {
        for (const u of profile.reserve) u.unreserve(state, pod, chosen);
        cache.forget(pod);
        await handleFailure(q, pod, state, new Error(s.reasons.join(', ')), cycle);
        return;
      }
    }
    queue.done(pod);
    inFlightBinds++;
    void bind(q, pod, state, chosen, cycle).finally(() => {
      inFlightBinds--;
      bindSlot?.();
      bindSlot = undefined;
    });
    if (inFlightBinds >= maxInFlightBinds) await new Promise<void>((r) => (bindSlot = r));
  }

  async function bind(q: QueuedPodInfo, pod: Pod, state: CycleState, node: string, cycle: number) {
    let status: Status = { code: Code.Error, reasons: ['no bind plugin'] };
    for (const p of profile.preBind) {
      status = await p.preBind(state, pod, node).catch(asError);
      if (status.code !== Code.Success) break;
    }
    if (status.code === Code.Success || profile.preBind.length === 0) {
      for (const b of profile.bind) {
        status = await b.bind(state, pod, node);
        if (status.code !== Code.Skip) break;
      }
    }
    if (status.code === Code.Success) {
      cache.finishBinding(pod);
      stats.scheduled++;
      attempted(state, 'scheduled');
      opts.recorder.event(
        pod,
        'Normal',
        'Scheduled',
        `Successfully assigned ${pod.metadata.namespace}/${pod.metadata.name} to ${node}`,
      );
      return;
    }
    stats.bindErrors++;
    attempted(state, 'error');
    for (const r of profile.reserve) r.unreserve(state, pod, node);
    cache.forget(pod);
    log.warn('binding failed', {
      pod: `${pod.metadata.namespace}/${pod.metadata.name}`,
      node,
      error: status.reasons,
    });
    q.lastFailureWasError = true;
    queue.addUnschedulable(q, cycle);
  }

  /** An attempt ends, as upstream's metrics see it: from the cycle's start to the bind, or to the failure. */
  function attempted(state: CycleState, result: 'scheduled' | 'unschedulable' | 'error') {
    opts.metrics?.attempt(result, profile.schedulerName, (clock.now() - state.startedAt) / 1000);
  }

  async function handleFailure(q: QueuedPodInfo, pod: Pod, state: CycleState, err: unknown, cycle: number) {
    stats.failed++;
    attempted(state, err instanceof FitError ? 'unschedulable' : 'error');
    let nominatedNodeName: string | undefined;
    if (err instanceof FitError) {
      q.unschedulablePlugins = err.unschedulablePlugins;
      q.lastFailureWasError = false;
      for (const p of profile.postFilter) {
        try {
          const r = await p.postFilter(state, pod, err.statuses, handle);
          if (r.status.reasons.length) err.postFilterMessage = r.status.reasons.join(', ');
          if (r.nominatedNodeName !== undefined) {
            nominatedNodeName = r.nominatedNodeName;
            // Counted at once, before the status write comes back through the watch.
            nominator.set(pod, nominatedNodeName);
          }
          if (r.status.code === Code.Success) break;
        } catch (e) {
          log.warn('postFilter failed', { plugin: p.name, error: String(e) });
        }
      }
    } else {
      q.lastFailureWasError = true;
      log.warn('scheduling failed', {
        pod: `${pod.metadata.namespace}/${pod.metadata.name}`,
        error: String(err),
      });
    }
    const message = err instanceof Error ? err.message : String(err);
    queue.addUnschedulable(q, cycle);
    opts.recorder.event(pod, 'Warning', 'FailedScheduling', message);
    await updatePodScheduledCondition(
      pod,
      err instanceof FitError ? 'Unschedulable' : 'SchedulerError',
      message,
      nominatedNodeName,
    );
  }

  async function updatePodScheduledCondition(pod: Pod, reason: string, message: string, nominated?: string) {
    const old = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
    if (
      old?.status === 'False' &&
      old.reason === reason &&
      old.message === message &&
      (nominated === undefined || (pod.status?.nominatedNodeName ?? '') === nominated)
    ) {
      return;
    }
    const condition: PodCondition = {
      type: 'PodScheduled',
      status: 'False',
      reason,
      message,
      lastProbeTime: null as unknown as string,
      lastTransitionTime: old?.status === 'False' ? old.lastTransitionTime : rfc3339(now()),
    };
    try {
      await clients.pods.patch(
        pod.metadata.namespace,
        pod.metadata.name ?? '',
        'strategic',
        {
          status: {
            conditions: [condition],
            // '' clears a nomination: null removes the field.
            ...(nominated !== undefined ? { nominatedNodeName: nominated || null } : {}),
          },
        },
        { subresource: 'status' },
      );
    } catch (e) {
      log.debug('pod condition update failed', { pod: pod.metadata.name, error: String(e) });
    }
  }

  const handle: FrameworkHandle = {
    snapshot: cache,
    schedulerName: profile.schedulerName,
    clients,
    recorder: opts.recorder,
    informers: opts.informers,
    runFilterPluginsWithNominatedPods: (state, pod, node) =>
      runFiltersWithNominatedPods(
        profile.preFilter,
        profile.filter,
        state,
        pod,
        node,
        nominator.podsForNode(node.name),
      ),
    runPreFilterExtensionRemovePod: (state, pod, victim, node) =>
      runPreFilterExtensions(profile.preFilter, state, (p) => p.removePod?.(state, pod, victim, node)),
    runPreFilterExtensionAddPod: (state, pod, added, node) =>
      runPreFilterExtensions(profile.preFilter, state, (p) => p.addPod?.(state, pod, added, node)),
    nominatedPodsForNode: (name) => nominator.podsForNode(name),
    rand,
    now,
  };

  const assumedCleanup = setInterval(() => {
    for (const key of cache.cleanupExpiredAssumed())
      log.warn('assumed pod expired without binding', { pod: key });
  }, 1000);
  assumedCleanup.unref();

  return {
    cache,
    queue,
    stats,
    run() {
      queue.run();
      loop = (async () => {
        while (!stopped) {
          const q = await queue.pop();
          if (!q) return;
          try {
            await scheduleOne(q);
          } catch (err) {
            log.error('scheduling cycle crashed', { error: String(err), stack: (err as Error).stack });
            queue.done(q.info.pod);
          }
        }
      })();
    },
    async stop() {
      stopped = true;
      clearInterval(assumedCleanup);
      queue.close();
      await loop;
    },
  };
}

/** What about a node changed, in the terms plugins register events for. */
function nodeUpdateActions(old: Node, node: Node): ActionType[] {
  const actions: ActionType[] = [];
  const j = (v: unknown) => JSON.stringify(v ?? null);
  if (j(old.metadata.labels) !== j(node.metadata.labels)) actions.push('UpdateNodeLabel');
  if (
    j(old.spec?.taints) !== j(node.spec?.taints) ||
    !!old.spec?.unschedulable !== !!node.spec?.unschedulable
  ) {
    actions.push('UpdateNodeTaint');
  }
  if (j(old.status?.allocatable) !== j(node.status?.allocatable)) actions.push('UpdateNodeAllocatable');
  const conds = (n: Node) => (n.status?.conditions ?? []).map((c) => `${c.type}=${c.status}`).join();
  if (conds(old) !== conds(node)) actions.push('UpdateNodeCondition');
  return actions;
}
