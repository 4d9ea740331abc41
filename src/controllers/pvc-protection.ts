// The PVC protection controller (upstream's pvc-protection-controller,
// pkg/controller/volume/pvcprotection): a claim keeps the
// kubernetes.io/pvc-protection finalizer while any pod that is not finished
// uses it, so deleting a claim in use waits for its pods. The finalizer is
// added here too for claims made before admission added it.
//
// Whether a pod uses the claim is asked of the informer first, then of the
// API server (a pod created a moment ago may not be in the cache yet), as
// upstream does before it lets a claim go.

import { PVC_PROTECTION_FINALIZER } from '../api/pv-util.ts';
import type { PersistentVolumeClaim, Pod } from '../api/types/core-v1.ts';
import { NAMESPACE_INDEX } from '../client/informer-factory.ts';
import { type ControllerFactory, keyOf } from './context.ts';
import { queueController } from './controller.ts';

const isTerminal = (pod: Pod) => pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';

/** The claims a pod's volumes name (a generic ephemeral volume's claim is <pod>-<volume>). */
export function podClaimNames(pod: Pod): string[] {
  const out: string[] = [];
  for (const v of pod.spec?.volumes ?? []) {
    if (v.persistentVolumeClaim?.claimName) out.push(v.persistentVolumeClaim.claimName);
    else if (v.ephemeral) out.push(`${pod.metadata.name}-${v.name}`);
  }
  return out;
}

const podUses = (pod: Pod, claim: string) => !isTerminal(pod) && podClaimNames(pod).includes(claim);

export const pvcProtectionController: ControllerFactory = (ctx) => {
  const claims = ctx.informers.informer('persistentVolumeClaims');
  const pods = ctx.informers.informer('pods');

  const c = queueController(ctx, {
    name: 'pvc-protection',
    workers: 5,
    async sync(key) {
      const pvc = claims.indexer.get(key);
      if (!pvc) return;
      const finalizers = pvc.metadata.finalizers ?? [];
      const has = finalizers.includes(PVC_PROTECTION_FINALIZER);
      if (!pvc.metadata.deletionTimestamp) {
        if (has) return;
        const copy = structuredClone(pvc);
        copy.metadata.finalizers = [...finalizers, PVC_PROTECTION_FINALIZER];
        await ctx.clients.persistentVolumeClaims.update(copy);
        return;
      }
      if (!has) return;
      const ns = pvc.metadata.namespace ?? '';
      const name = pvc.metadata.name ?? '';
      if (pods.indexer.byIndex(NAMESPACE_INDEX, ns).some((p) => podUses(p, name))) return;
      const live = await ctx.clients.pods.list(ns);
      if (live.items.some((p) => podUses(p, name))) return;
      const copy: PersistentVolumeClaim = structuredClone(pvc);
      copy.metadata.finalizers = finalizers.filter((f) => f !== PVC_PROTECTION_FINALIZER);
      await ctx.clients.persistentVolumeClaims.update(copy);
    },
  });

  const enqueue = (pvc: PersistentVolumeClaim) => c.queue.add(keyOf(pvc));
  claims.on({ add: enqueue, update: (_o, pvc) => enqueue(pvc) });
  // A pod that finished or went away may free the claims it used.
  const podChanged = (pod: Pod) => {
    for (const name of podClaimNames(pod)) {
      const pvc = claims.indexer.get(`${pod.metadata.namespace}/${name}`);
      if (pvc?.metadata.deletionTimestamp) enqueue(pvc);
    }
  };
  pods.on({ update: (_o, pod) => podChanged(pod), delete: podChanged });
  return c;
};
