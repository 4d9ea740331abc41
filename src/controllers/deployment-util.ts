// Pure helpers of the Deployment controller, as upstream's
// pkg/controller/deployment/util/deployment_util.go: revisions and the
// annotations that carry them, the pod-template-hash, maxSurge and
// maxUnavailable arithmetic, proportional scaling, conditions and status.
// Nothing here talks to the API server, so each rule can be read (and
// tested) on its own.
// https://github.com/kubernetes/kubernetes/blob/master/pkg/controller/deployment/util/deployment_util.go

import { isObject, jsonEqual, rfc3339 } from '../api/meta.ts';
import type {
  Deployment,
  DeploymentCondition,
  DeploymentStatus,
  ReplicaSet,
  ReplicaSetCondition,
} from '../api/types/apps-v1.ts';
import type { PodTemplateSpec } from '../api/types/core-v1.ts';

/** The revision of a ReplicaSet (and of the Deployment, for its newest ReplicaSet). */
export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';
/** Earlier revisions a ReplicaSet had, when a rollback brought its template back. */
export const REVISION_HISTORY_ANNOTATION = 'deployment.kubernetes.io/revision-history';
/** spec.replicas of the Deployment when the ReplicaSet was last scaled. */
export const DESIRED_REPLICAS_ANNOTATION = 'deployment.kubernetes.io/desired-replicas';
/** spec.replicas + maxSurge of the Deployment when the ReplicaSet was last scaled. */
export const MAX_REPLICAS_ANNOTATION = 'deployment.kubernetes.io/max-replicas';
/** Why a revision was made; `kubectl rollout history` shows it. */
export const CHANGE_CAUSE_ANNOTATION = 'kubernetes.io/change-cause';
/** The label a Deployment adds to its ReplicaSets' selectors and templates. */
export const DEFAULT_DEPLOYMENT_UNIQUE_LABEL_KEY = 'pod-template-hash';
/** Upstream's maxRevHistoryLengthInChars for the revision-history annotation. */
export const MAX_REV_HISTORY_LENGTH_IN_CHARS = 2000;

// Condition types and reasons, in upstream's words.
export const DEPLOYMENT_AVAILABLE = 'Available';
export const DEPLOYMENT_PROGRESSING = 'Progressing';
export const DEPLOYMENT_REPLICA_FAILURE = 'ReplicaFailure';
export const MINIMUM_REPLICAS_AVAILABLE = 'MinimumReplicasAvailable';
export const MINIMUM_REPLICAS_UNAVAILABLE = 'MinimumReplicasUnavailable';
export const NEW_RS_REASON = 'NewReplicaSetCreated';
export const FOUND_NEW_RS_REASON = 'FoundNewReplicaSet';
export const REPLICA_SET_UPDATED_REASON = 'ReplicaSetUpdated';
export const NEW_RS_AVAILABLE_REASON = 'NewReplicaSetAvailable';
export const TIMED_OUT_REASON = 'ProgressDeadlineExceeded';
export const FAILED_RS_CREATE_REASON = 'ReplicaSetCreateError';
export const PAUSED_DEPLOY_REASON = 'DeploymentPaused';
export const RESUMED_DEPLOY_REASON = 'DeploymentResumed';

/**
 * Annotations of a Deployment that are not copied to its ReplicaSets (and,
 * on rollback, not copied back): they describe the Deployment itself.
 */
const ANNOTATIONS_TO_SKIP = new Set([
  'kubectl.kubernetes.io/last-applied-configuration',
  REVISION_ANNOTATION,
  REVISION_HISTORY_ANNOTATION,
  DESIRED_REPLICAS_ANNOTATION,
  MAX_REPLICAS_ANNOTATION,
  'deprecated.deployment.rollback.to',
]);

export const skipCopyAnnotation = (key: string): boolean => ANNOTATIONS_TO_SKIP.has(key);

/** spec.replicas, which the API server defaults to 1. */
export const specReplicas = (o: Deployment | ReplicaSet | undefined): number => o?.spec?.replicas ?? 1;

export const isRollingUpdate = (d: Deployment): boolean =>
  (d.spec?.strategy?.type ?? 'RollingUpdate') === 'RollingUpdate';

/** k8s.io/apimachinery intstr.GetScaledValueFromIntOrPercent. */
export function scaledValueFromIntOrPercent(
  v: number | string | undefined,
  total: number,
  roundUp: boolean,
): number {
  if (v === undefined) return 0;
  if (typeof v === 'number') return v;
  const m = /^(-?\d+)%$/.exec(v);
  if (!m) {
    // A bare number in a string is accepted by upstream's parser too.
    if (/^-?\d+$/.test(v)) return Number(v);
    throw new Error(`invalid value for IntOrString: invalid value ${JSON.stringify(v)}`);
  }
  const scaled = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(scaled) : Math.floor(scaled);
}

/**
 * maxSurge rounds up and maxUnavailable rounds down, and both cannot be 0
 * (no rollout could ever make progress), so maxUnavailable becomes 1.
 */
export function resolveFenceposts(
  maxSurge: number | string | undefined,
  maxUnavailable: number | string | undefined,
  desired: number,
): { surge: number; unavailable: number } {
  const surge = scaledValueFromIntOrPercent(maxSurge ?? 0, desired, true);
  let unavailable = scaledValueFromIntOrPercent(maxUnavailable ?? 0, desired, false);
  if (surge === 0 && unavailable === 0) unavailable = 1;
  return { surge, unavailable };
}

export function maxSurge(d: Deployment): number {
  if (!isRollingUpdate(d)) return 0;
  const ru = d.spec?.strategy?.rollingUpdate;
  return resolveFenceposts(ru?.maxSurge, ru?.maxUnavailable, specReplicas(d)).surge;
}

/** Never more than spec.replicas; 0 for Recreate or a Deployment scaled to 0. */
export function maxUnavailable(d: Deployment): number {
  const replicas = specReplicas(d);
  if (!isRollingUpdate(d) || replicas === 0) return 0;
  const ru = d.spec?.strategy?.rollingUpdate;
  const { unavailable } = resolveFenceposts(ru?.maxSurge, ru?.maxUnavailable, replicas);
  return Math.min(unavailable, replicas);
}

// ---- revisions ----

const parseInt10 = (s: string | undefined): number | undefined =>
  s !== undefined && /^[+-]?\d+$/.test(s) ? Number(s) : undefined;

/** The revision annotation as a number; 0 when absent, undefined when unparsable. */
export function revisionOf(o: { metadata: { annotations?: Record<string, string> } }): number | undefined {
  const v = o.metadata.annotations?.[REVISION_ANNOTATION];
  if (v === undefined) return 0;
  return parseInt10(v);
}

export function maxRevision(rss: ReplicaSet[]): number {
  let max = 0;
  for (const rs of rss) max = Math.max(max, revisionOf(rs) ?? 0);
  return max;
}

// ---- equality and hashing of pod templates ----

/**
 * A template as upstream compares Go structs: apimachinery's semantic
 * equality treats a missing map or list like an empty one, and a Go
 * non-pointer field holds no difference between false/0 and absent. So a
 * null, {}, [], false or 0 field is dropped. The last two matter because
 * the same template reaches us both ways: typed creates by kubectl 1.32+
 * are protobuf, which carries every non-pointer field (`stdin: false`,
 * `hostPID: false`, `generation: 0`), while `kubectl rollout undo` patches
 * the template back as JSON, where omitempty dropped them. The price: an
 * explicit false/0 in a pointer field (runAsUser: 0) reads like unset.
 */
function normalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.length ? v.map((x) => normalize(x) ?? null) : undefined;
  if (!isObject(v)) return v === null ? undefined : v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort()) {
    const n = normalize(v[k]);
    if (n !== undefined && n !== false && n !== 0) out[k] = n;
  }
  return Object.keys(out).length ? out : undefined;
}

function withoutHashLabel(t: PodTemplateSpec | undefined): unknown {
  const labels = { ...t?.metadata?.labels };
  delete labels[DEFAULT_DEPLOYMENT_UNIQUE_LABEL_KEY];
  return normalize({ ...t, metadata: { ...t?.metadata, labels } });
}

/** Two pod templates are the same revision when they differ only in pod-template-hash. */
export const equalIgnoreHash = (a: PodTemplateSpec | undefined, b: PodTemplateSpec | undefined): boolean =>
  jsonEqual(withoutHashLabel(a), withoutHashLabel(b));

/** rand.SafeEncodeString's alphabet: no vowels (no words) and no look-alikes (0/o, 1/l, 3/e). */
const SAFE_ALPHANUMS = 'bcdfghjklmnpqrstvwxz2456789';

export function safeEncodeString(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) out += SAFE_ALPHANUMS[s.charCodeAt(i) % SAFE_ALPHANUMS.length];
  return out;
}

function fnv32a(bytes: Uint8Array, hash = 0x811c9dc5): number {
  let h = hash;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * The pod-template-hash: FNV-32a over the template (upstream hashes Go's
 * spew dump of the struct; we hash its canonical JSON), then the
 * collisionCount as 8 little-endian bytes, the decimal digits of the sum
 * encoded with SafeEncodeString. Bumping collisionCount gives a new name
 * when a ReplicaSet of the same name but another template is in the way.
 */
export function computeHash(template: PodTemplateSpec | undefined, collisionCount?: number): string {
  let h = fnv32a(new TextEncoder().encode(JSON.stringify(normalize(template) ?? {})));
  if (collisionCount !== undefined) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setUint32(0, collisionCount >>> 0, true);
    h = fnv32a(b, h);
  }
  return safeEncodeString(String(h));
}

// ---- finding and ordering ReplicaSets ----

const created = (rs: ReplicaSet) => Date.parse(rs.metadata.creationTimestamp ?? '') || 0;

/** Oldest first; ties by name. */
export function byCreationTimestamp(a: ReplicaSet, b: ReplicaSet): number {
  const d = created(a) - created(b);
  if (d !== 0) return d;
  return (a.metadata.name ?? '') < (b.metadata.name ?? '') ? -1 : 1;
}

/** Largest first; ties: older first (upstream's ReplicaSetsBySizeOlder). */
export const bySizeOlder = (a: ReplicaSet, b: ReplicaSet): number =>
  specReplicas(a) === specReplicas(b) ? byCreationTimestamp(a, b) : specReplicas(b) - specReplicas(a);

/** Largest first; ties: newer first (upstream's ReplicaSetsBySizeNewer). */
export const bySizeNewer = (a: ReplicaSet, b: ReplicaSet): number =>
  specReplicas(a) === specReplicas(b) ? byCreationTimestamp(b, a) : specReplicas(b) - specReplicas(a);

/** Lowest revision first; ties by creation. */
export function byRevision(a: ReplicaSet, b: ReplicaSet): number {
  const ra = revisionOf(a) ?? 0;
  const rb = revisionOf(b) ?? 0;
  return ra === rb ? byCreationTimestamp(a, b) : ra - rb;
}

/** The oldest ReplicaSet whose template is the Deployment's (several can match after a collision). */
export function findNewReplicaSet(d: Deployment, rsList: ReplicaSet[]): ReplicaSet | undefined {
  return [...rsList]
    .sort(byCreationTimestamp)
    .find((rs) => equalIgnoreHash(rs.spec?.template, d.spec?.template));
}

/** Every ReplicaSet but the new one (`all`), and those of them still with replicas (`active`). */
export function findOldReplicaSets(
  d: Deployment,
  rsList: ReplicaSet[],
): { active: ReplicaSet[]; all: ReplicaSet[] } {
  const newRS = findNewReplicaSet(d, rsList);
  const all = rsList.filter((rs) => !newRS || rs.metadata.uid !== newRS.metadata.uid);
  return { active: all.filter((rs) => specReplicas(rs) !== 0), all };
}

export const filterActiveReplicaSets = (rss: (ReplicaSet | undefined)[]): ReplicaSet[] =>
  rss.filter((rs): rs is ReplicaSet => !!rs && specReplicas(rs) > 0);

/**
 * The one ReplicaSet that has replicas, or the newest if none has: outside a
 * rollout, that is where a scale goes. Undefined when several are active.
 */
export function findActiveOrLatest(
  newRS: ReplicaSet | undefined,
  oldRSs: ReplicaSet[],
): ReplicaSet | undefined {
  if (!newRS && oldRSs.length === 0) return undefined;
  const newestFirst = [...oldRSs].sort((a, b) => byCreationTimestamp(b, a));
  const active = filterActiveReplicaSets([...newestFirst, newRS]);
  if (active.length === 0) return newRS ?? newestFirst[0];
  if (active.length === 1) return active[0];
  return undefined;
}

const sum = (rss: (ReplicaSet | undefined)[], f: (rs: ReplicaSet) => number | undefined) =>
  rss.reduce((n, rs) => n + (rs ? (f(rs) ?? 0) : 0), 0);

/** Desired pods: the sum of spec.replicas. */
export const replicaCount = (rss: (ReplicaSet | undefined)[]) => sum(rss, (rs) => rs.spec?.replicas ?? 1);
/** Pods that exist: the sum of status.replicas. */
export const actualReplicaCount = (rss: (ReplicaSet | undefined)[]) => sum(rss, (rs) => rs.status?.replicas);
export const readyReplicaCount = (rss: (ReplicaSet | undefined)[]) =>
  sum(rss, (rs) => rs.status?.readyReplicas);
export const availableReplicaCount = (rss: (ReplicaSet | undefined)[]) =>
  sum(rss, (rs) => rs.status?.availableReplicas);

// ---- annotations ----

const annotationsOf = (o: { metadata: { annotations?: Record<string, string> } }) => {
  o.metadata.annotations ??= {};
  return o.metadata.annotations;
};

export const desiredReplicasAnnotation = (rs: ReplicaSet): number | undefined =>
  parseInt10(rs.metadata.annotations?.[DESIRED_REPLICAS_ANNOTATION]);

export const maxReplicasAnnotation = (rs: ReplicaSet): number | undefined =>
  parseInt10(rs.metadata.annotations?.[MAX_REPLICAS_ANNOTATION]);

export function replicasAnnotationsNeedUpdate(rs: ReplicaSet, desired: number, max: number): boolean {
  const a = rs.metadata.annotations;
  return a?.[DESIRED_REPLICAS_ANNOTATION] !== String(desired) || a?.[MAX_REPLICAS_ANNOTATION] !== String(max);
}

/** Records the Deployment's size on the ReplicaSet; true if that changed it. */
export function setReplicasAnnotations(rs: ReplicaSet, desired: number, max: number): boolean {
  const a = annotationsOf(rs);
  let changed = false;
  if (a[DESIRED_REPLICAS_ANNOTATION] !== String(desired)) {
    a[DESIRED_REPLICAS_ANNOTATION] = String(desired);
    changed = true;
  }
  if (a[MAX_REPLICAS_ANNOTATION] !== String(max)) {
    a[MAX_REPLICAS_ANNOTATION] = String(max);
    changed = true;
  }
  return changed;
}

/** The Deployment's own annotations (change-cause, ...) travel to its new ReplicaSet. */
function copyDeploymentAnnotationsToReplicaSet(d: Deployment, rs: ReplicaSet): boolean {
  const a = annotationsOf(rs);
  let changed = false;
  for (const [k, v] of Object.entries(d.metadata.annotations ?? {})) {
    if (skipCopyAnnotation(k) || a[k] === v) continue;
    a[k] = v;
    changed = true;
  }
  return changed;
}

/**
 * Annotations of the new ReplicaSet: the Deployment's, the new revision, and
 * (when a rollback brings back an old ReplicaSet) the revisions it had
 * before in revision-history. `exists` is false for a ReplicaSet about to be
 * created, which also gets its desired/max replicas. True if anything changed.
 */
export function setNewReplicaSetAnnotations(
  d: Deployment,
  rs: ReplicaSet,
  newRevision: number,
  exists: boolean,
): boolean {
  let changed = copyDeploymentAnnotationsToReplicaSet(d, rs);
  const a = annotationsOf(rs);
  const oldRevision = a[REVISION_ANNOTATION];
  const oldRevisionNum = oldRevision === undefined || oldRevision === '' ? 0 : parseInt10(oldRevision);
  if (oldRevisionNum === undefined) return false;
  if (oldRevisionNum < newRevision) {
    a[REVISION_ANNOTATION] = String(newRevision);
    changed = true;
    if (oldRevision !== undefined) {
      const history = a[REVISION_HISTORY_ANNOTATION] ?? '';
      if (history === '') {
        a[REVISION_HISTORY_ANNOTATION] = oldRevision;
      } else {
        // Keep the newest revisions that fit, dropping the oldest.
        const revs = history.split(',');
        let total = history.length + oldRevision.length + 1;
        let start = 0;
        while (total > MAX_REV_HISTORY_LENGTH_IN_CHARS && start < revs.length) {
          total -= (revs[start] ?? '').length + 1;
          start++;
        }
        if (total <= MAX_REV_HISTORY_LENGTH_IN_CHARS) {
          a[REVISION_HISTORY_ANNOTATION] = [...revs.slice(start), oldRevision].join(',');
        }
      }
    }
  }
  if (!exists && setReplicasAnnotations(rs, specReplicas(d), specReplicas(d) + maxSurge(d))) changed = true;
  return changed;
}

/** Sets the Deployment's revision annotation; true if it changed. */
export function setDeploymentRevision(d: Deployment, revision: string): boolean {
  const a = annotationsOf(d);
  if (a[REVISION_ANNOTATION] === revision) return false;
  a[REVISION_ANNOTATION] = revision;
  return true;
}

// ---- sizing ----

/**
 * How big the new ReplicaSet may be now. RollingUpdate: grow it as far as
 * maxSurge allows over spec.replicas, never past spec.replicas. Recreate:
 * all at once (the old pods are gone by then).
 */
export function newRSNewReplicas(
  d: Deployment,
  allRSs: (ReplicaSet | undefined)[],
  newRS: ReplicaSet,
): number {
  const replicas = specReplicas(d);
  if (!isRollingUpdate(d)) return replicas;
  const surge = scaledValueFromIntOrPercent(d.spec?.strategy?.rollingUpdate?.maxSurge, replicas, true);
  const currentPodCount = replicaCount(allRSs);
  const maxTotalPods = replicas + surge;
  if (currentPodCount >= maxTotalPods) return specReplicas(newRS);
  const scaleUpCount = Math.min(maxTotalPods - currentPodCount, replicas - specReplicas(newRS));
  return specReplicas(newRS) + scaleUpCount;
}

/**
 * A ReplicaSet is saturated when it runs the whole Deployment: all
 * replicas, available, and it knows the Deployment's current size.
 */
export function isSaturated(d: Deployment, rs: ReplicaSet | undefined): boolean {
  if (!rs) return false;
  const desired = desiredReplicasAnnotation(rs);
  if (desired === undefined) return false;
  const replicas = specReplicas(d);
  return (
    specReplicas(rs) === replicas && desired === replicas && (rs.status?.availableReplicas ?? 0) === replicas
  );
}

/** Go's math.Round: halves away from zero. */
const roundHalfAway = (x: number) => Math.sign(x) * Math.round(Math.abs(x));

/**
 * The share of a scale a ReplicaSet gets: its size relative to the
 * Deployment's size when it was last scaled (max-replicas annotation, or
 * status.replicas when absent), applied to the new size.
 */
function replicaSetFraction(rs: ReplicaSet, d: Deployment): number {
  if (specReplicas(d) === 0) return -specReplicas(rs);
  const deploymentReplicas = specReplicas(d) + maxSurge(d);
  const annotated = maxReplicasAnnotation(rs) ?? d.status?.replicas ?? 0;
  // Upstream divides by zero here (and gets an undefined int32 conversion):
  // a ReplicaSet with nothing to be proportional to keeps its size.
  if (annotated === 0) return 0;
  return roundHalfAway((specReplicas(rs) * deploymentReplicas) / annotated) - specReplicas(rs);
}

/** How many replicas to add to (or remove from, if negative) this ReplicaSet in a proportional scale. */
export function getProportion(rs: ReplicaSet, d: Deployment, toAdd: number, added: number): number {
  if (specReplicas(rs) === 0 || toAdd === 0 || toAdd === added) return 0;
  const fraction = replicaSetFraction(rs, d);
  const allowed = toAdd - added;
  return toAdd > 0 ? Math.min(fraction, allowed) : Math.max(fraction, allowed);
}

// ---- conditions and status ----

export function newDeploymentCondition(
  type: string,
  status: 'True' | 'False' | 'Unknown',
  reason: string,
  message: string,
  now: Date,
): DeploymentCondition {
  const t = rfc3339(now);
  return { type, status, lastUpdateTime: t, lastTransitionTime: t, reason, message };
}

export const getDeploymentCondition = (
  status: DeploymentStatus | undefined,
  type: string,
): DeploymentCondition | undefined => status?.conditions?.find((c) => c.type === type);

/**
 * Sets a condition, unless one with the same status and reason is there
 * (then nothing changes, not even lastUpdateTime). lastTransitionTime only
 * moves when the status flips.
 */
export function setDeploymentCondition(status: DeploymentStatus, condition: DeploymentCondition): void {
  const current = getDeploymentCondition(status, condition.type ?? '');
  if (current && current.status === condition.status && current.reason === condition.reason) return;
  const next = { ...condition };
  if (current && current.status === condition.status) next.lastTransitionTime = current.lastTransitionTime;
  status.conditions = [...(status.conditions ?? []).filter((c) => c.type !== condition.type), next];
}

export function removeDeploymentCondition(status: DeploymentStatus, type: string): void {
  if (!status.conditions) return;
  status.conditions = status.conditions.filter((c) => c.type !== type);
}

/** A ReplicaSet's ReplicaFailure condition, as the Deployment's. */
export const replicaSetToDeploymentCondition = (c: ReplicaSetCondition): DeploymentCondition => ({
  type: c.type,
  status: c.status,
  lastUpdateTime: c.lastTransitionTime,
  lastTransitionTime: c.lastTransitionTime,
  reason: c.reason,
  message: c.message,
});

/** progressDeadlineSeconds set and not "never" (MaxInt32). */
export const hasProgressDeadline = (d: Deployment): boolean =>
  d.spec?.progressDeadlineSeconds !== undefined && d.spec.progressDeadlineSeconds !== 2147483647;

/** Every replica updated and available, and the latest spec observed. */
export function deploymentComplete(d: Deployment, s: DeploymentStatus): boolean {
  const replicas = specReplicas(d);
  return (
    (s.updatedReplicas ?? 0) === replicas &&
    (s.replicas ?? 0) === replicas &&
    (s.availableReplicas ?? 0) === replicas &&
    (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 0)
  );
}

/**
 * Progress is: more updated, ready or available pods than last time, or
 * fewer old pods. Any of these resets the progress deadline.
 */
export function deploymentProgressing(d: Deployment, s: DeploymentStatus): boolean {
  const old = d.status ?? {};
  const oldOld = (old.replicas ?? 0) - (old.updatedReplicas ?? 0);
  const newOld = (s.replicas ?? 0) - (s.updatedReplicas ?? 0);
  return (
    (s.updatedReplicas ?? 0) > (old.updatedReplicas ?? 0) ||
    newOld < oldOld ||
    (s.readyReplicas ?? 0) > (old.readyReplicas ?? 0) ||
    (s.availableReplicas ?? 0) > (old.availableReplicas ?? 0)
  );
}

/**
 * No progress for progressDeadlineSeconds since the Progressing condition
 * was last updated. A completed rollout never times out.
 */
export function deploymentTimedOut(d: Deployment, s: DeploymentStatus, now: Date): boolean {
  if (!hasProgressDeadline(d)) return false;
  const c = getDeploymentCondition(s, DEPLOYMENT_PROGRESSING);
  if (!c) return false;
  if (c.reason === NEW_RS_AVAILABLE_REASON) return false;
  if (c.reason === TIMED_OUT_REASON) return true;
  const from = Date.parse(c.lastUpdateTime ?? '');
  return from + (d.spec?.progressDeadlineSeconds ?? 0) * 1000 < now.getTime();
}

/**
 * The Deployment's status from its ReplicaSets'. Zero counts are left out,
 * as Go's omitempty leaves them out of upstream's JSON.
 */
export function calculateStatus(
  allRSs: (ReplicaSet | undefined)[],
  newRS: ReplicaSet | undefined,
  d: Deployment,
  now: Date,
): DeploymentStatus {
  const available = availableReplicaCount(allRSs);
  const unavailable = Math.max(0, replicaCount(allRSs) - available);
  const counts: [keyof DeploymentStatus, number | undefined][] = [
    ['observedGeneration', d.metadata.generation],
    ['replicas', actualReplicaCount(allRSs)],
    ['updatedReplicas', actualReplicaCount([newRS])],
    ['readyReplicas', readyReplicaCount(allRSs)],
    ['availableReplicas', available],
    ['unavailableReplicas', unavailable],
  ];
  const status: DeploymentStatus = {};
  for (const [k, v] of counts) if (v) (status as Record<string, number>)[k] = v;
  if (d.status?.conditions) status.conditions = [...d.status.conditions];
  if (available >= specReplicas(d) - maxUnavailable(d)) {
    setDeploymentCondition(
      status,
      newDeploymentCondition(
        DEPLOYMENT_AVAILABLE,
        'True',
        MINIMUM_REPLICAS_AVAILABLE,
        'Deployment has minimum availability.',
        now,
      ),
    );
  } else {
    setDeploymentCondition(
      status,
      newDeploymentCondition(
        DEPLOYMENT_AVAILABLE,
        'False',
        MINIMUM_REPLICAS_UNAVAILABLE,
        'Deployment does not have minimum availability.',
        now,
      ),
    );
  }
  if (d.status?.collisionCount !== undefined) status.collisionCount = d.status.collisionCount;
  return status;
}
