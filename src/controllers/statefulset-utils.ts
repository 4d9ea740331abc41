// The pure rules of the StatefulSet controller, as upstream's
// pkg/controller/statefulset/stateful_set_utils.go: how a pod's name encodes
// its set and ordinal, what identity and storage a member pod must have, how a
// pod is built from a revision of the template, and how status is counted.
// Nothing here talks to the API server, so each rule can be tested alone.

import { type LabelSelector, type Selector, selectorFromLabelSelector } from '../api/labels.ts';
import { deepCopy, type OwnerReference } from '../api/meta.ts';
import { isPodAvailable, isPodReady } from '../api/pod-util.ts';
import type { ControllerRevision, StatefulSet, StatefulSetStatus } from '../api/types/apps-v1.ts';
import type { PersistentVolumeClaim, Pod, PodTemplateSpec, Volume } from '../api/types/core-v1.ts';
import { CONTROLLER_REVISION_HASH_LABEL_KEY, newControllerRevision, templatePatch } from './history.ts';

/** apps/v1 StatefulSetPodNameLabel: lets a Service select exactly one member. */
export const STATEFULSET_POD_NAME_LABEL = 'statefulset.kubernetes.io/pod-name';
/** apps/v1 PodIndexLabel (GA in 1.32): the ordinal, as a label. */
export const POD_INDEX_LABEL = 'apps.kubernetes.io/pod-index';
/** apps/v1 StatefulSetRevisionLabel: the name of the ControllerRevision a pod was made from. */
export const STATEFULSET_REVISION_LABEL = CONTROLLER_REVISION_HASH_LABEL_KEY;

export const STATEFULSET_API_VERSION = 'apps/v1';
export const STATEFULSET_KIND = 'StatefulSet';

// ---- names and ordinals -------------------------------------------------------

// Upstream's statefulPodRegex "(.*)-([0-9]+)$": the greedy prefix is the
// parent's name, the trailing digits the ordinal.
const STATEFUL_POD_NAME = /^(.*)-([0-9]+)$/;
const MAX_INT32 = 2 ** 31 - 1;

/**
 * The parent set's name and the ordinal encoded in a pod's name; ordinal -1
 * (and parent '') when the name is not `<set>-<n>` (getParentNameAndOrdinal).
 */
export function parentNameAndOrdinal(pod: Pod): { parent: string; ordinal: number } {
  const m = STATEFUL_POD_NAME.exec(pod.metadata.name ?? '');
  if (!m) return { parent: '', ordinal: -1 };
  const n = Number(m[2]);
  // strconv.ParseInt(s, 10, 32) fails past int32: the parent is kept, the ordinal is not.
  return { parent: m[1] ?? '', ordinal: n <= MAX_INT32 ? n : -1 };
}

export const getOrdinal = (pod: Pod): number => parentNameAndOrdinal(pod).ordinal;

/** isMemberOf: the pod's name says it belongs to this set. */
export const isMemberOf = (set: StatefulSet, pod: Pod): boolean =>
  parentNameAndOrdinal(pod).parent === set.metadata.name;

/** spec.ordinals.start: the first ordinal (0 unless set). */
export const startOrdinal = (set: StatefulSet): number => set.spec?.ordinals?.start ?? 0;

/**
 * The set's spec.selector as a Selector (metav1.LabelSelectorAsSelector);
 * throws on a selector validation would have refused.
 */
export const selectorOf = (set: StatefulSet): Selector =>
  selectorFromLabelSelector(set.spec?.selector as LabelSelector | undefined);

export const replicasOf = (set: StatefulSet): number => set.spec?.replicas ?? 1;

/** The last ordinal a member may have (inclusive). */
export const endOrdinal = (set: StatefulSet): number => startOrdinal(set) + replicasOf(set) - 1;

export function podInOrdinalRange(pod: Pod, set: StatefulSet): boolean {
  const ordinal = getOrdinal(pod);
  return ordinal >= startOrdinal(set) && ordinal <= endOrdinal(set);
}

export const podName = (set: StatefulSet, ordinal: number): string => `${set.metadata.name}-${ordinal}`;

/** `<template>-<set>-<ordinal>`: the stable claim a member mounts, whichever pod carries that ordinal. */
export const claimName = (set: StatefulSet, template: PersistentVolumeClaim, ordinal: number): string =>
  `${template.metadata.name}-${set.metadata.name}-${ordinal}`;

// ---- identity and storage -------------------------------------------------------

/** identityMatches: name, namespace and pod-name label are those of its ordinal in this set. */
export function identityMatches(set: StatefulSet, pod: Pod): boolean {
  const { parent, ordinal } = parentNameAndOrdinal(pod);
  return (
    ordinal >= 0 &&
    parent === set.metadata.name &&
    pod.metadata.name === podName(set, ordinal) &&
    pod.metadata.namespace === set.metadata.namespace &&
    pod.metadata.labels?.[STATEFULSET_POD_NAME_LABEL] === pod.metadata.name
  );
}

/** storageMatches: every volumeClaimTemplate is mounted from this ordinal's claim. */
export function storageMatches(set: StatefulSet, pod: Pod): boolean {
  const ordinal = getOrdinal(pod);
  if (ordinal < 0) return false;
  const volumes = new Map((pod.spec?.volumes ?? []).map((v) => [v.name, v]));
  return (set.spec?.volumeClaimTemplates ?? []).every(
    (t) =>
      volumes.get(t.metadata.name ?? '')?.persistentVolumeClaim?.claimName === claimName(set, t, ordinal),
  );
}

/**
 * The claims a member needs, built from the volumeClaimTemplates, keyed by
 * template name (getPersistentVolumeClaims). They carry the set's
 * matchLabels, so `kubectl get pvc -l app=web` finds them.
 */
export function persistentVolumeClaims(
  set: StatefulSet,
  ordinal: number,
): Map<string, PersistentVolumeClaim> {
  const claims = new Map<string, PersistentVolumeClaim>();
  for (const template of set.spec?.volumeClaimTemplates ?? []) {
    const claim = deepCopy(template);
    claim.apiVersion = 'v1';
    claim.kind = 'PersistentVolumeClaim';
    claim.metadata = {
      ...claim.metadata,
      name: claimName(set, template, ordinal),
      namespace: set.metadata.namespace,
      labels: { ...(claim.metadata.labels ?? {}), ...(set.spec?.selector?.matchLabels ?? {}) },
    };
    delete claim.status;
    claims.set(template.metadata.name ?? '', claim);
  }
  return claims;
}

/** updateStorage: claim volumes first, replacing same-named volumes of the template. */
export function updateStorage(set: StatefulSet, pod: Pod): void {
  const claims = persistentVolumeClaims(set, getOrdinal(pod));
  const volumes: Volume[] = [...claims].map(([name, claim]) => ({
    name,
    persistentVolumeClaim: { claimName: claim.metadata.name ?? '' },
  }));
  for (const v of pod.spec?.volumes ?? []) if (!claims.has(v.name ?? '')) volumes.push(v);
  pod.spec = { ...pod.spec, volumes } as Pod['spec'];
}

// ---- the claims' retention policy (stateful_set_utils.go) ---------------------------
//
// persistentVolumeClaimRetentionPolicy is carried by ownerReferences on the
// claims, so that the garbage collector, not this controller, deletes them:
//   Retain on scale-down and on set deletion: no reference;
//   Delete on set deletion only: the set controls the claim;
//   Delete on scale-down only: the pod controls the claim once its ordinal
//     is outside the set's range (the claim goes with the condemned pod);
//   Delete on both: the set while the ordinal is in range, the pod after.
// A claim controlled by anything else is left alone, as is one with a
// reference to an older set or pod of the same name (stale: its owner was
// orphaned or replaced, and the garbage collector decides).

const RETAIN = 'Retain';
const DELETE = 'Delete';

export interface RetentionPolicy {
  whenDeleted: string;
  whenScaled: string;
}

export const retentionPolicyOf = (set: StatefulSet): RetentionPolicy => ({
  whenDeleted: set.spec?.persistentVolumeClaimRetentionPolicy?.whenDeleted || RETAIN,
  whenScaled: set.spec?.persistentVolumeClaimRetentionPolicy?.whenScaled || RETAIN,
});

type Owner = { kind: string; apiVersion: string; name?: string | undefined; uid?: string | undefined };
const ownersOf = (set: StatefulSet, pod: Pod): [Owner, Owner] => [
  {
    kind: STATEFULSET_KIND,
    apiVersion: STATEFULSET_API_VERSION,
    name: set.metadata.name,
    uid: set.metadata.uid,
  },
  { kind: 'Pod', apiVersion: 'v1', name: pod.metadata.name, uid: pod.metadata.uid },
];

/** matchesRef: the reference names this kind and name, whatever its uid. */
const matchesRef = (ref: OwnerReference, o: Owner) =>
  ref.apiVersion === o.apiVersion && ref.kind === o.kind && ref.name === o.name;

const hasOwnerRef = (claim: PersistentVolumeClaim, o: Owner) =>
  (claim.metadata.ownerReferences ?? []).some((r) => r.uid === o.uid);

/** hasStaleOwnerRef: a reference to an object of the owner's kind and name, but another uid. */
const hasStaleOwnerRef = (claim: PersistentVolumeClaim, o: Owner) => {
  const ref = (claim.metadata.ownerReferences ?? []).find((r) => matchesRef(r, o));
  return !!ref && ref.uid !== o.uid;
};

/** hasUnexpectedController: under a Delete policy, a controller other than this set or pod (or a stale one). */
export function hasUnexpectedController(claim: PersistentVolumeClaim, set: StatefulSet, pod: Pod): boolean {
  const policy = retentionPolicyOf(set);
  if (policy.whenScaled === RETAIN && policy.whenDeleted === RETAIN) return false;
  const owners = ownersOf(set, pod);
  for (const ref of claim.metadata.ownerReferences ?? []) {
    const ours = owners.find((o) => matchesRef(ref, o));
    if (ours) {
      if (ref.uid !== ours.uid) return true;
      continue;
    }
    if (ref.controller) return true;
  }
  return false;
}

/** The owners the policy wants on this member's claim. */
function wantedOwners(set: StatefulSet, pod: Pod): { set: boolean; pod: boolean } {
  const policy = retentionPolicyOf(set);
  const scaledDown = !podInOrdinalRange(pod, set);
  const deleteOnScale = policy.whenScaled === DELETE;
  const deleteWithSet = policy.whenDeleted === DELETE;
  return {
    set: deleteWithSet && !(deleteOnScale && scaledDown),
    pod: deleteOnScale && scaledDown,
  };
}

/** isClaimOwnerUpToDate: the claim's references are what the retention policy wants (or are not ours to fix). */
export function isClaimOwnerUpToDate(claim: PersistentVolumeClaim, set: StatefulSet, pod: Pod): boolean {
  const [setOwner, podOwner] = ownersOf(set, pod);
  if (hasStaleOwnerRef(claim, setOwner) || hasStaleOwnerRef(claim, podOwner)) return true;
  if (hasUnexpectedController(claim, set, pod))
    return !(hasOwnerRef(claim, setOwner) || hasOwnerRef(claim, podOwner));
  // A reference of ours that is not a controller reference is rewritten as one.
  const nonController = (claim.metadata.ownerReferences ?? []).some(
    (r) => (r.uid === setOwner.uid || r.uid === podOwner.uid) && !r.controller,
  );
  if (nonController) return false;
  const want = wantedOwners(set, pod);
  return hasOwnerRef(claim, setOwner) === want.set && hasOwnerRef(claim, podOwner) === want.pod;
}

/** updateClaimOwnerRefForSetAndPod: rewrites the claim's references to the set and the pod per the policy. */
export function updateClaimOwnerRefs(claim: PersistentVolumeClaim, set: StatefulSet, pod: Pod): void {
  const owners = ownersOf(set, pod);
  const unexpected = hasUnexpectedController(claim, set, pod);
  const refs = (claim.metadata.ownerReferences ?? []).filter((r) => !owners.some((o) => matchesRef(r, o)));
  if (!unexpected) {
    const want = wantedOwners(set, pod);
    for (const [o, wanted] of [
      [owners[0], want.set],
      [owners[1], want.pod],
    ] as const) {
      if (!wanted) continue;
      refs.push({
        apiVersion: o.apiVersion,
        kind: o.kind,
        name: o.name ?? '',
        uid: o.uid ?? '',
        controller: true,
        blockOwnerDeletion: true,
      });
    }
  }
  if (refs.length) claim.metadata.ownerReferences = refs;
  else delete claim.metadata.ownerReferences;
}

/** updateIdentity: the name, namespace and identity labels of the pod's ordinal. */
export function updateIdentity(set: StatefulSet, pod: Pod): void {
  const ordinal = getOrdinal(pod);
  pod.metadata.name = podName(set, ordinal);
  pod.metadata.namespace = set.metadata.namespace;
  pod.metadata.labels = {
    ...(pod.metadata.labels ?? {}),
    [STATEFULSET_POD_NAME_LABEL]: pod.metadata.name,
    [POD_INDEX_LABEL]: String(ordinal),
  };
}

// ---- pod state --------------------------------------------------------------------

export { isPodReady };

export const isRunningAndReady = (pod: Pod): boolean => pod.status?.phase === 'Running' && isPodReady(pod);

/**
 * podutil.IsPodAvailable: Ready for at least minReadySeconds (measured from
 * the Ready condition's lastTransitionTime, against the injected clock).
 */
export function isRunningAndAvailable(pod: Pod, minReadySeconds: number, now: Date): boolean {
  return pod.status?.phase === 'Running' && isPodAvailable(pod, minReadySeconds, now);
}

/**
 * isCreated: the API server gives every pod a phase (Pending) when it is
 * created, so a pod without one is a placeholder the controller has yet to create.
 */
export const isCreated = (pod: Pod): boolean => !!pod.status?.phase;
export const isPending = (pod: Pod): boolean => pod.status?.phase === 'Pending';
export const isFailed = (pod: Pod): boolean => pod.status?.phase === 'Failed';
export const isSucceeded = (pod: Pod): boolean => pod.status?.phase === 'Succeeded';
export const isTerminating = (pod: Pod): boolean => !!pod.metadata.deletionTimestamp;
export const isHealthy = (pod: Pod): boolean => isRunningAndReady(pod) && !isTerminating(pod);

/** podManagementPolicy Parallel lifts the one-at-a-time ordering of scaling. */
export const allowsBurst = (set: StatefulSet): boolean => set.spec?.podManagementPolicy === 'Parallel';

export const getPodRevision = (pod: Pod): string => pod.metadata.labels?.[STATEFULSET_REVISION_LABEL] ?? '';

// ---- building pods ------------------------------------------------------------------

/**
 * controller.GetPodFromTemplate: labels, annotations, finalizers and spec of
 * the template, a generateName of `<set>-` (kept as upstream does, though the
 * name is always set), and the controller reference.
 */
function podFromTemplate(template: PodTemplateSpec | undefined, set: StatefulSet, ref: OwnerReference): Pod {
  const meta = template?.metadata ?? {};
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: `${set.metadata.name}-`,
      labels: { ...(meta.labels ?? {}) },
      ...(meta.annotations ? { annotations: { ...meta.annotations } } : {}),
      ...(meta.finalizers ? { finalizers: [...meta.finalizers] } : {}),
      ownerReferences: [ref],
    },
    spec: deepCopy(template?.spec ?? { containers: [] }),
  };
}

export function controllerRefTo(set: StatefulSet): OwnerReference {
  return {
    apiVersion: STATEFULSET_API_VERSION,
    kind: STATEFULSET_KIND,
    name: set.metadata.name ?? '',
    uid: set.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

/**
 * newStatefulSetPod: the member with this ordinal. Hostname and subdomain
 * are set only here (initIdentity): they are immutable once the pod exists,
 * and with a headless Service named spec.serviceName they give the pod its
 * stable DNS name `<pod>.<service>.<namespace>.svc`.
 */
export function newStatefulSetPod(set: StatefulSet, ordinal: number): Pod {
  const pod = podFromTemplate(set.spec?.template, set, controllerRefTo(set));
  pod.metadata.name = podName(set, ordinal);
  updateIdentity(set, pod);
  pod.spec = {
    ...pod.spec,
    hostname: pod.metadata.name,
    ...(set.spec?.serviceName ? { subdomain: set.spec.serviceName } : {}),
  } as Pod['spec'];
  updateStorage(set, pod);
  return pod;
}

/**
 * newVersionedStatefulSetPod: under RollingUpdate, ordinals below the
 * partition are (re)created from the current revision, all others from the
 * update revision; OnDelete always uses the update revision. (Go's operator
 * precedence in upstream's condition makes the partition clause apply
 * whatever the strategy type; validation keeps rollingUpdate off OnDelete.)
 */
export function newVersionedStatefulSetPod(
  currentSet: StatefulSet,
  updateSet: StatefulSet,
  currentRevision: string,
  updateRevision: string,
  ordinal: number,
): Pod {
  const strategy = currentSet.spec?.updateStrategy;
  const rollingUpdate = strategy?.rollingUpdate;
  const start = startOrdinal(currentSet);
  const fromCurrent =
    (strategy?.type === 'RollingUpdate' &&
      !rollingUpdate &&
      ordinal < start + (currentSet.status?.currentReplicas ?? 0)) ||
    (!!rollingUpdate && ordinal < start + (rollingUpdate.partition ?? 0));
  const pod = newStatefulSetPod(fromCurrent ? currentSet : updateSet, ordinal);
  pod.metadata.labels = {
    ...pod.metadata.labels,
    [STATEFULSET_REVISION_LABEL]: fromCurrent ? currentRevision : updateRevision,
  };
  return pod;
}

// ---- revisions --------------------------------------------------------------------

/**
 * newRevision: a ControllerRevision whose data is a strategic merge patch
 * replacing spec.template (what `kubectl rollout undo sts` applies), labelled
 * like the pods and annotated like the set (so kubernetes.io/change-cause
 * shows in `kubectl rollout history`).
 */
export function newRevision(set: StatefulSet, revision: number, collisionCount: number): ControllerRevision {
  const cr = newControllerRevision({
    parent: set,
    parentApiVersion: STATEFULSET_API_VERSION,
    parentKind: STATEFULSET_KIND,
    templateLabels: set.spec?.template?.metadata?.labels,
    data: templatePatch(set.spec?.template),
    revision,
    collisionCount,
  });
  cr.metadata.annotations = { ...(cr.metadata.annotations ?? {}), ...(set.metadata.annotations ?? {}) };
  return cr;
}

/**
 * ApplyRevision: the set as it was at `revision`. Revisions only record the
 * template (with `$patch: replace`), so applying one swaps the template and
 * keeps the rest of the live spec.
 */
export function applyRevision(set: StatefulSet, revision: ControllerRevision): StatefulSet {
  const clone = deepCopy(set);
  const recorded = (revision.data as { spec?: { template?: Record<string, unknown> } } | undefined)?.spec
    ?.template;
  if (recorded) {
    const { $patch: _, ...template } = deepCopy(recorded);
    clone.spec = { ...clone.spec, template: template as PodTemplateSpec };
  }
  return clone;
}

// ---- status -----------------------------------------------------------------------

export interface ReplicaCounts {
  replicas: number;
  readyReplicas: number;
  availableReplicas: number;
  currentReplicas: number;
  updatedReplicas: number;
}

/** computeReplicaStatus over the given pods; placeholders not yet created do not count. */
export function countReplicas(
  pods: readonly Pod[],
  minReadySeconds: number,
  currentRevision: string,
  updateRevision: string,
  now: Date,
): ReplicaCounts {
  const counts: ReplicaCounts = {
    replicas: 0,
    readyReplicas: 0,
    availableReplicas: 0,
    currentReplicas: 0,
    updatedReplicas: 0,
  };
  for (const pod of pods) {
    if (isCreated(pod)) counts.replicas++;
    if (isRunningAndReady(pod)) {
      counts.readyReplicas++;
      if (isRunningAndAvailable(pod, minReadySeconds, now)) counts.availableReplicas++;
    }
    if (isCreated(pod) && !isTerminating(pod)) {
      if (getPodRevision(pod) === currentRevision) counts.currentReplicas++;
      if (getPodRevision(pod) === updateRevision) counts.updatedReplicas++;
    }
  }
  return counts;
}

/**
 * completeRollingUpdate: once every replica runs the update revision and is
 * ready, the update revision becomes the current one.
 */
export function completeRollingUpdate(set: StatefulSet, status: StatefulSetStatus): void {
  const replicas = replicasOf(set);
  if (
    set.spec?.updateStrategy?.type === 'RollingUpdate' &&
    status.updatedReplicas === replicas &&
    status.readyReplicas === replicas &&
    status.replicas === replicas
  ) {
    status.currentReplicas = status.updatedReplicas;
    status.currentRevision = status.updateRevision;
  }
}

/** inconsistentStatus: whether the computed status differs from the stored one (else no write). */
export function inconsistentStatus(set: StatefulSet, status: StatefulSetStatus): boolean {
  const old = set.status ?? {};
  return (
    (status.observedGeneration ?? 0) > (old.observedGeneration ?? 0) ||
    (status.replicas ?? 0) !== (old.replicas ?? 0) ||
    (status.currentReplicas ?? 0) !== (old.currentReplicas ?? 0) ||
    (status.readyReplicas ?? 0) !== (old.readyReplicas ?? 0) ||
    (status.updatedReplicas ?? 0) !== (old.updatedReplicas ?? 0) ||
    (status.availableReplicas ?? 0) !== (old.availableReplicas ?? 0) ||
    (status.currentRevision ?? '') !== (old.currentRevision ?? '') ||
    (status.updateRevision ?? '') !== (old.updateRevision ?? '') ||
    (status.collisionCount ?? 0) !== (old.collisionCount ?? 0)
  );
}

/** Ordinal order, highest first (descendingOrdinal), for scale-down. */
export const byDescendingOrdinal = (a: Pod, b: Pod): number => getOrdinal(b) - getOrdinal(a);
