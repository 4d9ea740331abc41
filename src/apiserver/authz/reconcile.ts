// Rule coverage and the reconciliation of bootstrap roles and bindings, as
// upstream's pkg/registry/rbac/validation (Covers, BreakdownRule) and
// pkg/registry/rbac/reconciliation (computeReconciledRole/RoleBinding).
//
// Coverage is also what the escalation check asks: may a user who holds
// `owner` rules grant `servant` rules?

import type { ClusterRole, ClusterRoleBinding, PolicyRule, Subject } from '../../api/types/rbac-v1.ts';
import { AUTOUPDATE_ANNOTATION } from './bootstrap-policy.ts';

const hasAll = (set: string[], want: string[]) => want.every((w) => set.includes(w));

/** One verb on one resource (or one name of it) of one group, or one verb on one path (upstream's BreakdownRule). */
export function breakdownRule(rule: PolicyRule): PolicyRule[] {
  const out: PolicyRule[] = [];
  for (const group of rule.apiGroups ?? []) {
    for (const resource of rule.resources ?? []) {
      for (const verb of rule.verbs ?? []) {
        const names = rule.resourceNames ?? [];
        if (names.length === 0) out.push({ apiGroups: [group], resources: [resource], verbs: [verb] });
        for (const name of names)
          out.push({ apiGroups: [group], resources: [resource], verbs: [verb], resourceNames: [name] });
      }
    }
  }
  for (const url of rule.nonResourceURLs ?? []) {
    for (const verb of rule.verbs ?? []) out.push({ nonResourceURLs: [url], verbs: [verb] });
  }
  return out;
}

function resourcesCover(owner: string[], wanted: string[]): boolean {
  if (owner.includes('*')) return true;
  return wanted.every((r) => {
    if (owner.includes(r)) return true;
    const slash = r.indexOf('/');
    return slash > 0 && owner.includes(`*${r.slice(slash)}`);
  });
}

const urlCovers = (owner: string, wanted: string) =>
  owner === wanted || (owner.endsWith('*') && wanted.startsWith(owner.replace(/\*+$/, '')));

/** upstream's ruleCovers: whether one rule grants all that another does. */
export function ruleCovers(owner: PolicyRule, sub: PolicyRule): boolean {
  const ov = owner.verbs ?? [];
  const og = owner.apiGroups ?? [];
  const names = owner.resourceNames ?? [];
  const subNames = sub.resourceNames ?? [];
  return (
    (ov.includes('*') || hasAll(ov, sub.verbs ?? [])) &&
    (og.includes('*') || hasAll(og, sub.apiGroups ?? [])) &&
    resourcesCover(owner.resources ?? [], sub.resources ?? []) &&
    (sub.nonResourceURLs ?? []).every((u) => (owner.nonResourceURLs ?? []).some((o) => urlCovers(o, u))) &&
    (names.length === 0 || (subNames.length > 0 && hasAll(names, subNames)))
  );
}

/** The parts of `servant` that no rule of `owner` covers ([] when `owner` covers it all). */
export function missingRules(owner: PolicyRule[], servant: PolicyRule[]): PolicyRule[] {
  return servant.flatMap(breakdownRule).filter((atom) => !owner.some((o) => ruleCovers(o, atom)));
}

const isProtected = (obj: { metadata: { annotations?: Record<string, string> } }) =>
  obj.metadata.annotations?.[AUTOUPDATE_ANNOTATION] === 'false';

/** Labels and annotations of both; the existing object's values win, as upstream's merge. */
const mergedMeta = <T extends ClusterRole | ClusterRoleBinding>(existing: T, wanted: T) => ({
  ...existing.metadata,
  labels: { ...wanted.metadata.labels, ...existing.metadata.labels },
  annotations: { ...wanted.metadata.annotations, ...existing.metadata.annotations },
});

const sameMaps = (a: Record<string, string> | undefined, b: Record<string, string> | undefined) =>
  JSON.stringify(Object.entries(a ?? {}).sort()) === JSON.stringify(Object.entries(b ?? {}).sort());

/**
 * What to write so that `existing` grants at least what `wanted` does: the
 * wanted role when missing, the existing one with the missing rules (and
 * aggregation selectors, labels, annotations) added, or undefined when it
 * needs nothing or is protected (autoupdate=false). Never removes a rule.
 */
export function reconcileClusterRole(
  existing: ClusterRole | undefined,
  wanted: ClusterRole,
): ClusterRole | undefined {
  if (!existing) return wanted;
  if (isProtected(existing)) return undefined;
  const metadata = mergedMeta(existing, wanted);
  const missing = missingRules(existing.rules ?? [], wanted.rules ?? []);
  const selectors = existing.aggregationRule?.clusterRoleSelectors ?? [];
  const missingSelectors = (wanted.aggregationRule?.clusterRoleSelectors ?? []).filter(
    (w) => !selectors.some((s) => JSON.stringify(s) === JSON.stringify(w)),
  );
  if (
    missing.length === 0 &&
    missingSelectors.length === 0 &&
    sameMaps(metadata.labels, existing.metadata.labels) &&
    sameMaps(metadata.annotations, existing.metadata.annotations)
  )
    return undefined;
  return {
    ...existing,
    metadata,
    // An aggregated role's rules are the aggregation controller's to fill in.
    rules: wanted.aggregationRule ? existing.rules : [...(existing.rules ?? []), ...missing],
    ...(wanted.aggregationRule || existing.aggregationRule
      ? { aggregationRule: { clusterRoleSelectors: [...selectors, ...missingSelectors] } }
      : {}),
  };
}

const sameSubject = (a: Subject, b: Subject) =>
  a.kind === b.kind && a.name === b.name && (a.namespace ?? '') === (b.namespace ?? '');

export type BindingReconciliation =
  | { action: 'none' }
  | { action: 'create' | 'update'; binding: ClusterRoleBinding }
  /** roleRef is immutable: delete the binding and create it again. */
  | { action: 'recreate'; binding: ClusterRoleBinding };

/** upstream's computeReconciledRoleBinding, without removing extra subjects. */
export function reconcileClusterRoleBinding(
  existing: ClusterRoleBinding | undefined,
  wanted: ClusterRoleBinding,
): BindingReconciliation {
  if (!existing) return { action: 'create', binding: wanted };
  if (isProtected(existing)) return { action: 'none' };
  const subjects = existing.subjects ?? [];
  const missing = (wanted.subjects ?? []).filter((w) => !subjects.some((s) => sameSubject(s, w)));
  const metadata = mergedMeta(existing, wanted);
  const binding = { ...existing, metadata, subjects: [...subjects, ...missing] };
  if (JSON.stringify(existing.roleRef) !== JSON.stringify(wanted.roleRef))
    return { action: 'recreate', binding: { ...binding, roleRef: wanted.roleRef } };
  if (
    missing.length === 0 &&
    sameMaps(metadata.labels, existing.metadata.labels) &&
    sameMaps(metadata.annotations, existing.metadata.annotations)
  )
    return { action: 'none' };
  return { action: 'update', binding };
}

/** What ensureBootstrapPolicy needs of a client: get (undefined when missing), create, update, delete. */
export interface PolicyClient<T> {
  get(name: string): Promise<T | undefined>;
  create(obj: T): Promise<unknown>;
  update(obj: T): Promise<unknown>;
  delete(name: string): Promise<unknown>;
}

/**
 * Creates the bootstrap roles and bindings that are missing and adds back
 * what was taken from the others (upstream's PostStartHook
 * rbac/bootstrap-roles). Returns the names written, for the log.
 */
export async function ensureBootstrapPolicy(
  roles: PolicyClient<ClusterRole>,
  bindings: PolicyClient<ClusterRoleBinding>,
  wanted: { roles: ClusterRole[]; bindings: ClusterRoleBinding[] },
): Promise<string[]> {
  const written: string[] = [];
  for (const want of wanted.roles) {
    const name = want.metadata.name ?? '';
    const existing = await roles.get(name);
    const next = reconcileClusterRole(existing, want);
    if (!next) continue;
    await (existing ? roles.update(next) : roles.create(next));
    written.push(`clusterrole/${name}`);
  }
  for (const want of wanted.bindings) {
    const name = want.metadata.name ?? '';
    const r = reconcileClusterRoleBinding(await bindings.get(name), want);
    if (r.action === 'none') continue;
    if (r.action === 'recreate') await bindings.delete(name);
    const { resourceVersion: _rv, uid: _uid, ...metadata } = r.binding.metadata;
    await (r.action === 'update' ? bindings.update(r.binding) : bindings.create({ ...r.binding, metadata }));
    written.push(`clusterrolebinding/${name}`);
  }
  return written;
}
