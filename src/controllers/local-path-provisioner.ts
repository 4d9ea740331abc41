// The built-in local-path provisioner: k3s's default storage, as rancher's
// local-path-provisioner (provisioner name rancher.io/local-path) runs it,
// in the controller manager instead of a pod.
//
// A claim handed to rancher.io/local-path by the PV binder (the
// volume.kubernetes.io/storage-provisioner annotation) gets a hostPath
// volume pvc-<claim uid> at <root>/pvc-<uid>_<namespace>_<name> on the node
// the scheduler chose (volume.kubernetes.io/selected-node), with
// nodeAffinity for that node, so every pod of the claim lands where its data
// is. The volume is created pre-bound to the claim; the binder completes the
// binding. The server never touches a node's disk: the kubelet makes the
// directory when it mounts the volume (hostPath type DirectoryOrCreate), and
// the node's local-path cleaner removes directories whose volume is gone.
//
// A Released volume with reclaim policy Delete is deleted here, as the
// external provisioner library does once its Delete has run.
//
// A claim of a class with allowVolumeExpansion: true that asks for more than
// its volume has is resized as a CSI driver's external-resizer does it: the
// volume's capacity is raised (a directory has no size of its own to grow),
// and the claim gets FileSystemResizePending, which the kubelet of the node
// using it clears once it has done the node's part (volume-manager.ts).
// rancher's provisioner does not resize; Skiff's can, as nothing is allocated.
// https://github.com/rancher/local-path-provisioner/blob/master/provisioner.go

import { join } from 'node:path';
import { isApiError } from '../api/errors.ts';
import { rfc3339 } from '../api/meta.ts';
import {
  ANN_PROVISIONED_BY,
  ANN_SELECTED_NODE,
  ANN_STORAGE_PROVISIONER,
  claimClass,
  claimRefFor,
} from '../api/pv-util.ts';
import { compareQuantity, parseQuantity } from '../api/quantity.ts';
import type { PersistentVolume, PersistentVolumeClaim } from '../api/types/core-v1.ts';
import { type ControllerFactory, keyOf } from './context.ts';
import { queueController } from './controller.ts';

export const LOCAL_PATH_PROVISIONER = 'rancher.io/local-path';
export const LOCAL_PATH_STORAGE_CLASS = 'local-path';
const HOSTNAME_LABEL = 'kubernetes.io/hostname';

/** The directory of a claim's volume under the storage root (rancher's <root>/<pv name>_<ns>_<claim>). */
export const localPathDir = (root: string, pvc: PersistentVolumeClaim) =>
  join(root, `pvc-${pvc.metadata.uid}_${pvc.metadata.namespace}_${pvc.metadata.name}`);

const CLAIM = 'claim:';
const VOLUME = 'volume:';

export const localPathProvisionerController: ControllerFactory = (ctx) => {
  const claims = ctx.informers.informer('persistentVolumeClaims');
  const volumes = ctx.informers.informer('persistentVolumes');
  const classes = ctx.informers.informer('storageClasses');
  const nodes = ctx.informers.informer('nodes');
  const recorder = ctx.recorder(LOCAL_PATH_PROVISIONER);
  const root = ctx.options.defaultLocalStoragePath;

  async function provision(pvc: PersistentVolumeClaim): Promise<void> {
    const name = `pvc-${pvc.metadata.uid}`;
    if (volumes.indexer.get(name)) return;
    const sc = classes.indexer.get(claimClass(pvc));
    if (sc?.provisioner !== LOCAL_PATH_PROVISIONER) return;
    const claimKey = `${pvc.metadata.namespace}/${pvc.metadata.name}`;
    const nodeName = pvc.metadata.annotations?.[ANN_SELECTED_NODE];
    if (!nodeName) {
      recorder.event(
        pvc,
        'Warning',
        'ProvisioningFailed',
        'failed to provision volume with StorageClass "' +
          `${sc.metadata.name}": configuration error, no node was specified`,
      );
      return;
    }
    if ((pvc.spec?.volumeMode ?? 'Filesystem') !== 'Filesystem') {
      recorder.event(
        pvc,
        'Warning',
        'ProvisioningFailed',
        `failed to provision volume with StorageClass "${sc.metadata.name}": Only support Filesystem volumeMode`,
      );
      return;
    }
    recorder.event(
      pvc,
      'Normal',
      'Provisioning',
      `External provisioner is provisioning volume for claim "${claimKey}"`,
    );
    const node = nodes.indexer.get(nodeName);
    const hostname = node?.metadata.labels?.[HOSTNAME_LABEL] ?? nodeName;
    const pv: PersistentVolume = {
      metadata: {
        name,
        annotations: {
          [ANN_PROVISIONED_BY]: LOCAL_PATH_PROVISIONER,
          'local.path.provisioner/selected-node': nodeName,
        },
      },
      spec: {
        capacity: { storage: pvc.spec?.resources?.requests?.storage ?? '0' },
        accessModes: pvc.spec?.accessModes ?? ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: sc.reclaimPolicy ?? 'Delete',
        storageClassName: sc.metadata.name ?? '',
        volumeMode: 'Filesystem',
        hostPath: { path: localPathDir(root, pvc), type: 'DirectoryOrCreate' },
        nodeAffinity: {
          required: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: HOSTNAME_LABEL, operator: 'In', values: [hostname] }] },
            ],
          },
        },
        claimRef: claimRefFor(pvc),
        ...(sc.mountOptions ? { mountOptions: sc.mountOptions } : {}),
      },
    };
    try {
      await ctx.clients.persistentVolumes.create(undefined, pv);
    } catch (err) {
      if (!isApiError(err, 'AlreadyExists')) throw err;
      return;
    }
    recorder.event(pvc, 'Normal', 'ProvisioningSucceeded', `Successfully provisioned volume ${name}`);
  }

  /** Whether `a` is more storage than `b` (false for a missing or malformed one). */
  const more = (a: string | undefined, b: string | undefined) => {
    try {
      return !!a && !!b && compareQuantity(parseQuantity(a), parseQuantity(b)) > 0;
    } catch {
      return false;
    }
  };

  async function expand(pvc: PersistentVolumeClaim): Promise<void> {
    const pv = volumes.indexer.get(pvc.spec?.volumeName ?? '');
    if (!pv || pv.metadata.annotations?.[ANN_PROVISIONED_BY] !== LOCAL_PATH_PROVISIONER) return;
    if (pvc.status?.phase !== 'Bound' || pv.spec?.claimRef?.uid !== pvc.metadata.uid) return;
    const want = pvc.spec?.resources?.requests?.storage;
    if (!more(want, pv.spec?.capacity?.storage)) return;
    if (classes.indexer.get(claimClass(pvc))?.allowVolumeExpansion !== true) return;
    recorder.event(pvc, 'Normal', 'Resizing', `External resizer is resizing volume ${pv.metadata.name}`);
    await ctx.clients.persistentVolumes.patch(undefined, pv.metadata.name ?? '', 'merge', {
      spec: { capacity: { storage: want } },
    });
    const conditions = (pvc.status?.conditions ?? []).filter(
      (c) => c.type !== 'Resizing' && c.type !== 'FileSystemResizePending',
    );
    conditions.push({
      type: 'FileSystemResizePending',
      status: 'True',
      lastTransitionTime: rfc3339(ctx.now()),
      message: 'Waiting for user to (re-)start a pod to finish file system resize of volume on node.',
    });
    await ctx.clients.persistentVolumeClaims.patch(
      pvc.metadata.namespace ?? '',
      pvc.metadata.name ?? '',
      'merge',
      {
        status: {
          conditions,
          allocatedResources: { storage: want },
          allocatedResourceStatuses: { storage: 'NodeResizePending' },
        },
      },
      { subresource: 'status' },
    );
    recorder.event(pvc, 'Normal', 'FileSystemResizeRequired', 'Require file system resize of volume on node');
  }

  const c = queueController(ctx, {
    name: 'local-path-provisioner',
    workers: 2,
    async sync(key) {
      if (key.startsWith(CLAIM)) {
        const pvc = claims.indexer.get(key.slice(CLAIM.length));
        if (!pvc || pvc.metadata.deletionTimestamp) return;
        if (pvc.spec?.volumeName) return expand(pvc);
        if (pvc.metadata.annotations?.[ANN_STORAGE_PROVISIONER] !== LOCAL_PATH_PROVISIONER) return;
        return provision(pvc);
      }
      const pv = volumes.indexer.get(key.slice(VOLUME.length));
      if (!pv || pv.metadata.deletionTimestamp) return;
      if (pv.metadata.annotations?.[ANN_PROVISIONED_BY] !== LOCAL_PATH_PROVISIONER) return;
      if (pv.status?.phase !== 'Released' || pv.spec?.persistentVolumeReclaimPolicy !== 'Delete') return;
      try {
        await ctx.clients.persistentVolumes.delete(undefined, pv.metadata.name ?? '', {
          preconditions: { uid: pv.metadata.uid ?? '' },
        });
      } catch (err) {
        if (!isApiError(err, 'NotFound')) throw err;
      }
    },
  });
  const enqueueClaim = (pvc: PersistentVolumeClaim) => c.queue.add(`${CLAIM}${keyOf(pvc)}`);
  const enqueueVolume = (pv: PersistentVolume) => c.queue.add(`${VOLUME}${keyOf(pv)}`);
  claims.on({ add: enqueueClaim, update: (_o, pvc) => enqueueClaim(pvc) });
  volumes.on({ add: enqueueVolume, update: (_o, pv) => enqueueVolume(pv) });
  return c;
};
