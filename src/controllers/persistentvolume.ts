// The PersistentVolume controller's binder (upstream's persistentvolume-binder,
// pkg/controller/volume/persistentvolume/pv_controller.go): it binds claims
// to volumes, keeps the phases of both, hands claims with no matching volume
// to their class's provisioner, and reclaims volumes whose claim is gone.
//
// A binding is two writes, and either may be seen alone:
//   1. the volume's spec.claimRef names the claim (with its uid), annotated
//      pv.kubernetes.io/bound-by-controller when the controller chose it;
//      then its status.phase Bound;
//   2. the claim's spec.volumeName names the volume, annotated
//      pv.kubernetes.io/bind-completed (and bound-by-controller); then its
//      status.phase Bound, with the volume's capacity and access modes.
// Step 1 is a compare-and-swap on the volume's resourceVersion, so of two
// claims racing for one volume exactly one wins; the other conflicts, is
// retried, and then sees the volume taken. Should the controller stop
// between the steps, the next sync finds the volume pre-bound to the claim
// and finishes.
//
// Phases: a volume is Pending until first synced, then Available, Bound,
// Released (its claim is gone) or Failed (reclaim impossible). A claim is
// Pending, Bound, or Lost (bound once, its volume since gone).
//
// Reclaim: Retain keeps a Released volume (an administrator removes its
// claimRef to make it Available again). Delete leaves a provisioned volume
// to its provisioner (pv.kubernetes.io/provisioned-by), which removes the
// data and then the object, as external provisioners do; a Delete volume
// nobody provisioned cannot be deleted by any plugin here, and turns Failed.
//
// Provisioning: a claim of a class with a provisioner and no matching volume
// is annotated volume.kubernetes.io/storage-provisioner; the provisioner
// takes it from there. For WaitForFirstConsumer classes, only once the
// scheduler has written volume.kubernetes.io/selected-node.

import { isApiError } from '../api/errors.ts';
import {
  ANN_BETA_STORAGE_PROVISIONER,
  ANN_BIND_COMPLETED,
  ANN_BOUND_BY_CONTROLLER,
  ANN_PROVISIONED_BY,
  ANN_SELECTED_NODE,
  ANN_STORAGE_PROVISIONER,
  claimClass,
  claimRefFor,
  findMatchingVolume,
  isVolumeBoundToClaim,
  isWaitForFirstConsumer,
  volumeUnfitReason,
} from '../api/pv-util.ts';
import type { PersistentVolume, PersistentVolumeClaim } from '../api/types/core-v1.ts';
import { type ControllerFactory, keyOf } from './context.ts';
import { queueController } from './controller.ts';

const CLAIM = 'claim:';
const VOLUME = 'volume:';

export const MSG_WAIT_FOR_FIRST_CONSUMER = 'waiting for first consumer to be created before binding';
export const externalProvisioningMessage = (provisioner: string) =>
  `Waiting for a volume to be created either by the external provisioner '${provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.`;

const annotated = (o: { metadata: { annotations?: Record<string, string> } }, key: string) =>
  o.metadata.annotations?.[key] !== undefined;

export const persistentVolumeBinderController: ControllerFactory = (ctx) => {
  const volumes = ctx.informers.informer('persistentVolumes');
  const claims = ctx.informers.informer('persistentVolumeClaims');
  const classes = ctx.informers.informer('storageClasses');
  const nodes = ctx.informers.informer('nodes');
  const recorder = ctx.recorder('persistentvolume-controller');
  const now = () =>
    ctx
      .now()
      .toISOString()
      .replace(/\.\d+Z$/, 'Z');

  // Volumes this controller has just chosen for a claim, by name, with the
  // claim's key: the informer shows the claimRef only a moment later, and a
  // sync of another claim meanwhile must not pick the same volume (it would
  // lose the compare-and-swap and back off). Upstream's binder runs one
  // claim worker; this one runs several, with this assume cache between
  // them. An entry goes once the cache shows the volume bound, or the
  // binding failed.
  const assumed = new Map<string, string>();

  // --- writes -----------------------------------------------------------------

  async function setVolumePhase(
    pv: PersistentVolume,
    phase: string,
    message = '',
  ): Promise<PersistentVolume> {
    if (pv.status?.phase === phase && (pv.status?.message ?? '') === message) return pv;
    const copy = structuredClone(pv);
    copy.status = {
      ...copy.status,
      phase,
      lastPhaseTransitionTime: now(),
    };
    if (message) copy.status.message = message;
    else delete copy.status.message;
    return ctx.clients.persistentVolumes.updateStatus(copy);
  }

  async function setClaimBound(pvc: PersistentVolumeClaim, pv: PersistentVolume): Promise<void> {
    const status = pvc.status ?? {};
    const modes = pv.spec?.accessModes ?? [];
    // The capacity only as the claim becomes Bound, as upstream's
    // updateClaimStatus: later the two differ on purpose while a resize
    // waits for the node to grow the filesystem (FileSystemResizePending).
    const becoming = status.phase !== 'Bound';
    const capacity = becoming ? (pv.spec?.capacity ?? {}) : (status.capacity ?? {});
    if (!becoming && JSON.stringify(status.accessModes ?? []) === JSON.stringify(modes)) return;
    const copy = structuredClone(pvc);
    copy.status = { ...copy.status, phase: 'Bound', capacity, accessModes: modes };
    await ctx.clients.persistentVolumeClaims.updateStatus(copy);
  }

  async function setClaimPhase(pvc: PersistentVolumeClaim, phase: 'Pending' | 'Lost'): Promise<void> {
    if ((pvc.status?.phase ?? 'Pending') === phase && pvc.status?.phase) return;
    const copy = structuredClone(pvc);
    copy.status = { ...copy.status, phase };
    if (phase === 'Pending') {
      delete copy.status.capacity;
      delete copy.status.accessModes;
    }
    await ctx.clients.persistentVolumeClaims.updateStatus(copy);
  }

  /** Step 1: the volume's claimRef (upstream bindVolumeToClaim), then its phase Bound. */
  async function bindVolume(pv: PersistentVolume, pvc: PersistentVolumeClaim): Promise<PersistentVolume> {
    let bound = pv;
    const ref = pv.spec?.claimRef;
    if (!ref || ref.uid !== pvc.metadata.uid) {
      const copy = structuredClone(pv);
      copy.spec ??= {};
      copy.spec.claimRef = claimRefFor(pvc);
      // A claimRef the user wrote (pre-bound) stays the user's.
      if (!ref)
        copy.metadata.annotations = { ...copy.metadata.annotations, [ANN_BOUND_BY_CONTROLLER]: 'yes' };
      bound = await ctx.clients.persistentVolumes.update(copy);
    }
    return setVolumePhase(bound, 'Bound');
  }

  /** Step 2: the claim's volumeName and annotations (upstream bindClaimToVolume), then its status. */
  async function bindClaim(pvc: PersistentVolumeClaim, pv: PersistentVolume): Promise<void> {
    let claim = pvc;
    const name = pv.metadata.name ?? '';
    if (claim.spec?.volumeName !== name || !annotated(claim, ANN_BIND_COMPLETED)) {
      const copy = structuredClone(claim);
      const byController = !copy.spec?.volumeName;
      copy.spec = { ...copy.spec, volumeName: name };
      copy.metadata.annotations = {
        ...copy.metadata.annotations,
        [ANN_BIND_COMPLETED]: 'yes',
        ...(byController ? { [ANN_BOUND_BY_CONTROLLER]: 'yes' } : {}),
      };
      claim = await ctx.clients.persistentVolumeClaims.update(copy);
    }
    await setClaimBound(claim, pv);
  }

  async function bind(pv: PersistentVolume, pvc: PersistentVolumeClaim): Promise<void> {
    const bound = await bindVolume(pv, pvc);
    await bindClaim(pvc, bound);
  }

  // --- claims -----------------------------------------------------------------

  async function syncUnboundClaim(pvc: PersistentVolumeClaim): Promise<void> {
    const volumeName = pvc.spec?.volumeName;
    if (!volumeName) {
      const cls = claimClass(pvc);
      const sc = cls ? classes.indexer.get(cls) : undefined;
      const selectedNode = pvc.metadata.annotations?.[ANN_SELECTED_NODE];
      const delayBinding = isWaitForFirstConsumer(sc);
      const node = selectedNode ? nodes.indexer.get(selectedNode) : undefined;
      const claimKey = keyOf(pvc);
      const excluded = new Set<string>();
      for (const [name, owner] of assumed) if (owner !== claimKey) excluded.add(name);
      const pv = findMatchingVolume(pvc, volumes.indexer.list(), {
        delayBinding,
        excluded,
        ...(node ? { node } : {}),
      });
      if (pv) {
        const name = pv.metadata.name ?? '';
        assumed.set(name, claimKey);
        try {
          return await bind(pv, pvc);
        } catch (err) {
          assumed.delete(name);
          throw err;
        }
      }
      if (delayBinding && !selectedNode) {
        recorder.event(pvc, 'Normal', 'WaitForFirstConsumer', MSG_WAIT_FOR_FIRST_CONSUMER);
        return setClaimPhase(pvc, 'Pending');
      }
      if (!cls) {
        recorder.event(
          pvc,
          'Normal',
          'FailedBinding',
          'no persistent volumes available for this claim and no storage class is set',
        );
        return setClaimPhase(pvc, 'Pending');
      }
      if (!sc) {
        recorder.event(
          pvc,
          'Warning',
          'ProvisioningFailed',
          `storageclass.storage.k8s.io "${cls}" not found`,
        );
        return setClaimPhase(pvc, 'Pending');
      }
      return provisionClaim(pvc, sc.provisioner ?? '');
    }
    // The claim names its volume (pre-bound by the user, or step 2 half done).
    const pv = volumes.indexer.get(volumeName);
    if (!pv) {
      // The volume may not exist yet; its creation enqueues the claim.
      return setClaimPhase(pvc, 'Pending');
    }
    if (!pv.spec?.claimRef || isVolumeBoundToClaim(pv, pvc)) {
      if (!pv.spec?.claimRef) {
        const why = volumeUnfitReason(pv, pvc);
        if (why) {
          recorder.event(
            pvc,
            'Warning',
            'FailedBinding',
            `Cannot bind to requested volume "${volumeName}": ${why}`,
          );
          return setClaimPhase(pvc, 'Pending');
        }
      }
      return bind(pv, pvc);
    }
    // The volume belongs to another claim.
    if (annotated(pvc, ANN_BOUND_BY_CONTROLLER)) {
      // We chose it, and lost it: start over (upstream: a controller-bound claim is never pre-bound).
      const copy = structuredClone(pvc);
      delete copy.spec?.volumeName;
      delete copy.metadata.annotations?.[ANN_BOUND_BY_CONTROLLER];
      await ctx.clients.persistentVolumeClaims.update(copy);
      return;
    }
    recorder.event(
      pvc,
      'Warning',
      'FailedBinding',
      `volume "${volumeName}" already bound to a different claim.`,
    );
    return setClaimPhase(pvc, 'Pending');
  }

  /** Hands the claim to its class's provisioner (upstream provisionClaim with an external plugin). */
  async function provisionClaim(pvc: PersistentVolumeClaim, provisioner: string): Promise<void> {
    if (
      pvc.metadata.annotations?.[ANN_STORAGE_PROVISIONER] !== provisioner ||
      pvc.metadata.annotations?.[ANN_BETA_STORAGE_PROVISIONER] !== provisioner
    ) {
      const copy = structuredClone(pvc);
      copy.metadata.annotations = {
        ...copy.metadata.annotations,
        [ANN_STORAGE_PROVISIONER]: provisioner,
        [ANN_BETA_STORAGE_PROVISIONER]: provisioner,
      };
      pvc = await ctx.clients.persistentVolumeClaims.update(copy);
    }
    recorder.event(pvc, 'Normal', 'ExternalProvisioning', externalProvisioningMessage(provisioner));
    await setClaimPhase(pvc, 'Pending');
  }

  async function syncBoundClaim(pvc: PersistentVolumeClaim): Promise<void> {
    const volumeName = pvc.spec?.volumeName;
    if (!volumeName) {
      recorder.event(
        pvc,
        'Warning',
        'ClaimLost',
        'Bound claim has lost reference to PersistentVolume. Data on the volume is lost!',
      );
      return setClaimPhase(pvc, 'Lost');
    }
    const pv = volumes.indexer.get(volumeName) ?? (await getVolume(volumeName));
    if (!pv) {
      recorder.event(
        pvc,
        'Warning',
        'ClaimLost',
        'Bound claim has lost its PersistentVolume. Data on the volume is lost!',
      );
      return setClaimPhase(pvc, 'Lost');
    }
    if (!pv.spec?.claimRef || isVolumeBoundToClaim(pv, pvc)) return bind(pv, pvc);
    recorder.event(
      pvc,
      'Warning',
      'ClaimMisbound',
      'Two claims are bound to the same volume, this one is bound incorrectly',
    );
    return setClaimPhase(pvc, 'Lost');
  }

  async function getVolume(name: string): Promise<PersistentVolume | undefined> {
    try {
      return await ctx.clients.persistentVolumes.get(undefined, name);
    } catch (err) {
      if (isApiError(err, 'NotFound')) return undefined;
      throw err;
    }
  }

  async function getClaim(namespace: string, name: string): Promise<PersistentVolumeClaim | undefined> {
    try {
      return await ctx.clients.persistentVolumeClaims.get(namespace, name);
    } catch (err) {
      if (isApiError(err, 'NotFound')) return undefined;
      throw err;
    }
  }

  // --- volumes ----------------------------------------------------------------

  async function syncVolume(pv: PersistentVolume): Promise<void> {
    const ref = pv.spec?.claimRef;
    if (!ref) {
      await setVolumePhase(pv, 'Available');
      return;
    }
    if (!ref.uid) {
      // Pre-bound by the user to a claim that has not bound yet: the claim's sync binds it.
      await setVolumePhase(pv, 'Available');
      enqueueClaimKey(`${ref.namespace}/${ref.name}`);
      return;
    }
    const key = `${ref.namespace}/${ref.name}`;
    let pvc: PersistentVolumeClaim | undefined = claims.indexer.get(key);
    // The cache may not have a claim created a moment ago: ask before releasing anything.
    if (!pvc || pvc.metadata.uid !== ref.uid) pvc = await getClaim(ref.namespace ?? '', ref.name ?? '');
    if (pvc && pvc.metadata.uid !== ref.uid) pvc = undefined;
    if (!pvc) {
      if (pv.status?.phase !== 'Released' && pv.status?.phase !== 'Failed') {
        pv = await setVolumePhase(pv, 'Released');
      }
      return reclaimVolume(pv);
    }
    if (!pvc.spec?.volumeName) {
      // Step 1 done, step 2 not yet (or the user pre-bound the volume): the claim's sync finishes.
      enqueueClaimKey(key);
      return;
    }
    if (pvc.spec.volumeName === pv.metadata.name) {
      await setVolumePhase(pv, 'Bound');
      return;
    }
    // The claim is bound to another volume: free this one (upstream unbindVolume).
    const copy = structuredClone(pv);
    if (annotated(pv, ANN_BOUND_BY_CONTROLLER)) {
      delete copy.spec?.claimRef;
      delete copy.metadata.annotations?.[ANN_BOUND_BY_CONTROLLER];
    } else if (copy.spec?.claimRef) {
      copy.spec.claimRef.uid = '';
    }
    const updated = await ctx.clients.persistentVolumes.update(copy);
    await setVolumePhase(updated, 'Available');
  }

  async function reclaimVolume(pv: PersistentVolume): Promise<void> {
    if (pv.status?.phase === 'Failed') return;
    const policy = pv.spec?.persistentVolumeReclaimPolicy ?? 'Retain';
    if (policy === 'Retain') return;
    if (policy === 'Delete') {
      // A provisioned volume is its provisioner's to delete.
      if (annotated(pv, ANN_PROVISIONED_BY)) return;
      const message = `error getting deleter volume plugin for volume "${pv.metadata.name}": no deletable volume plugin matched`;
      recorder.event(pv, 'Warning', 'VolumeFailedDelete', message);
      await setVolumePhase(pv, 'Failed', message);
      return;
    }
    const message = `No recycler plugin found for the volume!`;
    recorder.event(pv, 'Warning', 'VolumeFailedRecycle', message);
    await setVolumePhase(pv, 'Failed', message);
  }

  // --- the queue ----------------------------------------------------------------

  const c = queueController(ctx, {
    name: 'persistentvolume-binder',
    workers: 5,
    async sync(key) {
      if (key.startsWith(VOLUME)) {
        const pv = volumes.indexer.get(key.slice(VOLUME.length));
        if (pv) await syncVolume(pv);
        return;
      }
      const k = key.slice(CLAIM.length);
      // A deleted claim's volume is synced (and released) through its own key.
      const pvc = claims.indexer.get(k);
      if (!pvc) return;
      if (annotated(pvc, ANN_BIND_COMPLETED)) await syncBoundClaim(pvc);
      else await syncUnboundClaim(pvc);
    },
  });

  const enqueueClaimKey = (key: string) => c.queue.add(`${CLAIM}${key}`);
  const enqueueVolume = (pv: PersistentVolume) => c.queue.add(`${VOLUME}${keyOf(pv)}`);
  /** A volume that became free may satisfy any pending claim (upstream waits for the claims' periodic resync). */
  const enqueuePendingClaims = () => {
    for (const pvc of claims.indexer.list()) if (!pvc.spec?.volumeName) enqueueClaimKey(keyOf(pvc));
  };

  /** The cache caught up with a binding (or the volume went): its assumption is done. */
  const forget = (pv: PersistentVolume) => {
    if (pv.spec?.claimRef?.uid || pv.metadata.deletionTimestamp) assumed.delete(pv.metadata.name ?? '');
  };
  volumes.on({
    add(pv) {
      forget(pv);
      enqueueVolume(pv);
      if (!pv.spec?.claimRef) enqueuePendingClaims();
      const ref = pv.spec?.claimRef;
      if (ref) enqueueClaimKey(`${ref.namespace}/${ref.name}`);
    },
    update(old, pv) {
      forget(pv);
      enqueueVolume(pv);
      const ref = pv.spec?.claimRef;
      if (ref) enqueueClaimKey(`${ref.namespace}/${ref.name}`);
      if (!pv.spec?.claimRef && pv.status?.phase === 'Available' && old.status?.phase !== 'Available')
        enqueuePendingClaims();
    },
    delete(pv) {
      assumed.delete(pv.metadata.name ?? '');
      const ref = pv.spec?.claimRef;
      if (ref) enqueueClaimKey(`${ref.namespace}/${ref.name}`);
    },
  });
  claims.on({
    add: (pvc) => enqueueClaimKey(keyOf(pvc)),
    update: (_old, pvc) => enqueueClaimKey(keyOf(pvc)),
    delete(pvc) {
      // Its volume is released.
      const name = pvc.spec?.volumeName;
      if (name) c.queue.add(`${VOLUME}${name}`);
      for (const pv of volumes.indexer.list())
        if (pv.spec?.claimRef?.uid && pv.spec.claimRef.uid === pvc.metadata.uid) enqueueVolume(pv);
    },
  });
  classes.on({ add: enqueuePendingClaims, update: enqueuePendingClaims });
  return c;
};
