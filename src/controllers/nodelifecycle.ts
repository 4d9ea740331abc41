// Node health, as upstream's node lifecycle controller
// (pkg/controller/nodelifecycle/node_lifecycle_controller.go), and taint
// based eviction, as upstream's taint eviction controller
// (pkg/controller/tainteviction, formerly the NoExecuteTaintManager).
//
// The node lifecycle controller watches heartbeats. A kubelet renews its
// Lease in kube-node-lease every few seconds and posts the Ready condition
// now and then; when neither has moved for the grace period
// (--node-monitor-grace-period, 40 s), the kubelet is presumed gone: the
// node's Ready, MemoryPressure, DiskPressure and PIDPressure conditions turn
// Unknown ("Kubelet stopped posting node status."), its pods are marked not
// Ready, and it is tainted node.kubernetes.io/unreachable. A node whose
// kubelet reports Ready=False is tainted node.kubernetes.io/not-ready
// instead. Each comes twice: NoSchedule keeps new pods off, NoExecute evicts
// the pods already there. Condition taints (memory-pressure, disk-pressure,
// pid-pressure, network-unavailable) and node.kubernetes.io/unschedulable
// (spec.unschedulable, `kubectl cordon`) are NoSchedule only. When the node
// recovers, the taints go.
//
// As upstream, when no node at all is Ready the controller assumes the
// problem is on its side (a partitioned control plane) and removes the
// NoExecute taints rather than evict everything ("master disruption mode").
// Upstream's per-zone eviction rate limits are not done: taints are applied
// at once.
//
// The taint eviction controller deletes pods on nodes with NoExecute taints:
// at once if the pod does not tolerate every such taint, after the smallest
// tolerationSeconds of the tolerations it uses otherwise, never if they have
// none. The DefaultTolerationSeconds admission (pod-defaults.ts) gives every
// pod 300 s for not-ready and unreachable. Before deleting, it marks the pod
// with a DisruptionTarget condition, as upstream does.
//
// Times come from ctx.now() so tests can move them; the grace period is
// ctx.options.nodeMonitorGracePeriodMs.

import { isApiError } from '../api/errors.ts';
import { deepCopy, rfc3339 } from '../api/meta.ts';
import { TAINT_NODE_NOT_READY, TAINT_NODE_UNREACHABLE, toleratesTaint } from '../api/scheduling.ts';
import type { Node, NodeCondition, Pod, Taint, Toleration } from '../api/types/core-v1.ts';
import { NODE_INDEX } from '../client/informer-factory.ts';
import { type ControllerFactory, keyOf } from './context.ts';
import { queueController } from './controller.ts';
import { podConditionsWith } from './podgc.ts';

export const TAINT_NODE_UNSCHEDULABLE = 'node.kubernetes.io/unschedulable';
const NODE_LEASE_NAMESPACE = 'kube-node-lease';
/** Nodes with this label do not count when deciding whether every node is down. */
const LABEL_NODE_DISRUPTION_EXCLUSION = 'node.kubernetes.io/exclude-disruption';

/** The conditions a silent kubelet leaves Unknown (NetworkUnavailable belongs to the network, not the kubelet). */
const KUBELET_CONDITIONS = ['Ready', 'MemoryPressure', 'DiskPressure', 'PIDPressure'];

/** Condition taints: key ← (condition type, status) that puts it on, all NoSchedule. */
const NO_SCHEDULE_TAINTS: { key: string; type: string; status: string }[] = [
  { key: TAINT_NODE_NOT_READY, type: 'Ready', status: 'False' },
  { key: TAINT_NODE_UNREACHABLE, type: 'Ready', status: 'Unknown' },
  { key: 'node.kubernetes.io/memory-pressure', type: 'MemoryPressure', status: 'True' },
  { key: 'node.kubernetes.io/disk-pressure', type: 'DiskPressure', status: 'True' },
  { key: 'node.kubernetes.io/network-unavailable', type: 'NetworkUnavailable', status: 'True' },
  { key: 'node.kubernetes.io/pid-pressure', type: 'PIDPressure', status: 'True' },
];
const MANAGED_NO_SCHEDULE = new Set([...NO_SCHEDULE_TAINTS.map((t) => t.key), TAINT_NODE_UNSCHEDULABLE]);
const MANAGED_NO_EXECUTE = new Set([TAINT_NODE_NOT_READY, TAINT_NODE_UNREACHABLE]);

const conditionOf = (node: Node, type: string) => node.status?.conditions?.find((c) => c.type === type);
/** The Ready condition's status; undefined while the kubelet never posted one (not yet judged). */
const readyStatusOf = (node: Node) => conditionOf(node, 'Ready')?.status;

/** a is a later RFC 3339 time than b (microseconds compared as text when the milliseconds tie). */
function isAfter(a: string | undefined, b: string | undefined): boolean {
  if (!a) return false;
  if (!b) return true;
  const ta = Date.parse(a);
  const tb = Date.parse(b);
  return ta !== tb ? ta > tb : a > b;
}

export interface NodeLifecycleOptions {
  /** How often every node's health is checked (upstream's --node-monitor-period: 5 s). */
  nodeMonitorPeriodMs?: number;
  /** Grace for a node that never posted a Ready condition (upstream's --node-startup-grace-period: 60 s). */
  nodeStartupGracePeriodMs?: number;
}

/** What the controller last saw of a node's heartbeats (upstream's nodeHealthData). */
interface NodeHealth {
  /** When (ctx.now(), ms) a heartbeat was last seen to move. */
  probeTimestamp: number;
  /** The Ready condition's lastHeartbeatTime as last seen; undefined if it had none. */
  readyHeartbeat: string | undefined;
  hadReadyCondition: boolean;
  leaseRenewTime: string | undefined;
}

export function newNodeLifecycleController(opts: NodeLifecycleOptions = {}): ControllerFactory {
  const monitorPeriodMs = opts.nodeMonitorPeriodMs ?? 5_000;
  const startupGraceMs = opts.nodeStartupGracePeriodMs ?? 60_000;

  return (ctx) => {
    const nodes = ctx.informers.informer('nodes');
    const leases = ctx.informers.informer('leases');
    const pods = ctx.informers.informer('pods');
    const recorder = ctx.recorder('node-controller');
    const log = ctx.log.with({ controller: 'nodelifecycle' });
    const health = new Map<string, NodeHealth>();
    let timer: unknown;

    /**
     * Upstream's tryUpdateNodeHealth: refreshes the probe timestamp when the
     * Ready heartbeat or the Lease moved, and once the grace period has
     * passed without either, writes the kubelet's conditions as Unknown.
     * Returns the node as it now is.
     */
    const tryUpdateNodeHealth = async (node: Node): Promise<Node> => {
      const name = node.metadata.name ?? '';
      const now = ctx.now().getTime();
      const ready = conditionOf(node, 'Ready');
      const gracePeriod = ready ? ctx.options.nodeMonitorGracePeriodMs : startupGraceMs;
      let h = health.get(name);
      if (!h) {
        // Never seen: a node that never posted status is judged from its
        // creation; any other gets a full grace period from now (a restarted
        // controller does not know how old the last heartbeat is).
        const created = Date.parse(node.metadata.creationTimestamp ?? '') || now;
        h = {
          probeTimestamp: ready ? now : created,
          readyHeartbeat: ready?.lastHeartbeatTime,
          hadReadyCondition: !!ready,
          leaseRenewTime: undefined,
        };
        health.set(name, h);
      } else if (!!ready !== h.hadReadyCondition || ready?.lastHeartbeatTime !== h.readyHeartbeat) {
        h.probeTimestamp = now;
        h.readyHeartbeat = ready?.lastHeartbeatTime;
        h.hadReadyCondition = !!ready;
      }
      // A renewed Lease is a heartbeat too, and the usual one: kubelets post
      // status only when it changes or every few minutes.
      const lease = leases.indexer.get(`${NODE_LEASE_NAMESPACE}/${name}`);
      const renewTime = lease?.spec?.renewTime;
      if (renewTime && isAfter(renewTime, h.leaseRenewTime)) {
        h.leaseRenewTime = renewTime;
        h.probeTimestamp = now;
      }
      if (now <= h.probeTimestamp + gracePeriod) return node;

      const updated = deepCopy(node);
      const conditions: NodeCondition[] = updated.status?.conditions ?? [];
      const stamp = rfc3339(new Date(now));
      for (const type of KUBELET_CONDITIONS) {
        const current = conditions.find((c) => c.type === type);
        if (!current) {
          conditions.push({
            type,
            status: 'Unknown',
            reason: 'NodeStatusNeverUpdated',
            message: 'Kubelet never posted node status.',
            lastHeartbeatTime: node.metadata.creationTimestamp ?? stamp,
            lastTransitionTime: stamp,
          });
        } else if (current.status !== 'Unknown') {
          current.status = 'Unknown';
          current.reason = 'NodeStatusUnknown';
          current.message = 'Kubelet stopped posting node status.';
          current.lastTransitionTime = stamp;
        }
      }
      // Only the Ready condition decides whether to write, as upstream.
      if (ready?.status === 'Unknown') return node;
      updated.status = { ...updated.status, conditions };
      const written = await ctx.clients.nodes.updateStatus(updated);
      h.readyHeartbeat = conditionOf(written, 'Ready')?.lastHeartbeatTime;
      h.hadReadyCondition = true;
      log('node stopped posting status', { node: name, lastProbeAgoMs: now - h.probeTimestamp });
      recorder.event(written, 'Normal', 'NodeNotReady', `Node ${name} status is now: NodeNotReady`);
      return written;
    };

    /** True when no counted node is Ready but some are not (upstream's full disruption in every zone). */
    const allNodesDown = (self: Node): boolean => {
      let ready = 0;
      let notReady = 0;
      for (const n of nodes.indexer.list()) {
        const node = n.metadata.name === self.metadata.name ? self : n;
        const status = readyStatusOf(node);
        if (!status || node.metadata.labels?.[LABEL_NODE_DISRUPTION_EXCLUSION] !== undefined) continue;
        if (status === 'True') ready++;
        else notReady++;
      }
      return ready === 0 && notReady > 0;
    };

    /** The taints the controller manages that `node` should carry now. */
    const desiredTaints = (node: Node): Taint[] => {
      const want: Taint[] = [];
      for (const t of NO_SCHEDULE_TAINTS) {
        if (conditionOf(node, t.type)?.status === t.status) want.push({ key: t.key, effect: 'NoSchedule' });
      }
      if (node.spec?.unschedulable) want.push({ key: TAINT_NODE_UNSCHEDULABLE, effect: 'NoSchedule' });
      const ready = readyStatusOf(node);
      if (ready && ready !== 'True' && !allNodesDown(node)) {
        const key = ready === 'False' ? TAINT_NODE_NOT_READY : TAINT_NODE_UNREACHABLE;
        want.push({ key, effect: 'NoExecute' });
      }
      return want;
    };

    const isManaged = (t: Taint) =>
      (t.effect === 'NoSchedule' && MANAGED_NO_SCHEDULE.has(t.key ?? '')) ||
      (t.effect === 'NoExecute' && MANAGED_NO_EXECUTE.has(t.key ?? ''));

    const reconcileTaints = async (node: Node): Promise<void> => {
      const current = node.spec?.taints ?? [];
      const want = desiredTaints(node);
      const has = (list: Taint[], t: Taint) => list.some((x) => x.key === t.key && x.effect === t.effect);
      const toAdd = want.filter((t) => !has(current, t));
      const toRemove = current.filter((t) => isManaged(t) && !has(want, t));
      if (toAdd.length === 0 && toRemove.length === 0) return;
      const stamp = rfc3339(ctx.now());
      const taints = [
        ...current.filter((t) => !toRemove.includes(t)),
        // timeAdded is what NoExecute tolerations count from; upstream sets it
        // for NoExecute taints only.
        ...toAdd.map((t) => (t.effect === 'NoExecute' ? { ...t, timeAdded: stamp } : t)),
      ];
      const updated = deepCopy(node);
      updated.spec = { ...updated.spec, taints };
      if (taints.length === 0) delete updated.spec.taints;
      await ctx.clients.nodes.update(updated);
      log('node taints changed', {
        node: node.metadata.name,
        added: toAdd.map((t) => `${t.key}:${t.effect}`),
        removed: toRemove.map((t) => `${t.key}:${t.effect}`),
      });
    };

    /** Upstream's MarkPodsNotReady: endpoints stop sending traffic to pods of a lost node. */
    const markPodsNotReady = async (node: Node): Promise<void> => {
      for (const pod of pods.indexer.byIndex(NODE_INDEX, node.metadata.name ?? '')) {
        const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
        if (!ready || ready.status === 'False') continue;
        const conditions = podConditionsWith(
          pod.status?.conditions,
          { ...ready, status: 'False' },
          ctx.now(),
        );
        try {
          await ctx.clients.pods.patch(
            pod.metadata.namespace,
            pod.metadata.name ?? '',
            'merge',
            { status: { conditions } },
            { subresource: 'status' },
          );
          recorder.event(pod, 'Warning', 'NodeNotReady', 'Node is not ready');
        } catch (err) {
          if (!isApiError(err, 'NotFound')) throw err;
        }
      }
    };

    const c = queueController(ctx, {
      name: 'nodelifecycle',
      async sync(name) {
        const cached = nodes.indexer.get(name);
        if (!cached) {
          health.delete(name);
          return;
        }
        const node = await tryUpdateNodeHealth(cached);
        await reconcileTaints(node);
        if (readyStatusOf(node) === 'Unknown') await markPodsNotReady(node);
      },
      onRun() {
        // upstream's monitorNodeHealth loop: heartbeats that stop cause no
        // event, so every node is looked at every period.
        const tick = () => {
          for (const key of nodes.indexer.keys()) c.queue.add(key);
          timer = ctx.clock.setTimeout(tick, monitorPeriodMs);
        };
        tick();
      },
      onStop() {
        if (timer !== undefined) ctx.clock.clearTimeout(timer);
      },
    });

    nodes.on({
      add: (node) => c.queue.add(keyOf(node)),
      update: (_old, node) => c.queue.add(keyOf(node)),
      delete: (node) => {
        c.queue.add(keyOf(node));
        // Whether every node is down may have changed.
        for (const key of nodes.indexer.keys()) c.queue.add(key);
      },
    });
    leases.on({
      add: (lease) => {
        if (lease.metadata.namespace === NODE_LEASE_NAMESPACE) c.queue.add(lease.metadata.name ?? '');
      },
      update: (_old, lease) => {
        if (lease.metadata.namespace === NODE_LEASE_NAMESPACE) c.queue.add(lease.metadata.name ?? '');
      },
    });
    pods.on({
      // A pod newly bound to a lost node is marked not Ready too (upstream's processPod).
      add: (pod) => {
        if (pod.spec?.nodeName) c.queue.add(pod.spec.nodeName);
      },
      update: (old, pod) => {
        if (pod.spec?.nodeName && pod.spec.nodeName !== old.spec?.nodeName) c.queue.add(pod.spec.nodeName);
      },
    });
    return c;
  };
}

export const nodeLifecycleController: ControllerFactory = newNodeLifecycleController();

// ---- taint eviction -----------------------------------------------------

/**
 * Whether every taint is tolerated, and the tolerations that do it (the first
 * matching one per taint), as upstream's GetMatchingTolerations.
 */
export function matchingTolerations(
  taints: readonly Taint[],
  tolerations: readonly Toleration[],
): { allTolerated: boolean; used: Toleration[] } {
  const used: Toleration[] = [];
  for (const taint of taints) {
    const t = tolerations.find((tol) => toleratesTaint(tol, taint));
    if (!t) return { allTolerated: false, used: [] };
    used.push(t);
  }
  return { allTolerated: true, used };
}

/**
 * How long (ms) the pod may stay: the smallest tolerationSeconds among the
 * tolerations used (0 or less means now), or -1 (forever) if none has one.
 */
export function minTolerationTime(used: readonly Toleration[]): number {
  if (used.length === 0) return 0;
  let min = -1;
  for (const t of used) {
    if (t.tolerationSeconds === undefined || t.tolerationSeconds === null) continue;
    if (t.tolerationSeconds <= 0) return 0;
    const ms = t.tolerationSeconds * 1000;
    if (min < 0 || ms < min) min = ms;
  }
  return min;
}

const noExecuteTaints = (node: Node | undefined): Taint[] =>
  (node?.spec?.taints ?? []).filter((t) => t.effect === 'NoExecute');

export const taintEvictionController: ControllerFactory = (ctx) => {
  const pods = ctx.informers.informer('pods');
  const nodes = ctx.informers.informer('nodes');
  const recorder = ctx.recorder('taint-eviction-controller');
  const log = ctx.log.with({ controller: 'taint-eviction-controller' });
  // Pod key → its scheduled eviction, in ctx.now() milliseconds (upstream's
  // TimedWorkerQueue). The first schedule stands until cancelled: later
  // updates do not push an eviction back.
  const scheduled = new Map<string, { createdAt: number; fireAt: number; pod: Pod }>();

  const cancel = (key: string) => {
    const work = scheduled.get(key);
    if (!work) return;
    scheduled.delete(key);
    recorder.event(work.pod, 'Normal', 'TaintManagerEviction', `Cancelling deletion of Pod ${key}`);
  };

  const evict = async (key: string, pod: Pod) => {
    scheduled.delete(key);
    recorder.event(pod, 'Normal', 'TaintManagerEviction', `Marking for deletion Pod ${key}`);
    const namespace = pod.metadata.namespace;
    const name = pod.metadata.name ?? '';
    try {
      // Tells the pod's owner (and PodDisruptionBudget accounting) why it went.
      const conditions = podConditionsWith(
        pod.status?.conditions,
        {
          type: 'DisruptionTarget',
          status: 'True',
          reason: 'DeletionByTaintManager',
          message: 'Taint manager: deleting due to NoExecute taint',
        },
        ctx.now(),
      );
      await ctx.clients.pods.patch(
        namespace,
        name,
        'merge',
        { status: { conditions } },
        { subresource: 'status' },
      );
      await ctx.clients.pods.delete(namespace, name, { preconditions: { uid: pod.metadata.uid ?? '' } });
      log('evicted pod', { pod: key, node: pod.spec?.nodeName });
    } catch (err) {
      // Gone, or replaced by a namesake: nothing of ours to delete.
      if (!isApiError(err, 'NotFound') && !isApiError(err, 'Conflict')) throw err;
    }
  };

  const c = queueController(ctx, {
    name: 'taint-eviction-controller',
    async sync(key) {
      const pod = pods.indexer.get(key);
      // Deleted, or already on its way out: nothing left to schedule.
      if (!pod || pod.metadata.deletionTimestamp) {
        scheduled.delete(key);
        return;
      }
      const taints = noExecuteTaints(nodes.indexer.get(pod.spec?.nodeName ?? ''));
      if (!pod.spec?.nodeName || taints.length === 0) {
        cancel(key);
        return;
      }
      const { allTolerated, used } = matchingTolerations(taints, pod.spec.tolerations ?? []);
      if (!allTolerated) {
        await evict(key, pod);
        return;
      }
      const tolerateMs = minTolerationTime(used);
      if (tolerateMs < 0) {
        cancel(key);
        return;
      }
      const now = ctx.now().getTime();
      let work = scheduled.get(key);
      if (!work) {
        work = { createdAt: now, fireAt: now + tolerateMs, pod };
        scheduled.set(key, work);
      }
      if (now >= work.fireAt) await evict(key, pod);
      else c.queue.addAfter(key, work.fireAt - now);
    },
  });

  const enqueuePodsOn = (nodeName: string | undefined) => {
    for (const pod of pods.indexer.byIndex(NODE_INDEX, nodeName ?? '')) c.queue.add(keyOf(pod));
  };
  pods.on({
    add: (pod) => {
      if (pod.spec?.nodeName) c.queue.add(keyOf(pod));
    },
    update: (old, pod) => {
      // Only the node and the tolerations decide (upstream's PodUpdated).
      if (
        old.spec?.nodeName !== pod.spec?.nodeName ||
        JSON.stringify(old.spec?.tolerations) !== JSON.stringify(pod.spec?.tolerations)
      ) {
        c.queue.add(keyOf(pod));
      }
    },
    delete: (pod) => c.queue.add(keyOf(pod)),
  });
  nodes.on({
    add: (node) => enqueuePodsOn(node.metadata.name),
    update: (old, node) => {
      if (JSON.stringify(noExecuteTaints(old)) !== JSON.stringify(noExecuteTaints(node))) {
        enqueuePodsOn(node.metadata.name);
      }
    },
    delete: (node) => enqueuePodsOn(node.metadata.name),
  });
  return c;
};
