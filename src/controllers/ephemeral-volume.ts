// The ephemeral volume controller (upstream's ephemeral-volume-controller,
// pkg/controller/volume/ephemeral): a pod's generic ephemeral volume
// (`ephemeral.volumeClaimTemplate`) is a PersistentVolumeClaim named
// <pod>-<volume>, made from the template and controlled by the pod, so the
// garbage collector deletes it with the pod. The kubelet and the scheduler
// treat the volume as that claim, and use it only if the pod owns it: a
// claim of that name made by anyone else is never taken over.
//
// A claim deleted while its pod lives is made again; a pod being deleted
// gets no claims.

import { isApiError } from '../api/errors.ts';
import { ephemeralClaimName } from '../api/pv-util.ts';
import type { PersistentVolumeClaim, Pod } from '../api/types/core-v1.ts';
import { type ControllerFactory, keyOf } from './context.ts';
import { queueController } from './controller.ts';
import { controllerRefOf } from './ownership.ts';

export const ephemeralVolumeController: ControllerFactory = (ctx) => {
  const pods = ctx.informers.informer('pods');
  const claims = ctx.informers.informer('persistentVolumeClaims');
  const recorder = ctx.recorder('ephemeral_volume');

  async function syncPod(pod: Pod): Promise<void> {
    const ns = pod.metadata.namespace ?? '';
    for (const v of pod.spec?.volumes ?? []) {
      const template = v.ephemeral?.volumeClaimTemplate;
      if (!template) continue;
      const name = ephemeralClaimName(pod, v);
      const existing = claims.indexer.get(`${ns}/${name}`);
      if (existing) {
        // Someone else's claim: the pod cannot start (the kubelet says why); nothing to make.
        continue;
      }
      const claim: PersistentVolumeClaim = {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: {
          name,
          namespace: ns,
          ...(template.metadata?.labels ? { labels: { ...template.metadata.labels } } : {}),
          ...(template.metadata?.annotations ? { annotations: { ...template.metadata.annotations } } : {}),
          ownerReferences: [
            {
              apiVersion: 'v1',
              kind: 'Pod',
              name: pod.metadata.name ?? '',
              uid: pod.metadata.uid ?? '',
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        },
        spec: structuredClone(template.spec ?? {}),
      };
      try {
        await ctx.clients.persistentVolumeClaims.create(ns, claim);
      } catch (err) {
        if (isApiError(err, 'AlreadyExists')) continue; // the cache was behind
        recorder.event(
          pod,
          'Warning',
          'FailedBinding',
          `PVC creation failed: ${String((err as Error).message ?? err)}`,
        );
        throw err;
      }
    }
  }

  const c = queueController(ctx, {
    name: 'ephemeral-volume',
    workers: 2,
    async sync(key) {
      const pod = pods.indexer.get(key);
      if (!pod || pod.metadata.deletionTimestamp) return;
      await syncPod(pod);
    },
  });

  const hasEphemeral = (pod: Pod) => (pod.spec?.volumes ?? []).some((v) => v.ephemeral);
  const enqueue = (pod: Pod) => {
    if (hasEphemeral(pod)) c.queue.add(keyOf(pod));
  };
  pods.on({ add: enqueue, update: (_o, pod) => enqueue(pod) });
  claims.on({
    // A claim deleted under its living pod is made again.
    delete(pvc) {
      const ref = controllerRefOf(pvc);
      if (ref?.kind !== 'Pod') return;
      const pod = pods.indexer.get(`${pvc.metadata.namespace}/${ref.name}`);
      if (pod && pod.metadata.uid === ref.uid) c.queue.add(keyOf(pod));
    },
  });
  return c;
};
