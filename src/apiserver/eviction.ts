// The pods/eviction subresource, after upstream's
// pkg/registry/core/pod/storage/eviction.go: a pod is deleted only if its
// PodDisruptionBudget allows one more disruption; otherwise 429
// TooManyRequests, which `kubectl drain` retries.
//
// Pods that are not running yet (Pending), have finished, or are already
// being deleted are deleted without looking at budgets, as upstream. A pod
// that is not Ready does not count as healthy, so evicting it is allowed
// while the budget's healthy pods are enough.
//
// Deviation: budgets come from src/api/disruption.ts, which computes them
// from the matching pods when no disruption controller keeps PDB status.

import { disruptionBudget, isPodReady, pdbMatches } from '../api/disruption.ts';
import { ApiError, badRequest } from '../api/errors.ts';
import { isObject, type KubeObject, rfc3339 } from '../api/meta.ts';
import type { Pod } from '../api/types/core-v1.ts';
import type { PodDisruptionBudget } from '../api/types/policy-v1.ts';
import type { DeleteOptions, ResourceStorage } from './rest.ts';

export interface EvictionContext {
  pods: ResourceStorage;
  pdbs: ResourceStorage;
  now: () => Date;
}

/** The 429 a budget answers with; `cause` says which budget and why. */
function tooManyRequests(cause: string, retryAfterSeconds: number): ApiError {
  return new ApiError(
    429,
    'TooManyRequests',
    "Cannot evict pod as it would violate the pod's disruption budget.",
    {
      causes: [{ reason: 'DisruptionBudget', message: cause }],
      ...(retryAfterSeconds ? { retryAfterSeconds } : {}),
    },
  );
}

const phaseOf = (pod: Pod) => pod.status?.phase;

/** upstream's canIgnorePDB */
const canIgnorePDB = (pod: Pod) =>
  ['Succeeded', 'Failed', 'Pending'].includes(phaseOf(pod) ?? 'Pending') || !!pod.metadata.deletionTimestamp;

/** Evicts `name`; resolves when the pod is deleted (or marked), throws an ApiError otherwise. */
export async function evictPod(
  ctx: EvictionContext,
  namespace: string,
  name: string,
  eviction: unknown,
  dryRun: boolean,
): Promise<void> {
  const evictionName = isObject(eviction) && isObject(eviction.metadata) ? eviction.metadata.name : undefined;
  if (evictionName !== undefined && evictionName !== name) {
    throw badRequest('name in URL does not match name in Eviction object');
  }
  const options: DeleteOptions =
    isObject(eviction) && isObject(eviction.deleteOptions)
      ? { ...(eviction.deleteOptions as DeleteOptions) }
      : {};
  // DeleteOptions.dryRun is a list (["All"]) on the wire; the query's dryRun counts too.
  const listed = (options as { dryRun?: unknown }).dryRun;
  options.dryRun = dryRun || (Array.isArray(listed) ? listed.length > 0 : listed === true);
  const rvUnset = !options.preconditions?.resourceVersion;

  const pod = (await ctx.pods.get(namespace, name)) as KubeObject & Pod;
  if (canIgnorePDB(pod)) {
    const terminal = ['Succeeded', 'Failed'].includes(phaseOf(pod) ?? '') || !!pod.metadata.deletionTimestamp;
    // A Pending pod could turn Ready meanwhile: delete only the version we looked at.
    const opts = !terminal && rvUnset ? withResourceVersion(options, pod) : options;
    await deleteWithCondition(ctx, namespace, name, opts);
    return;
  }

  const pdbs = ((await ctx.pdbs.list(namespace, {})).items as PodDisruptionBudget[]).filter((pdb) =>
    pdbMatches(pdb, pod),
  );
  if (pdbs.length > 1) {
    throw new ApiError(
      500,
      'InternalError',
      'This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.',
    );
  }
  let opts = options;
  const pdb = pdbs[0];
  if (pdb) {
    const pods = (await ctx.pods.list(namespace, {})).items as Pod[];
    const budget = disruptionBudget(pdb, pods);
    const unhealthyAlwaysAllowed = pdb.spec?.unhealthyPodEvictionPolicy === 'AlwaysAllow';
    const notReady = !isPodReady(pod);
    if (
      notReady &&
      (unhealthyAlwaysAllowed ||
        (budget.currentHealthy >= budget.desiredHealthy && budget.desiredHealthy > 0))
    ) {
      // Unhealthy pods may go, unless one turns Ready meanwhile (then the precondition fails).
      opts = rvUnset ? withResourceVersion(options, pod) : options;
    } else {
      const pdbName = pdb.metadata.name ?? '';
      const current = pdb.status?.observedGeneration !== undefined;
      if (current && (pdb.status?.observedGeneration ?? 0) < (pdb.metadata.generation ?? 0)) {
        throw tooManyRequests(`The disruption budget ${pdbName} is still being processed by the server.`, 10);
      }
      if (budget.disruptionsAllowed <= 0) {
        throw tooManyRequests(
          `The disruption budget ${pdbName} needs ${budget.desiredHealthy} healthy pods and has ${budget.currentHealthy} currently`,
          0,
        );
      }
      // A budget kept by a disruption controller is spent here and the pod
      // listed in disruptedPods, so the controller does not count it as
      // available while it goes.
      if (current && !options.dryRun) {
        await ctx.pdbs.guaranteedUpdate(
          namespace,
          pdbName,
          (obj) => {
            const status = { ...((obj.status ?? {}) as NonNullable<PodDisruptionBudget['status']>) };
            if ((status.disruptionsAllowed ?? 0) <= 0) {
              throw tooManyRequests(`The disruption budget ${pdbName} has no disruptions left`, 0);
            }
            status.disruptionsAllowed = (status.disruptionsAllowed ?? 0) - 1;
            status.disruptedPods = { ...status.disruptedPods, [name]: rfc3339(ctx.now()) };
            return { ...obj, status };
          },
          { subresource: 'status' },
        );
      }
    }
  }
  try {
    await deleteWithCondition(ctx, namespace, name, opts);
  } catch (err) {
    // We added the precondition: a conflict means the pod changed; the client retries.
    if (err instanceof ApiError && err.code === 409 && opts !== options) {
      throw tooManyRequests(
        `The disruption budget ${pdb?.metadata.name} is still being processed by the server.`,
        10,
      );
    }
    throw err;
  }
}

function withResourceVersion(options: DeleteOptions, pod: KubeObject): DeleteOptions {
  return {
    ...options,
    preconditions: { ...options.preconditions, resourceVersion: pod.metadata.resourceVersion ?? '' },
  };
}

/**
 * Marks the pod DisruptionTarget (EvictionByEvictionAPI) before deleting it,
 * so its owner and users can tell an eviction from a crash, as upstream.
 */
async function deleteWithCondition(
  ctx: EvictionContext,
  namespace: string,
  name: string,
  options: DeleteOptions,
): Promise<void> {
  let opts = options;
  if (!options.dryRun) {
    const rv = options.preconditions?.resourceVersion;
    let stale = false;
    const updated = await ctx.pods.guaranteedUpdate(
      namespace,
      name,
      (obj) => {
        const pod = obj as KubeObject & Pod;
        if (pod.metadata.deletionTimestamp) return obj;
        if (rv && rv !== pod.metadata.resourceVersion) {
          stale = true; // the delete below reports the conflict
          return obj;
        }
        const conditions = (pod.status?.conditions ?? []).filter((c) => c.type !== 'DisruptionTarget');
        conditions.push({
          type: 'DisruptionTarget',
          status: 'True',
          reason: 'EvictionByEvictionAPI',
          message: 'Eviction API: evicting',
          lastTransitionTime: rfc3339(ctx.now()),
        });
        return { ...obj, status: { ...pod.status, conditions } } as KubeObject;
      },
      { subresource: 'status' },
    );
    // The precondition was met and we changed the pod ourselves: carry it over to our version.
    if (rv && !stale) {
      opts = {
        ...options,
        preconditions: {
          ...options.preconditions,
          resourceVersion: updated.object.metadata.resourceVersion ?? '',
        },
      };
    }
  }
  await ctx.pods.delete(namespace, name, opts);
}
