// The DaemonSet controller (upstream's pkg/controller/daemon): one daemon pod
// on every eligible node. Each sync claims the DaemonSet's pods and
// ControllerRevisions, records the current template as a revision, creates
// pods on nodes missing one and deletes them from nodes that should not run
// one (and failed ones, with backoff), replaces outdated pods as the update
// strategy allows (RollingUpdate with maxUnavailable/maxSurge, or OnDelete),
// trims old revisions, and writes status.
//
// Placement. As upstream since 1.12, the controller decides which node a pod
// belongs on and pins it there with the required node affinity
// `metadata.name In [node]` (matchFields); the scheduler then binds it. Until
// Skiff has a scheduler the pods stay unbound. A pod is counted on the node
// it is bound to (spec.nodeName) or, while unbound, the node its affinity
// names: upstream's GetTargetNodeName does the same, so status
// (currentNumberScheduled, numberMisscheduled, ...) is the same whether or
// not a scheduler has bound the pods yet.

import { isApiError } from '../api/errors.ts';
import { type LabelSelector, selectorFromLabelSelector } from '../api/labels.ts';
import { deepCopy, jsonEqual } from '../api/meta.ts';
import type { ControllerRevision, DaemonSet } from '../api/types/apps-v1.ts';
import type { Node, Pod } from '../api/types/core-v1.ts';
import { NAMESPACE_INDEX } from '../client/informer-factory.ts';
import { type ControllerFactory, keyOf } from './context.ts';
import { queueController } from './controller.ts';
import {
  allowsSurge,
  compareDaemonPods,
  daemonPodTemplate,
  isPodAvailable,
  isPodReady,
  isPodUpdated,
  type NodeFit,
  nodeShouldRunDaemonPod,
  pinToNode,
  surgeCount,
  targetNodeName,
  templateGeneration,
  unavailableCount,
} from './daemonset-util.ts';
import { Expectations } from './expectations.ts';
import {
  CONTROLLER_REVISION_HASH_LABEL_KEY,
  computeHash,
  controllerRevisionName,
  maxRevision,
  newHistory,
  revisionsToTruncate,
  templatePatch,
} from './history.ts';
import { claimObjects, controllerRefOf, ownerRef } from './ownership.ts';

const API_VERSION = 'apps/v1';
const KIND = 'DaemonSet';

/** Upstream's BurstReplicas: at most this many creates (and deletes) per sync. */
export const BURST_REPLICAS = 250;
/** controller.SlowStartInitialBatchSize: creates go out in batches of 1, 2, 4, ... */
const SLOW_START_INITIAL_BATCH_SIZE = 1;
/** Failed daemon pods are deleted at most this often per node: 1 s, doubling to 15 min. */
export const FAILED_POD_BACKOFF_INITIAL_MS = 1_000;
export const FAILED_POD_BACKOFF_MAX_MS = 15 * 60 * 1000;
/** How often expired backoff entries are dropped (BackoffGCInterval). */
const BACKOFF_GC_INTERVAL_MS = 60_000;

// Event reasons, as upstream's.
export const SELECTING_ALL_REASON = 'SelectingAll';
export const FAILED_DAEMON_POD_REASON = 'FailedDaemonPod';
export const SUCCEEDED_DAEMON_POD_REASON = 'SucceededDaemonPod';
export const SUCCESSFUL_CREATE_REASON = 'SuccessfulCreate';
export const FAILED_CREATE_REASON = 'FailedCreate';
export const SUCCESSFUL_DELETE_REASON = 'SuccessfulDelete';
export const FAILED_DELETE_REASON = 'FailedDelete';

/**
 * client-go's flowcontrol.Backoff, per key: each step doubles the delay up to
 * the maximum; an entry idle for twice the maximum starts over.
 */
function createBackoff(initialMs: number, maxMs: number) {
  const entries = new Map<string, { backoff: number; lastUpdate: number }>();
  const expired = (now: number, lastUpdate: number) => now - lastUpdate > maxMs * 2;
  return {
    get: (id: string) => entries.get(id)?.backoff ?? 0,
    /** True while `id` waits out the delay set by its last next(). */
    isInBackOffSinceUpdate(id: string, now: number): boolean {
      const e = entries.get(id);
      if (!e || expired(now, e.lastUpdate)) return false;
      return now - e.lastUpdate < e.backoff;
    },
    next(id: string, now: number): void {
      const e = entries.get(id);
      const backoff = !e || expired(now, e.lastUpdate) ? initialMs : Math.min(e.backoff * 2, maxMs);
      entries.set(id, { backoff, lastUpdate: now });
    },
    gc(now: number): void {
      for (const [id, e] of entries) if (expired(now, e.lastUpdate)) entries.delete(id);
    },
  };
}

export const daemonSetController: ControllerFactory = (ctx) => {
  const daemonSets = ctx.informers.informer('daemonSets');
  const pods = ctx.informers.informer('pods');
  const nodes = ctx.informers.informer('nodes');
  const revisions = ctx.informers.informer('controllerRevisions');
  const history = newHistory(ctx.clients.controllerRevisions, revisions.indexer);
  const recorder = ctx.recorder('daemonset-controller');
  const expectations = new Expectations(ctx.clock);
  const failedPodsBackoff = createBackoff(FAILED_POD_BACKOFF_INITIAL_MS, FAILED_POD_BACKOFF_MAX_MS);
  const log = ctx.log.with({ controller: 'daemonset' });
  let gcTimer: unknown;

  // ---- reading the cache ----------------------------------------------------

  const selectorOf = (ds: DaemonSet) =>
    selectorFromLabelSelector(ds.spec?.selector as LabelSelector | undefined);

  /** The DaemonSet a controllerRef points to, if it is still that object. */
  const resolveControllerRef = (namespace: string | undefined, obj: Pod | ControllerRevision) => {
    const ref = controllerRefOf(obj);
    if (!ref || ref.kind !== KIND) return undefined;
    const ds = daemonSets.indexer.get(`${namespace}/${ref.name}`);
    return ds && ds.metadata.uid === ref.uid ? ds : undefined;
  };

  /** DaemonSets in the object's namespace whose selector matches its labels (for orphans). */
  const daemonSetsMatching = (obj: Pod | ControllerRevision) =>
    daemonSets.indexer.byIndex(NAMESPACE_INDEX, obj.metadata.namespace ?? '').filter((ds) => {
      const selector = selectorOf(ds);
      return !selector.empty() && selector.matches(obj.metadata.labels ?? {});
    });

  /** Re-reads the DaemonSet from the API server before adopting (RecheckDeletionTimestamp). */
  const recheck = (ds: DaemonSet) => async () => {
    const fresh = await ctx.clients.daemonSets.get(ds.metadata.namespace, ds.metadata.name ?? '');
    return fresh.metadata.uid === ds.metadata.uid ? fresh : undefined;
  };

  /** getDaemonPods: the pods this DaemonSet controls, after adopting orphans and releasing strays. */
  const getDaemonPods = (ds: DaemonSet) =>
    claimObjects(pods.indexer.byIndex(NAMESPACE_INDEX, ds.metadata.namespace ?? ''), {
      owner: ds,
      ownerApiVersion: API_VERSION,
      ownerKind: KIND,
      selector: selectorOf(ds),
      client: ctx.clients.pods,
      recheckOwner: recheck(ds),
    });

  /**
   * getNodesToDaemonPods: the DaemonSet's pods by target node. Finished pods
   * already being deleted are left out: they are on their way.
   */
  const getNodesToDaemonPods = async (ds: DaemonSet): Promise<Map<string, Pod[]>> => {
    const byNode = new Map<string, Pod[]>();
    for (const pod of await getDaemonPods(ds)) {
      const phase = pod.status?.phase;
      if ((phase === 'Failed' || phase === 'Succeeded') && pod.metadata.deletionTimestamp) continue;
      const node = targetNodeName(pod);
      if (!node) {
        log.warn('daemon pod has no target node, ignoring it', { pod: keyOf(pod) });
        continue;
      }
      const list = byNode.get(node) ?? [];
      list.push(pod);
      byNode.set(node, list);
    }
    return byNode;
  };

  // ---- revisions (upstream update.go) ---------------------------------------

  /** Whether a revision records the DaemonSet's current template (upstream's Match). */
  const matchesTemplate = (ds: DaemonSet, cr: ControllerRevision) =>
    jsonEqual(templatePatch(ds.spec?.template), cr.data);

  /** snapshot: records the current template as revision `revision`. */
  const snapshot = async (ds: DaemonSet, revision: number): Promise<ControllerRevision> => {
    const hash = computeHash(ds.spec?.template, ds.status?.collisionCount);
    const name = controllerRevisionName(ds.metadata.name ?? '', hash);
    const cr: ControllerRevision = {
      apiVersion: 'apps/v1',
      kind: 'ControllerRevision',
      metadata: {
        name,
        namespace: ds.metadata.namespace,
        labels: {
          ...(ds.spec?.template?.metadata?.labels ?? {}),
          [CONTROLLER_REVISION_HASH_LABEL_KEY]: hash,
        },
        // The DaemonSet's annotations travel with the revision: that is where
        // `kubectl rollout history` finds kubernetes.io/change-cause.
        ...(ds.metadata.annotations ? { annotations: { ...ds.metadata.annotations } } : {}),
        ownerReferences: [ownerRef(ds, API_VERSION, KIND)],
      },
      data: templatePatch(ds.spec?.template),
      revision,
    };
    try {
      return await ctx.clients.controllerRevisions.create(ds.metadata.namespace, cr);
    } catch (err) {
      if (!isApiError(err, 'AlreadyExists')) throw err;
      const existing = await ctx.clients.controllerRevisions.get(ds.metadata.namespace, name);
      if (matchesTemplate(ds, existing)) return existing;
      // A different template hashed to this name. Bump status.collisionCount
      // so the next attempt hashes differently, unless our count was stale.
      const fresh = await ctx.clients.daemonSets.get(ds.metadata.namespace, ds.metadata.name ?? '');
      if ((fresh.status?.collisionCount ?? undefined) !== (ds.status?.collisionCount ?? undefined)) {
        throw new Error(
          `stale collisionCount for DaemonSet ${keyOf(ds)}; will retry once the cache catches up`,
        );
      }
      fresh.status = { ...(fresh.status ?? {}), collisionCount: (fresh.status?.collisionCount ?? 0) + 1 };
      await ctx.clients.daemonSets.updateStatus(fresh);
      throw err;
    }
  };

  /**
   * dedupCurHistories: several revisions can hold the current template
   * (e.g. after a collision). Keep the newest, move the pods of the others
   * onto its hash, delete the others.
   */
  const dedupCurrent = async (ds: DaemonSet, current: ControllerRevision[]): Promise<ControllerRevision> => {
    let keep = current[0]!;
    for (const cr of current) if ((cr.revision ?? 0) >= (keep.revision ?? 0)) keep = cr;
    const keepHash = keep.metadata.labels?.[CONTROLLER_REVISION_HASH_LABEL_KEY] ?? '';
    for (const cr of current) {
      if (cr.metadata.name === keep.metadata.name) continue;
      const dupHash = cr.metadata.labels?.[CONTROLLER_REVISION_HASH_LABEL_KEY];
      for (const pod of await getDaemonPods(ds)) {
        if (pod.metadata.labels?.[CONTROLLER_REVISION_HASH_LABEL_KEY] !== dupHash) continue;
        await ctx.clients.pods.patch(pod.metadata.namespace, pod.metadata.name ?? '', 'merge', {
          metadata: { labels: { [CONTROLLER_REVISION_HASH_LABEL_KEY]: keepHash } },
        });
      }
      await history.delete(cr);
    }
    return keep;
  };

  /**
   * constructHistory: the revision of the current template (created, or
   * renumbered to be the newest) and the old ones.
   */
  const constructHistory = async (ds: DaemonSet) => {
    const claimed = await history.claim({
      parent: ds,
      parentApiVersion: API_VERSION,
      parentKind: KIND,
      selector: selectorOf(ds),
      recheckParent: recheck(ds),
    });
    const current: ControllerRevision[] = [];
    const old: ControllerRevision[] = [];
    for (let cr of claimed) {
      // Revisions from before the hash label existed get their name as hash,
      // which is what their pods carry.
      if (!cr.metadata.labels?.[CONTROLLER_REVISION_HASH_LABEL_KEY]) {
        const copy = deepCopy(cr);
        copy.metadata.labels = {
          ...(copy.metadata.labels ?? {}),
          [CONTROLLER_REVISION_HASH_LABEL_KEY]: copy.metadata.name ?? '',
        };
        cr = await ctx.clients.controllerRevisions.update(copy);
      }
      (matchesTemplate(ds, cr) ? current : old).push(cr);
    }
    const currentRevision = maxRevision(old) + 1;
    let cur: ControllerRevision;
    if (current.length === 0) {
      cur = await snapshot(ds, currentRevision);
    } else {
      cur = await dedupCurrent(ds, current);
      // A rollback to an earlier template makes its revision the newest again.
      if ((cur.revision ?? 0) < currentRevision) cur = await history.update(cur, currentRevision);
    }
    return { cur, old };
  };

  /**
   * cleanupHistory: keep at most revisionHistoryLimit old revisions, never
   * deleting one that a pod still runs.
   */
  const cleanupHistory = async (ds: DaemonSet, old: ControllerRevision[]) => {
    const limit = ds.spec?.revisionHistoryLimit ?? 10;
    if (old.length <= limit) return;
    const live = new Set<string>();
    for (const list of (await getNodesToDaemonPods(ds)).values()) {
      for (const pod of list) {
        const hash = pod.metadata.labels?.[CONTROLLER_REVISION_HASH_LABEL_KEY];
        if (hash) live.add(hash);
      }
    }
    const isLive = (cr: ControllerRevision) =>
      live.has(cr.metadata.labels?.[CONTROLLER_REVISION_HASH_LABEL_KEY] ?? '');
    for (const cr of revisionsToTruncate(old, { isLive, limit, liveCountTowardsLimit: true })) {
      await history.delete(cr);
    }
  };

  // ---- creating and deleting pods -------------------------------------------

  /** syncNodes: deletes the named pods and creates a daemon pod on each named node. */
  const syncNodes = async (
    ds: DaemonSet,
    key: string,
    podsToDelete: string[],
    nodesNeeding: string[],
    hash: string,
  ) => {
    const ns = ds.metadata.namespace;
    const createDiff = Math.min(nodesNeeding.length, BURST_REPLICAS);
    const deletes = podsToDelete.slice(0, BURST_REPLICAS);
    // Expectations first, so the watch events of our own writes cannot race them.
    expectations.expect(
      key,
      createDiff,
      deletes.map((name) => `${ns}/${name}`),
    );
    const errors: unknown[] = [];
    const template = daemonPodTemplate(ds, hash);

    const createOne = async (nodeName: string) => {
      const pod: Pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          generateName: `${ds.metadata.name}-`,
          namespace: ns,
          labels: { ...(template.metadata.labels ?? {}) },
          ...(template.metadata.annotations ? { annotations: { ...template.metadata.annotations } } : {}),
          ...(template.metadata.finalizers ? { finalizers: [...template.metadata.finalizers] } : {}),
          ownerReferences: [ownerRef(ds, API_VERSION, KIND)],
        },
        spec: { ...deepCopy(template.spec ?? {}), affinity: pinToNode(template.spec?.affinity, nodeName) },
      };
      try {
        const created = await ctx.clients.pods.create(ns, pod);
        recorder.event(ds, 'Normal', SUCCESSFUL_CREATE_REASON, `Created pod: ${created.metadata.name}`);
      } catch (err) {
        // A terminating namespace refuses every create; nothing to retry.
        if (namespaceTerminating(err)) return;
        recorder.event(ds, 'Warning', FAILED_CREATE_REASON, `Error creating: ${errorMessage(err)}`);
        expectations.creationObserved(key);
        errors.push(err);
      }
    };

    // Slow start: batches of 1, 2, 4, ...; after a failed batch the rest waits
    // for the next sync, so a quota or admission error costs one request, not
    // one per node.
    let pos = 0;
    for (let batch = Math.min(createDiff, SLOW_START_INITIAL_BATCH_SIZE); pos < createDiff; ) {
      const before = errors.length;
      await Promise.all(nodesNeeding.slice(pos, pos + batch).map(createOne));
      pos += batch;
      if (errors.length > before) {
        for (let skipped = createDiff - pos; skipped > 0; skipped--) expectations.creationObserved(key);
        break;
      }
      batch = Math.min(2 * batch, createDiff - pos);
    }

    await Promise.all(
      deletes.map(async (name) => {
        try {
          await ctx.clients.pods.delete(ns, name);
          recorder.event(ds, 'Normal', SUCCESSFUL_DELETE_REASON, `Deleted pod: ${name}`);
        } catch (err) {
          expectations.deletionObserved(key, `${ns}/${name}`);
          if (isApiError(err, 'NotFound')) return;
          recorder.event(ds, 'Warning', FAILED_DELETE_REASON, `Error deleting: ${errorMessage(err)}`);
          errors.push(err);
        }
      }),
    );
    if (errors.length > 0) throw errors[0];
  };

  // ---- one daemon pod per node (manage) -------------------------------------

  /**
   * podsShouldBeOnNode: whether the node needs a daemon pod, and which of its
   * daemon pods must go (failed or succeeded ones, extras, and all of them if
   * the node should not run the daemon).
   */
  const podsShouldBeOnNode = (
    ds: DaemonSet,
    key: string,
    node: Node,
    daemonPods: Pod[] | undefined,
    hash: string,
  ): { create: boolean; remove: string[] } => {
    const { shouldRun, shouldContinueRunning } = nodeShouldRunDaemonPod(node, ds);
    const nodeName = node.metadata.name ?? '';
    const remove: string[] = [];
    if (shouldRun && !daemonPods) return { create: true, remove };
    if (!shouldContinueRunning) {
      for (const pod of daemonPods ?? [])
        if (!pod.metadata.deletionTimestamp) remove.push(pod.metadata.name ?? '');
      return { create: false, remove };
    }
    let create = false;
    const running: Pod[] = [];
    for (const pod of daemonPods ?? []) {
      if (pod.metadata.deletionTimestamp) continue;
      const phase = pod.status?.phase;
      if (phase === 'Failed') {
        // The kubelet rejected or killed the pod: replace it, but not in a
        // hot loop against a kubelet that keeps rejecting it.
        const backoffKey = `${ds.metadata.uid}/${ds.status?.observedGeneration ?? 0}/${nodeName}`;
        const now = ctx.clock.now();
        if (failedPodsBackoff.isInBackOffSinceUpdate(backoffKey, now)) {
          c.queue.addAfter(key, failedPodsBackoff.get(backoffKey));
          continue;
        }
        failedPodsBackoff.next(backoffKey, now);
        recorder.event(
          ds,
          'Warning',
          FAILED_DAEMON_POD_REASON,
          `Found failed daemon pod ${pod.metadata.namespace}/${pod.metadata.name} on node ${nodeName}, will try to kill it`,
        );
        remove.push(pod.metadata.name ?? '');
      } else if (phase === 'Succeeded') {
        recorder.event(
          ds,
          'Normal',
          SUCCEEDED_DAEMON_POD_REASON,
          `Found succeeded daemon pod ${pod.metadata.namespace}/${pod.metadata.name} on node ${nodeName}, will try to delete it`,
        );
        remove.push(pod.metadata.name ?? '');
      } else {
        running.push(pod);
      }
    }
    running.sort(compareDaemonPods);
    if (!allowsSurge(ds)) {
      // One pod per node: keep the oldest. When the only pod is removed the
      // next sync (after its deletion is observed) creates the replacement.
      for (const pod of running.slice(1)) remove.push(pod.metadata.name ?? '');
      return { create, remove };
    }
    if (running.length === 0) {
      create = shouldRun;
      return { create, remove };
    }
    // With surge a node may briefly run two pods, the oldest of the old
    // revision and the oldest of the new: the old one goes once it is not
    // ready or the new one is available. Any other pod goes now.
    let oldestNew: Pod | undefined;
    let oldestOld: Pod | undefined;
    for (const pod of running) {
      const isNew = pod.metadata.labels?.[CONTROLLER_REVISION_HASH_LABEL_KEY] === hash;
      if (isNew && !oldestNew) oldestNew = pod;
      else if (!isNew && !oldestOld) oldestOld = pod;
      else remove.push(pod.metadata.name ?? '');
    }
    if (oldestNew && oldestOld) {
      if (!isPodReady(oldestOld) || isPodAvailable(oldestNew, ds.spec?.minReadySeconds ?? 0, ctx.now())) {
        remove.push(oldestOld.metadata.name ?? '');
      }
    }
    return { create, remove };
  };

  const manage = async (ds: DaemonSet, key: string, nodeList: Node[], hash: string) => {
    const nodeToDaemonPods = await getNodesToDaemonPods(ds);
    const nodesNeeding: string[] = [];
    const podsToDelete: string[] = [];
    for (const node of nodeList) {
      const { create, remove } = podsShouldBeOnNode(
        ds,
        key,
        node,
        nodeToDaemonPods.get(node.metadata.name ?? ''),
        hash,
      );
      if (create) nodesNeeding.push(node.metadata.name ?? '');
      podsToDelete.push(...remove);
    }
    // Unbound pods pinned to a node that no longer exists would never be
    // bound, and the pod GC only removes bound ones: they are ours to delete.
    const existing = new Set(nodeList.map((n) => n.metadata.name));
    for (const [nodeName, list] of nodeToDaemonPods) {
      if (existing.has(nodeName)) continue;
      for (const pod of list) if (!pod.spec?.nodeName) podsToDelete.push(pod.metadata.name ?? '');
    }
    await syncNodes(ds, key, podsToDelete, nodesNeeding, hash);
  };

  // ---- RollingUpdate (upstream update.go rollingUpdate) ---------------------

  /**
   * findUpdatedPodsOnNode: the node's new and old pod; `ok` is false when it
   * has more than one of either (manage cleans that up first).
   */
  const findUpdatedPodsOnNode = (ds: DaemonSet, podsOnNode: Pod[], hash: string) => {
    let newPod: Pod | undefined;
    let oldPod: Pod | undefined;
    const generation = templateGeneration(ds);
    for (const pod of podsOnNode) {
      if (pod.metadata.deletionTimestamp) continue;
      if (isPodUpdated(pod, hash, generation)) {
        if (newPod) return { ok: false as const };
        newPod = pod;
      } else {
        if (oldPod) return { ok: false as const };
        oldPod = pod;
      }
    }
    return { ok: true as const, newPod, oldPod };
  };

  const rollingUpdate = async (ds: DaemonSet, key: string, nodeList: Node[], hash: string) => {
    const nodeToDaemonPods = await getNodesToDaemonPods(ds);
    // updatedDesiredNodeCounts: every eligible node takes part, even one
    // without a pod yet.
    let desired = 0;
    for (const node of nodeList) {
      if (!nodeShouldRunDaemonPod(node, ds).shouldRun) continue;
      desired++;
      if (!nodeToDaemonPods.has(node.metadata.name ?? '')) nodeToDaemonPods.set(node.metadata.name ?? '', []);
    }
    let maxUnavailable = unavailableCount(ds, desired);
    const maxSurge = surgeCount(ds, desired);
    // An impossible configuration (both 0) falls back to one unavailable node.
    if (desired > 0 && maxUnavailable === 0 && maxSurge === 0) maxUnavailable = 1;
    const now = ctx.now();
    const minReady = ds.spec?.minReadySeconds ?? 0;
    const available = (pod: Pod) => isPodAvailable(pod, minReady, now);

    if (maxSurge === 0) {
      // Delete just enough old pods to stay within maxUnavailable; manage
      // then creates their replacements. Old pods that are not available
      // anyway are replaced at once.
      let numUnavailable = 0;
      const allowedReplacements: string[] = [];
      const candidates: string[] = [];
      for (const podsOnNode of nodeToDaemonPods.values()) {
        const found = findUpdatedPodsOnNode(ds, podsOnNode, hash);
        if (!found.ok) {
          numUnavailable++;
          continue;
        }
        const { newPod, oldPod } = found;
        if ((!oldPod && !newPod) || (oldPod && newPod)) {
          numUnavailable++;
        } else if (newPod) {
          if (!available(newPod)) numUnavailable++;
        } else if (oldPod) {
          if (!available(oldPod)) {
            allowedReplacements.push(oldPod.metadata.name ?? '');
            numUnavailable++;
          } else if (numUnavailable < maxUnavailable) {
            candidates.push(oldPod.metadata.name ?? '');
          }
        }
      }
      const remaining = Math.min(Math.max(0, maxUnavailable - numUnavailable), candidates.length);
      await syncNodes(ds, key, [...allowedReplacements, ...candidates.slice(0, remaining)], [], hash);
      return;
    }

    // Surge: create a new pod beside each old one (up to maxSurge at once,
    // but at once where the old pod is unavailable anyway), and delete the
    // old pod when the new one is available.
    const oldPodsToDelete: string[] = [];
    const shouldNotRunPodsToDelete: string[] = [];
    const candidateNewNodes: string[] = [];
    const allowedNewNodes: string[] = [];
    let numSurge = 0;
    let numAvailable = 0;
    const shouldRunOn = (nodeName: string) => {
      const node = nodes.indexer.get(nodeName);
      if (!node) throw new Error(`couldn't get node ${nodeName}`);
      return nodeShouldRunDaemonPod(node, ds).shouldRun;
    };
    for (const [nodeName, podsOnNode] of nodeToDaemonPods) {
      const found = findUpdatedPodsOnNode(ds, podsOnNode, hash);
      if (!found.ok) {
        numSurge++;
        continue;
      }
      const { newPod, oldPod } = found;
      if (oldPod ? available(oldPod) : newPod && available(newPod)) numAvailable++;
      if (!oldPod) continue;
      if (!newPod) {
        if (!available(oldPod)) {
          if (!shouldRunOn(nodeName)) oldPodsToDelete.push(oldPod.metadata.name ?? '');
          else allowedNewNodes.push(nodeName);
        } else if (!shouldRunOn(nodeName)) {
          shouldNotRunPodsToDelete.push(oldPod.metadata.name ?? '');
        } else if (numSurge < maxSurge) {
          candidateNewNodes.push(nodeName);
        }
        continue;
      }
      // Already surged here: wait for the new pod, then retire the old one.
      if (!available(newPod)) numSurge++;
      else oldPodsToDelete.push(oldPod.metadata.name ?? '');
    }
    // With surge the owner expects full availability: a pod on a node that
    // no longer qualifies goes only once enough pods elsewhere are available.
    const deletable = Math.min(Math.max(0, numAvailable - desired), shouldNotRunPodsToDelete.length);
    oldPodsToDelete.push(...shouldNotRunPodsToDelete.slice(0, deletable));
    const remainingSurge = Math.min(Math.max(0, maxSurge - numSurge), candidateNewNodes.length);
    await syncNodes(
      ds,
      key,
      oldPodsToDelete,
      [...allowedNewNodes, ...candidateNewNodes.slice(0, remainingSurge)],
      hash,
    );
  };

  // ---- status -----------------------------------------------------------------

  const updateStatus = async (
    ds: DaemonSet,
    key: string,
    nodeList: Node[],
    hash: string,
    observed: boolean,
  ) => {
    const nodeToDaemonPods = await getNodesToDaemonPods(ds);
    const now = ctx.now();
    const minReady = ds.spec?.minReadySeconds ?? 0;
    const generation = templateGeneration(ds);
    let desired = 0;
    let current = 0;
    let misscheduled = 0;
    let ready = 0;
    let updated = 0;
    let availableCount = 0;
    for (const node of nodeList) {
      const { shouldRun } = nodeShouldRunDaemonPod(node, ds);
      const daemonPods = nodeToDaemonPods.get(node.metadata.name ?? '') ?? [];
      if (!shouldRun) {
        if (daemonPods.length > 0) misscheduled++;
        continue;
      }
      desired++;
      if (daemonPods.length === 0) continue;
      current++;
      // The oldest pod speaks for the node.
      const pod = [...daemonPods].sort(compareDaemonPods)[0]!;
      if (isPodReady(pod)) {
        ready++;
        if (isPodAvailable(pod, minReady, now)) availableCount++;
      }
      if (isPodUpdated(pod, hash, generation)) updated++;
    }
    const status = {
      desiredNumberScheduled: desired,
      currentNumberScheduled: current,
      numberMisscheduled: misscheduled,
      numberReady: ready,
      updatedNumberScheduled: updated,
      numberAvailable: availableCount,
      numberUnavailable: desired - availableCount,
    };
    await storeStatus(ds, status, observed);
    // Availability comes with time, not with an event: look again then.
    if (minReady > 0 && ready !== availableCount) c.queue.addAfter(key, minReady * 1000);
  };

  /** storeDaemonSetStatus: writes only on change; one retry on a fresh copy after a failure. */
  const storeStatus = async (
    ds: DaemonSet,
    counts: Record<string, number>,
    observed: boolean,
  ): Promise<void> => {
    const status = (ds.status ?? {}) as Record<string, unknown>;
    const generation = ds.metadata.generation ?? 0;
    const same = Object.entries(counts).every(([k, v]) => (status[k] ?? 0) === v);
    if (same && (ds.status?.observedGeneration ?? 0) >= generation) return;
    let toUpdate = deepCopy(ds);
    for (let attempt = 0; ; attempt++) {
      toUpdate.status = {
        ...(toUpdate.status ?? {}),
        ...counts,
        ...(observed ? { observedGeneration: generation } : {}),
      };
      try {
        await ctx.clients.daemonSets.updateStatus(toUpdate);
        return;
      } catch (err) {
        if (attempt >= 1) throw err;
        toUpdate = await ctx.clients.daemonSets.get(ds.metadata.namespace, ds.metadata.name ?? '');
      }
    }
  };

  // ---- sync -------------------------------------------------------------------

  const c = queueController(ctx, {
    name: 'daemonset',
    workers: 2,
    async sync(key) {
      const ds = daemonSets.indexer.get(key);
      if (!ds) {
        expectations.delete(key);
        return;
      }
      const nodeList = nodes.indexer.list();
      const sel = ds.spec?.selector;
      if (
        !sel ||
        (Object.keys(sel.matchLabels ?? {}).length === 0 && (sel.matchExpressions ?? []).length === 0)
      ) {
        recorder.event(
          ds,
          'Warning',
          SELECTING_ALL_REASON,
          'This daemon set is selecting all pods. A non-empty selector is required.',
        );
        return;
      }
      // While the DaemonSet is being deleted its revisions may be gone before
      // its pods, so its status cannot be computed: leave it.
      if (ds.metadata.deletionTimestamp) return;

      const { cur, old } = await constructHistory(ds);
      const hash = cur.metadata.labels?.[CONTROLLER_REVISION_HASH_LABEL_KEY] ?? '';
      if (!expectations.satisfied(key)) {
        // Our last writes are not in the cache yet: report, but do not act or
        // raise observedGeneration, as this generation was not processed.
        await updateStatus(ds, key, nodeList, hash, false);
        return;
      }
      let failure: unknown;
      try {
        await manage(ds, key, nodeList, hash);
        if (expectations.satisfied(key) && ds.spec?.updateStrategy?.type === 'RollingUpdate') {
          await rollingUpdate(ds, key, nodeList, hash);
        }
        // OnDelete: new pods replace old ones only as the user deletes them.
        await cleanupHistory(ds, old);
      } catch (err) {
        failure = err;
      }
      try {
        await updateStatus(ds, key, nodeList, hash, true);
      } catch (err) {
        if (!failure) throw err;
        log.warn('failed to update DaemonSet status', { key, error: String(err) });
      }
      if (failure) throw failure;
    },
    onRun() {
      const gc = () => {
        failedPodsBackoff.gc(ctx.clock.now());
        gcTimer = ctx.clock.setTimeout(gc, BACKOFF_GC_INTERVAL_MS);
      };
      gcTimer = ctx.clock.setTimeout(gc, BACKOFF_GC_INTERVAL_MS);
    },
    onStop() {
      if (gcTimer !== undefined) ctx.clock.clearTimeout(gcTimer);
    },
  });

  const enqueue = (ds: DaemonSet) => c.queue.add(keyOf(ds));

  // ---- event handlers: enqueue only -----------------------------------------

  daemonSets.on({
    add: enqueue,
    update: (_old, ds) => enqueue(ds),
    delete: (ds) => {
      // A DaemonSet re-created under the same name starts with clean expectations.
      expectations.delete(keyOf(ds));
      enqueue(ds);
    },
  });

  const podDeleted = (pod: Pod) => {
    const ds = resolveControllerRef(pod.metadata.namespace, pod);
    if (!ds) return;
    expectations.deletionObserved(keyOf(ds), keyOf(pod));
    enqueue(ds);
  };

  pods.on({
    add: (pod) => {
      // After a restart a pod can show up already being deleted.
      if (pod.metadata.deletionTimestamp) return podDeleted(pod);
      if (controllerRefOf(pod)) {
        const ds = resolveControllerRef(pod.metadata.namespace, pod);
        if (!ds) return;
        expectations.creationObserved(keyOf(ds));
        enqueue(ds);
        return;
      }
      for (const ds of daemonSetsMatching(pod)) enqueue(ds);
    },
    update: (old, pod) => {
      if (old.metadata.resourceVersion === pod.metadata.resourceVersion) return;
      // A graceful deletion starts now: replace the pod without waiting for it to go.
      if (pod.metadata.deletionTimestamp) return podDeleted(pod);
      const oldRef = controllerRefOf(old);
      const ref = controllerRefOf(pod);
      const refChanged = !jsonEqual(oldRef, ref);
      if (refChanged && oldRef) {
        const prev = resolveControllerRef(old.metadata.namespace, old);
        if (prev) enqueue(prev);
      }
      if (ref) {
        const ds = resolveControllerRef(pod.metadata.namespace, pod);
        if (ds) enqueue(ds);
        return;
      }
      if (refChanged || !jsonEqual(old.metadata.labels, pod.metadata.labels)) {
        for (const ds of daemonSetsMatching(pod)) enqueue(ds);
      }
    },
    delete: podDeleted,
  });

  // A node change matters to a DaemonSet only if it changes where the daemon
  // should run (labels, taints, ...); heartbeats do not.
  const fitChanged = (a: NodeFit, b: NodeFit) =>
    a.shouldRun !== b.shouldRun || a.shouldContinueRunning !== b.shouldContinueRunning;
  nodes.on({
    add: (node) => {
      for (const ds of daemonSets.indexer.list()) if (nodeShouldRunDaemonPod(node, ds).shouldRun) enqueue(ds);
    },
    update: (old, node) => {
      for (const ds of daemonSets.indexer.list()) {
        if (fitChanged(nodeShouldRunDaemonPod(old, ds), nodeShouldRunDaemonPod(node, ds))) enqueue(ds);
      }
    },
    // Not in upstream, which waits for a resync: the unbound pods pinned to a
    // deleted node are removed at once.
    delete: (node) => {
      const owners = new Set<string>();
      for (const pod of pods.indexer.list()) {
        if (targetNodeName(pod) !== node.metadata.name) continue;
        const ds = resolveControllerRef(pod.metadata.namespace, pod);
        if (ds) owners.add(keyOf(ds));
      }
      for (const key of owners) c.queue.add(key);
    },
  });

  const revisionChanged = (cr: ControllerRevision) => {
    if (controllerRefOf(cr)) {
      const ds = resolveControllerRef(cr.metadata.namespace, cr);
      if (ds) enqueue(ds);
      return;
    }
    for (const ds of daemonSetsMatching(cr)) enqueue(ds);
  };
  revisions.on({
    add: revisionChanged,
    update: (old, cr) => {
      if (old.metadata.resourceVersion === cr.metadata.resourceVersion) return;
      const oldDs = resolveControllerRef(old.metadata.namespace, old);
      if (oldDs && !jsonEqual(controllerRefOf(old), controllerRefOf(cr))) enqueue(oldDs);
      revisionChanged(cr);
    },
    delete: revisionChanged,
  });

  return c;
};

const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** The API server refused a create because the namespace is going away (NamespaceTerminatingCause). */
const namespaceTerminating = (err: unknown): boolean =>
  isApiError(err, 'Forbidden') &&
  ((err.status.details?.causes ?? []).some((c) => c.reason === 'NamespaceTerminating') ||
    err.message.endsWith('because it is being terminated'));
