// What `kubectl rollout undo` changes, as pure functions: the revision to go
// back to, and the patch that restores it (k8s.io/kubectl/pkg/polymorphichelpers
// rollback.go). No DOM and no API here, so the rules are unit-tested in Node.

export interface JsonPatchOp {
  op: 'add';
  path: string;
  value: unknown;
}

interface Owned {
  metadata: {
    uid?: string;
    annotations?: Record<string, string>;
    ownerReferences?: { uid: string; controller?: boolean }[];
  };
}

export const REVISION = 'deployment.kubernetes.io/revision';

/** Annotations that belong to the Deployment, not to a revision: kept as they are on undo. */
const DEPLOYMENT_OWN_ANNOTATIONS = new Set([
  'kubectl.kubernetes.io/last-applied-configuration',
  REVISION,
  'deployment.kubernetes.io/revision-history',
  'deployment.kubernetes.io/desired-replicas',
  'deployment.kubernetes.io/max-replicas',
  'deprecated.deployment.rollback.to',
]);

export const controlledBy = (owner: { metadata: { uid?: string } }) => (o: Owned) =>
  o.metadata.ownerReferences?.some((r) => r.controller && r.uid === owner.metadata.uid) ?? false;

/** The item with the second-highest revision: the one before the newest, as kubectl picks it. */
export function previousRevision<T>(items: T[], revisionOf: (t: T) => number | undefined): T | undefined {
  const ranked = items
    .map((item) => ({ item, rev: revisionOf(item) }))
    .filter((r): r is { item: T; rev: number } => r.rev !== undefined && Number.isFinite(r.rev))
    .sort((a, b) => b.rev - a.rev);
  return ranked[1]?.item;
}

/** JSON with object keys sorted, to compare two templates by value. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

/** A ReplicaSet's pod template without the label the Deployment controller adds to it. */
function withoutHash(template: any): any {
  const { 'pod-template-hash': _hash, ...labels } = template?.metadata?.labels ?? {};
  return { ...template, metadata: { ...template?.metadata, labels } };
}

/**
 * The JSON patch that rolls a Deployment back to one of its ReplicaSets, or
 * the reason it cannot (kubectl's messages).
 */
export function deploymentUndo(
  deployment: any,
  replicaSets: any[],
): { patch: JsonPatchOp[] } | { error: string } {
  const name = deployment.metadata.name;
  if (deployment.spec?.paused)
    return {
      error: `you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume deployment/${name}' and try again`,
    };
  const owned = replicaSets.filter(controlledBy(deployment));
  const target = previousRevision(owned, (rs) => Number(rs.metadata.annotations?.[REVISION]));
  if (!target) return { error: `no rollout history found for deployment "${name}"` };
  const template = withoutHash(target.spec?.template);
  const revision = target.metadata.annotations[REVISION];
  if (canonical(template) === canonical(withoutHash(deployment.spec?.template)))
    return { error: `skipped rollback (current template already matches revision ${revision})` };
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries<string>(deployment.metadata.annotations ?? {}))
    if (DEPLOYMENT_OWN_ANNOTATIONS.has(k)) annotations[k] = v;
  for (const [k, v] of Object.entries<string>(target.metadata.annotations ?? {}))
    if (!DEPLOYMENT_OWN_ANNOTATIONS.has(k)) annotations[k] = v;
  return {
    patch: [
      { op: 'add', path: '/spec/template', value: template },
      { op: 'add', path: '/metadata/annotations', value: annotations },
    ],
  };
}

/**
 * A StatefulSet's or DaemonSet's previous ControllerRevision: its data is
 * the strategic merge patch that restores that template, as kubectl applies it.
 */
export function historyUndo(owner: any, revisions: any[]): { patch: unknown } | { error: string } {
  const kind = String(owner.kind ?? 'object').toLowerCase();
  const target = previousRevision(revisions.filter(controlledBy(owner)), (r) => Number(r.revision));
  if (!target) return { error: `no rollout history found for ${kind} "${owner.metadata.name}"` };
  return { patch: target.data };
}
