// The PV protection controller (upstream's pv-protection-controller,
// pkg/controller/volume/pvprotection): a volume keeps the
// kubernetes.io/pv-protection finalizer while it is Bound to a claim, so
// deleting a volume in use waits until the claim lets it go.

import { PV_PROTECTION_FINALIZER } from '../api/pv-util.ts';
import type { PersistentVolume } from '../api/types/core-v1.ts';
import { type ControllerFactory, keyOf } from './context.ts';
import { queueController } from './controller.ts';

export const pvProtectionController: ControllerFactory = (ctx) => {
  const volumes = ctx.informers.informer('persistentVolumes');

  const c = queueController(ctx, {
    name: 'pv-protection',
    workers: 1,
    async sync(key) {
      const pv = volumes.indexer.get(key);
      if (!pv) return;
      const finalizers = pv.metadata.finalizers ?? [];
      const has = finalizers.includes(PV_PROTECTION_FINALIZER);
      let wanted: string[];
      if (!pv.metadata.deletionTimestamp) {
        if (has) return;
        wanted = [...finalizers, PV_PROTECTION_FINALIZER];
      } else {
        // upstream's isVolumeInUse: the volume is Bound.
        if (!has || pv.status?.phase === 'Bound') return;
        wanted = finalizers.filter((f) => f !== PV_PROTECTION_FINALIZER);
      }
      // Copied only when there is something to write: most syncs change nothing.
      const copy: PersistentVolume = structuredClone(pv);
      copy.metadata.finalizers = wanted;
      await ctx.clients.persistentVolumes.update(copy);
    },
  });

  const enqueue = (pv: PersistentVolume) => c.queue.add(keyOf(pv));
  volumes.on({ add: enqueue, update: (_o, pv) => enqueue(pv) });
  return c;
};
