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
      const copy: PersistentVolume = structuredClone(pv);
      if (!pv.metadata.deletionTimestamp) {
        if (has) return;
        copy.metadata.finalizers = [...finalizers, PV_PROTECTION_FINALIZER];
      } else {
        // upstream's isVolumeInUse: the volume is Bound.
        if (!has || pv.status?.phase === 'Bound') return;
        copy.metadata.finalizers = finalizers.filter((f) => f !== PV_PROTECTION_FINALIZER);
      }
      await ctx.clients.persistentVolumes.update(copy);
    },
  });

  const enqueue = (pv: PersistentVolume) => c.queue.add(keyOf(pv));
  volumes.on({ add: enqueue, update: (_o, pv) => enqueue(pv) });
  return c;
};
