// The disruption controller (upstream's disruption-controller,
// pkg/controller/disruption/disruption.go): keeps each PodDisruptionBudget's
// status current — how many of its pods are expected, how many must stay
// healthy, how many are healthy now, and so how many voluntary disruptions
// (evictions) are allowed — for the eviction subresource to spend.
//
// For each PDB:
// - its pods are those of its namespace its selector matches (policy/v1: an
//   empty selector matches every pod, a missing one none);
// - currentHealthy: those Ready, not being deleted and not listed in
//   status.disruptedPods (approved for eviction, not yet gone);
// - an int minAvailable: expectedPods is the number of pods, desiredHealthy
//   is minAvailable;
// - a percentage minAvailable or a maxUnavailable: expectedPods is the sum
//   of the scale of the pods' controllers (ReplicaSet — or its Deployment —,
//   ReplicationController, StatefulSet), desiredHealthy the percentage of it
//   rounded up, or expectedPods - maxUnavailable (floored at 0);
// - disruptionsAllowed = currentHealthy - desiredHealthy, 0 when negative or
//   when no pods are expected; condition DisruptionAllowed says whether it is
//   above 0 (SufficientPods / InsufficientPods).
//
// disruptedPods entries older than DELETION_TIMEOUT_MS are dropped (the
// eviction did not happen), and the PDB is looked at again when the oldest
// would expire. Status is written through /status only when it changes.
//
// Pods with no controller are left out of a scale-based expectedPods, as
// upstream (which also records an UnmanagedPods event; not here). When a
// pod's controller cannot be resolved (a kind without a known scale, or one
// not in the cache), the sync fails safe as upstream's failSafe: status
// keeps its counts, disruptionsAllowed is 0 and DisruptionAllowed is False
// with reason SyncFailed, so no eviction gets through.

import { pdbMatches, pdbSelector, scaled } from '../api/disruption.ts';
import { deepCopy, jsonEqual, rfc3339 } from '../api/meta.ts';
import { isPodReady } from '../api/pod-util.ts';
import type { Pod } from '../api/types/core-v1.ts';
import type { Condition } from '../api/types/meta-v1.ts';
import type { PodDisruptionBudget, PodDisruptionBudgetStatus } from '../api/types/policy-v1.ts';
import { NAMESPACE_INDEX } from '../client/informer-factory.ts';
import { type ControllerContext, type ControllerFactory, keyOf } from './context.ts';
import { queueController } from './controller.ts';
import { controllerRefOf } from './ownership.ts';

/** How long an approved eviction may take before its pod counts again (upstream's DeletionTimeout). */
export const DELETION_TIMEOUT_MS = 2 * 60 * 1000;

export const DISRUPTION_ALLOWED_CONDITION = 'DisruptionAllowed';
export const SUFFICIENT_PODS_REASON = 'SufficientPods';
export const INSUFFICIENT_PODS_REASON = 'InsufficientPods';
export const SYNC_FAILED_REASON = 'SyncFailed';

/** A PDB whose expected pod count cannot be computed (upstream's getExpectedScale errors). */
class ExpectedCountError extends Error {}

export interface DisruptionCounts {
  expectedPods: number;
  desiredHealthy: number;
  currentHealthy: number;
  disruptionsAllowed: number;
}

/**
 * The arithmetic of upstream's getExpectedPodCount and updatePdbStatus.
 * `scale` gives the sum of the pods' controllers' scale (for a percentage
 * minAvailable or a maxUnavailable).
 */
export function computeDisruption(
  pdb: PodDisruptionBudget,
  podCount: number,
  currentHealthy: number,
  scale: () => number,
): DisruptionCounts {
  const spec = pdb.spec ?? {};
  let expectedPods = 0;
  let desiredHealthy = 0;
  if (spec.maxUnavailable !== undefined && spec.maxUnavailable !== null) {
    expectedPods = scale();
    desiredHealthy = Math.max(0, expectedPods - scaled(spec.maxUnavailable, expectedPods));
  } else if (spec.minAvailable !== undefined && spec.minAvailable !== null) {
    if (typeof spec.minAvailable === 'number') {
      expectedPods = podCount;
      desiredHealthy = spec.minAvailable;
    } else {
      expectedPods = scale();
      desiredHealthy = scaled(spec.minAvailable, expectedPods);
    }
  }
  let disruptionsAllowed = currentHealthy - desiredHealthy;
  if (expectedPods <= 0 || disruptionsAllowed <= 0) disruptionsAllowed = 0;
  return { expectedPods, desiredHealthy, currentHealthy, disruptionsAllowed };
}

export const disruptionController: ControllerFactory = (ctx: ControllerContext) => {
  const pdbs = ctx.informers.informer('podDisruptionBudgets');
  const pods = ctx.informers.informer('pods');
  const replicaSets = ctx.informers.informer('replicaSets');
  const deployments = ctx.informers.informer('deployments');
  const rcs = ctx.informers.informer('replicationControllers');
  const statefulSets = ctx.informers.informer('statefulSets');
  const log = ctx.log.with({ controller: 'disruption' });
  const recorder = ctx.recorder('controllermanager');

  const c = queueController(ctx, { name: 'disruption', workers: 5, sync: (key) => sync(key) });
  const enqueue = (pdb: PodDisruptionBudget) => c.queue.add(keyOf(pdb));

  pdbs.on({ add: enqueue, update: (_old, cur) => enqueue(cur), delete: () => {} });

  /** Every PDB selecting the pod (upstream picks the first; a pod under several is an error it warns of). */
  const enqueueFor = (pod: Pod) => {
    for (const pdb of pdbs.indexer.byIndex(NAMESPACE_INDEX, pod.metadata.namespace ?? ''))
      if (pdbMatches(pdb, pod)) enqueue(pdb);
  };
  pods.on({
    add: enqueueFor,
    update: (old, cur) => {
      enqueueFor(cur);
      if (!jsonEqual(old.metadata.labels ?? {}, cur.metadata.labels ?? {})) enqueueFor(old);
    },
    delete: enqueueFor,
  });

  /** The scale of a pod's controller, with its uid (upstream's finders), or undefined if unknown. */
  function controllerScale(pod: Pod): { uid: string; replicas: number } | undefined {
    const ref = controllerRefOf(pod);
    if (!ref) return undefined;
    const ns = pod.metadata.namespace ?? '';
    const same = <T extends { metadata: { uid?: string } }>(o: T | undefined, uid: string) =>
      o && o.metadata.uid === uid ? o : undefined;
    if (ref.kind === 'ReplicaSet' && ref.apiVersion.startsWith('apps/')) {
      const rs = same(replicaSets.indexer.get(`${ns}/${ref.name}`), ref.uid);
      if (!rs) return undefined;
      // A ReplicaSet of a Deployment: the Deployment's scale counts.
      const dref = controllerRefOf(rs);
      if (dref?.kind === 'Deployment' && dref.apiVersion.startsWith('apps/')) {
        const d = same(deployments.indexer.get(`${ns}/${dref.name}`), dref.uid);
        if (!d) return undefined;
        return { uid: dref.uid, replicas: d.spec?.replicas ?? 1 };
      }
      return { uid: ref.uid, replicas: rs.spec?.replicas ?? 1 };
    }
    if (ref.kind === 'ReplicationController' && ref.apiVersion === 'v1') {
      const rc = same(rcs.indexer.get(`${ns}/${ref.name}`), ref.uid);
      return rc ? { uid: ref.uid, replicas: rc.spec?.replicas ?? 1 } : undefined;
    }
    if (ref.kind === 'StatefulSet' && ref.apiVersion.startsWith('apps/')) {
      const ss = same(statefulSets.indexer.get(`${ns}/${ref.name}`), ref.uid);
      return ss ? { uid: ref.uid, replicas: ss.spec?.replicas ?? 1 } : undefined;
    }
    return undefined;
  }

  /** upstream's getExpectedScale: the sum over the pods' distinct controllers. */
  function expectedScale(matching: Pod[]): number {
    const scales = new Map<string, number>();
    for (const pod of matching) {
      if (!controllerRefOf(pod)) continue; // unmanaged: not counted
      const s = controllerScale(pod);
      if (!s) throw new ExpectedCountError(`found no controllers for pod "${pod.metadata.name}"`);
      scales.set(s.uid, s.replicas);
    }
    let sum = 0;
    for (const r of scales.values()) sum += r;
    return sum;
  }

  async function sync(key: string): Promise<void> {
    const pdb = pdbs.indexer.get(key);
    if (!pdb) return;
    const selector = pdbSelector(pdb);
    const matching = selector
      ? pods.indexer
          .byIndex(NAMESPACE_INDEX, pdb.metadata.namespace ?? '')
          .filter((p) => selector.matches(p.metadata.labels ?? {}))
      : [];

    // upstream's buildDisruptedPodMap: keep entries of live pods not yet expired.
    const now = ctx.now().getTime();
    const old = pdb.status?.disruptedPods ?? {};
    const disruptedPods: Record<string, string> = {};
    let recheckMs: number | undefined;
    for (const pod of matching) {
      const name = pod.metadata.name ?? '';
      if (pod.metadata.deletionTimestamp || !Object.hasOwn(old, name)) continue;
      const at = Date.parse(old[name] ?? '');
      const expires = (Number.isNaN(at) ? 0 : at) + DELETION_TIMEOUT_MS;
      if (expires <= now) {
        log('pod was expected to be deleted but the eviction did not happen', { pdb: key, pod: name });
        continue;
      }
      disruptedPods[name] = old[name] ?? '';
      recheckMs = Math.min(recheckMs ?? Number.POSITIVE_INFINITY, expires - now);
    }

    const currentHealthy = matching.filter(
      (p) =>
        !p.metadata.deletionTimestamp &&
        !Object.hasOwn(disruptedPods, p.metadata.name ?? '') &&
        isPodReady(p),
    ).length;
    let counts: DisruptionCounts;
    try {
      counts = computeDisruption(pdb, matching.length, currentHealthy, () => expectedScale(matching));
    } catch (err) {
      if (!(err instanceof ExpectedCountError)) throw err;
      recorder.event(
        pdb,
        'Warning',
        'CalculateExpectedPodCountFailed',
        `Failed to calculate the number of expected pods: ${err.message}`,
      );
      return failSafe(pdb, err.message);
    }

    await updateStatus(pdb, counts, disruptedPods);
    if (recheckMs !== undefined) c.queue.addAfter(key, recheckMs);
  }

  /**
   * upstream's failSafe: no disruption is allowed until the PDB syncs again.
   * observedGeneration stays (0 for a PDB never synced), so the eviction
   * subresource also answers "still being processed".
   */
  async function failSafe(pdb: PodDisruptionBudget, message: string): Promise<void> {
    const old = pdb.status ?? {};
    const conditions = old.conditions ?? [];
    const existing = conditions.find((x) => x.type === DISRUPTION_ALLOWED_CONDITION);
    const observedGeneration = old.observedGeneration ?? 0;
    if (
      old.disruptionsAllowed === 0 &&
      old.observedGeneration === observedGeneration &&
      existing?.status === 'False' &&
      existing.reason === SYNC_FAILED_REASON &&
      existing.message === message
    )
      return;
    const copy = deepCopy(pdb);
    copy.status = {
      ...old,
      observedGeneration,
      disruptionsAllowed: 0,
      conditions: [
        ...conditions.filter((x) => x.type !== DISRUPTION_ALLOWED_CONDITION),
        {
          type: DISRUPTION_ALLOWED_CONDITION,
          status: 'False',
          reason: SYNC_FAILED_REASON,
          message,
          observedGeneration,
          lastTransitionTime:
            existing?.status === 'False' && existing.lastTransitionTime
              ? existing.lastTransitionTime
              : rfc3339(ctx.now()),
        },
      ],
    };
    await ctx.clients.podDisruptionBudgets.updateStatus(copy);
  }

  async function updateStatus(
    pdb: PodDisruptionBudget,
    counts: DisruptionCounts,
    disruptedPods: Record<string, string>,
  ): Promise<void> {
    const old = pdb.status ?? {};
    const generation = pdb.metadata.generation ?? 0;
    const allowed = counts.disruptionsAllowed > 0;
    const want: Condition = {
      type: DISRUPTION_ALLOWED_CONDITION,
      status: allowed ? 'True' : 'False',
      reason: allowed ? SUFFICIENT_PODS_REASON : INSUFFICIENT_PODS_REASON,
      message: '',
      observedGeneration: generation,
    };
    const conditions = old.conditions ?? [];
    const existing = conditions.find((x) => x.type === DISRUPTION_ALLOWED_CONDITION);
    const conditionCurrent =
      existing !== undefined &&
      existing.status === want.status &&
      existing.reason === want.reason &&
      (existing.message ?? '') === want.message &&
      existing.observedGeneration === generation;
    if (
      (old.expectedPods ?? 0) === counts.expectedPods &&
      (old.desiredHealthy ?? 0) === counts.desiredHealthy &&
      (old.currentHealthy ?? 0) === counts.currentHealthy &&
      (old.disruptionsAllowed ?? 0) === counts.disruptionsAllowed &&
      jsonEqual(old.disruptedPods ?? {}, disruptedPods) &&
      old.observedGeneration === generation &&
      conditionCurrent
    )
      return;
    // apimeta.SetStatusCondition: the transition time moves only when the status does.
    const lastTransitionTime =
      existing && existing.status === want.status && existing.lastTransitionTime
        ? existing.lastTransitionTime
        : rfc3339(ctx.now());
    const status: PodDisruptionBudgetStatus = {
      ...old,
      observedGeneration: generation,
      ...counts,
      conditions: [
        ...conditions.filter((x) => x.type !== DISRUPTION_ALLOWED_CONDITION),
        { ...want, lastTransitionTime },
      ],
    };
    if (Object.keys(disruptedPods).length > 0) status.disruptedPods = disruptedPods;
    else delete status.disruptedPods;
    const copy = deepCopy(pdb);
    copy.status = status;
    // A conflict (stale cache, or an eviction spending the budget) is retried with a fresh cache.
    await ctx.clients.podDisruptionBudgets.updateStatus(copy);
  }

  return c;
};
