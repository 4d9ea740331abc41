// PersistentVolume and PersistentVolumeClaim helpers that the PV controller,
// the scheduler's VolumeBinding plugin and the kubelet share: upstream's
// annotation names, and the rules by which a claim matches a volume
// (pkg/controller/volume/persistentvolume/util, component-helpers/storage/volume).

import { type LabelSelector, selectorFromLabelSelector } from './labels.ts';
import { parseQuantity, value } from './quantity.ts';
import { nodeSelectorTermsMatch } from './scheduling.ts';
import type { Node, PersistentVolume, PersistentVolumeClaim, Pod, Volume } from './types/core-v1.ts';
import type { StorageClass } from './types/storage-v1.ts';

/** A volume's spec.claimRef naming this claim (upstream's reference.GetReference). */
export const claimRefFor = (
  pvc: PersistentVolumeClaim,
): NonNullable<PersistentVolume['spec']>['claimRef'] => ({
  kind: 'PersistentVolumeClaim',
  apiVersion: 'v1',
  namespace: pvc.metadata.namespace ?? '',
  name: pvc.metadata.name ?? '',
  uid: pvc.metadata.uid ?? '',
  resourceVersion: pvc.metadata.resourceVersion ?? '',
});

/** On a claim: the binding is done (the controller finished bindClaimToVolume). */
export const ANN_BIND_COMPLETED = 'pv.kubernetes.io/bind-completed';
/** On a claim or volume: the controller, not the user, set volumeName / claimRef. */
export const ANN_BOUND_BY_CONTROLLER = 'pv.kubernetes.io/bound-by-controller';
/** On a volume: the provisioner that made it (and will delete it). */
export const ANN_PROVISIONED_BY = 'pv.kubernetes.io/provisioned-by';
/** On a claim: the provisioner asked to make its volume. */
export const ANN_STORAGE_PROVISIONER = 'volume.kubernetes.io/storage-provisioner';
export const ANN_BETA_STORAGE_PROVISIONER = 'volume.beta.kubernetes.io/storage-provisioner';
/** On a WaitForFirstConsumer claim: the node the scheduler chose for its first pod. */
export const ANN_SELECTED_NODE = 'volume.kubernetes.io/selected-node';

export const PVC_PROTECTION_FINALIZER = 'kubernetes.io/pvc-protection';
export const PV_PROTECTION_FINALIZER = 'kubernetes.io/pv-protection';

/** The claim of a pod's generic ephemeral volume: <pod>-<volume> (upstream ephemeral.VolumeClaimName). */
export const ephemeralClaimName = (pod: Pod, v: Volume): string => `${pod.metadata.name}-${v.name}`;

/** The claim a pod's volume names, if it is a persistentVolumeClaim or a generic ephemeral volume. */
export const volumeClaimName = (pod: Pod, v: Volume): string | undefined =>
  v.persistentVolumeClaim?.claimName || (v.ephemeral ? ephemeralClaimName(pod, v) : undefined);

/** Whether the claim was made for this pod's ephemeral volume: the pod controls it (ephemeral.VolumeIsForPod). */
export const isClaimForPod = (pod: Pod, pvc: PersistentVolumeClaim): boolean =>
  (pvc.metadata.ownerReferences ?? []).some((r) => r.controller && r.uid === pod.metadata.uid);

export const claimNotForPod = (pod: Pod, pvc: PersistentVolumeClaim): string =>
  `PVC ${pvc.metadata.namespace}/${pvc.metadata.name} was not created for pod ${pod.metadata.namespace}/${pod.metadata.name} (pod is not owner)`;

/** storageClassName, '' when unset (upstream's GetPersistentVolumeClaimClass, beta annotation aside). */
export function claimClass(pvc: PersistentVolumeClaim): string {
  return (
    pvc.metadata.annotations?.['volume.beta.kubernetes.io/storage-class'] ?? pvc.spec?.storageClassName ?? ''
  );
}

export function volumeClass(pv: PersistentVolume): string {
  return (
    pv.metadata.annotations?.['volume.beta.kubernetes.io/storage-class'] ?? pv.spec?.storageClassName ?? ''
  );
}

/** Whether the class delays binding until a pod using the claim is scheduled. */
export const isWaitForFirstConsumer = (sc: StorageClass | undefined): boolean =>
  sc?.volumeBindingMode === 'WaitForFirstConsumer';

/** The claim's requested storage in bytes. */
export function requestedBytes(pvc: PersistentVolumeClaim): bigint | undefined {
  const q = pvc.spec?.resources?.requests?.storage;
  return q === undefined ? undefined : toBytes(q);
}

function toBytes(q: string): bigint | undefined {
  try {
    return value(parseQuantity(q));
  } catch {
    return undefined;
  }
}

/** The volume's capacity.storage in bytes. */
export function capacityBytes(pv: PersistentVolume): bigint | undefined {
  const q = pv.spec?.capacity?.storage;
  return q === undefined ? undefined : toBytes(q);
}

/** Whether the volume offers every access mode the claim asks for (upstream CheckAccessModes). */
export function accessModesContain(
  pvModes: readonly string[] = [],
  claimModes: readonly string[] = [],
): boolean {
  return claimModes.every((m) => pvModes.includes(m));
}

const volumeMode = (mode: string | undefined) => mode || 'Filesystem';

/** Whether the volume's mode differs from the claim's (upstream CheckVolumeModeMismatches). */
export const volumeModeMismatch = (pvc: PersistentVolumeClaim, pv: PersistentVolume): boolean =>
  volumeMode(pvc.spec?.volumeMode) !== volumeMode(pv.spec?.volumeMode);

/** Whether the volume's required nodeAffinity lets it be used on `node` (upstream CheckNodeAffinity). */
export function volumeFitsNode(pv: PersistentVolume, node: Node): boolean {
  const terms = pv.spec?.nodeAffinity?.required?.nodeSelectorTerms;
  if (!terms) return true;
  return nodeSelectorTermsMatch(terms, node);
}

/** Whether the volume's claimRef names this claim (a uid, if set, must be the claim's). */
export function isVolumeBoundToClaim(pv: PersistentVolume, pvc: PersistentVolumeClaim): boolean {
  const ref = pv.spec?.claimRef;
  if (!ref) return false;
  if (ref.name !== pvc.metadata.name || ref.namespace !== pvc.metadata.namespace) return false;
  return !ref.uid || ref.uid === pvc.metadata.uid;
}

/**
 * Why the volume cannot serve the claim, or undefined if it can: the checks
 * upstream's checkVolumeSatisfyClaim makes of a volume named by volumeName.
 */
export function volumeUnfitReason(pv: PersistentVolume, pvc: PersistentVolumeClaim): string | undefined {
  const want = requestedBytes(pvc) ?? 0n;
  const have = capacityBytes(pv) ?? 0n;
  if (have < want) return 'requested PV is too small';
  if (volumeClass(pv) !== claimClass(pvc)) return 'storageClassName does not match';
  if (volumeModeMismatch(pvc, pv)) return 'incompatible volumeMode';
  if (!accessModesContain(pv.spec?.accessModes, pvc.spec?.accessModes)) return 'incompatible accessMode';
  return undefined;
}

export interface MatchOptions {
  /** Only volumes usable on this node (the claim's selected node, or the scheduler's candidate). */
  node?: Node;
  /**
   * Binding waits for the scheduler (WaitForFirstConsumer with no node yet):
   * only volumes pre-bound to the claim may match.
   */
  delayBinding?: boolean;
  /** Volumes to pass over (already chosen for another claim in this scheduling cycle). */
  excluded?: ReadonlySet<string>;
}

/**
 * The volume a claim should bind to, as upstream's FindMatchingVolume: a
 * volume pre-bound to the claim first; otherwise, of the Available unbound
 * volumes of the claim's class, mode and selector that offer its access
 * modes (and fit the node), the smallest whose capacity covers the request.
 */
export function findMatchingVolume(
  pvc: PersistentVolumeClaim,
  volumes: Iterable<PersistentVolume>,
  opts: MatchOptions = {},
): PersistentVolume | undefined {
  const want = requestedBytes(pvc) ?? 0n;
  const cls = claimClass(pvc);
  const selector = pvc.spec?.selector
    ? selectorFromLabelSelector(pvc.spec.selector as LabelSelector)
    : undefined;
  let best: PersistentVolume | undefined;
  let bestSize = 0n;
  // The cheap checks come first: most volumes are bound to other claims, and
  // a node-affinity match or a quantity parse for each would cost the most.
  const fitsNode = (pv: PersistentVolume) => !opts.node || volumeFitsNode(pv, opts.node);
  for (const pv of volumes) {
    if (opts.excluded?.has(pv.metadata.name ?? '')) continue;
    if (pv.metadata.deletionTimestamp) continue;
    if (isVolumeBoundToClaim(pv, pvc)) {
      // A pre-bound volume wins if it is big enough, whatever its class or selector.
      if (
        !volumeModeMismatch(pvc, pv) &&
        (capacityBytes(pv) ?? 0n) >= want &&
        fitsNode(pv) &&
        accessModesContain(pv.spec?.accessModes, pvc.spec?.accessModes)
      )
        return pv;
      continue;
    }
    if (opts.delayBinding && !opts.node) continue;
    if (pv.spec?.claimRef) continue;
    if ((pv.status?.phase ?? 'Pending') !== 'Available') continue;
    if (volumeClass(pv) !== cls) continue;
    if (volumeModeMismatch(pvc, pv)) continue;
    if (selector && !selector.matches(pv.metadata.labels)) continue;
    if (!accessModesContain(pv.spec?.accessModes, pvc.spec?.accessModes)) continue;
    const size = capacityBytes(pv) ?? 0n;
    if (size < want) continue;
    if (!fitsNode(pv)) continue;
    if (!best || size < bestSize) {
      best = pv;
      bestSize = size;
    }
  }
  return best;
}
