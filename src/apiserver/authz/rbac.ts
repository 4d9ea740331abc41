// The RBAC authorizer (upstream's plugin/pkg/auth/authorizer/rbac and
// pkg/registry/rbac/validation/rule.go): a request is allowed when some rule
// of some role bound to the user covers it.
//
// - ClusterRoleBindings grant their ClusterRole's rules everywhere;
// - RoleBindings grant a Role's (or a ClusterRole's) rules in their
//   namespace only.
// A binding applies to a user by name, to a group the user is in, or to a
// ServiceAccount (system:serviceaccount:NS:NAME; in a RoleBinding a subject
// without a namespace means the binding's). RBAC never denies: with no rule
// it has no opinion, and the reason says which referenced roles are missing.

import type {
  ClusterRole,
  ClusterRoleBinding,
  PolicyRule,
  Role,
  RoleBinding,
  RoleRef,
  Subject,
} from '../../api/types/rbac-v1.ts';
import { serviceAccountUser, type UserInfo } from '../authn/user.ts';
import type { Attributes, Authorization, Authorizer } from './authorizer.ts';
import { type RuleList, type RuleResolver, ruleList } from './reviews.ts';

/** Where the authorizer reads roles and bindings (an informer cache in the server). */
export interface RBACSource {
  clusterRoleBindings(): Iterable<ClusterRoleBinding>;
  roleBindings(namespace: string): Iterable<RoleBinding>;
  /**
   * Optional, and what a cluster with many bindings needs: only the bindings
   * that may name this user (by name, group or ServiceAccount), looked up by
   * subject (bindingSubjectKeys) instead of scanning every binding.
   */
  clusterRoleBindingsFor?(user: UserInfo): Iterable<ClusterRoleBinding>;
  roleBindingsFor?(namespace: string, user: UserInfo): Iterable<RoleBinding>;
  /**
   * Optional: a number that changes whenever any role or binding does, so
   * the authorizer may keep each user's resolved rules until it changes.
   */
  generation?(): number;
  clusterRole(name: string): ClusterRole | undefined;
  role(namespace: string, name: string): Role | undefined;
}

const has = (list: string[] | undefined, value: string, all: string) =>
  (list ?? []).some((x) => x === all || x === value);

/** upstream's ResourceMatches: "*", the exact "resource/subresource", or "*\/subresource". */
function resourceMatches(rule: PolicyRule, resource: string, subresource: string): boolean {
  const combined = subresource ? `${resource}/${subresource}` : resource;
  return (rule.resources ?? []).some(
    (r) => r === '*' || r === combined || (subresource !== '' && r === `*/${subresource}`),
  );
}

/** upstream's NonResourceURLMatches: "*", the exact path, or a prefix ending in "*". */
function nonResourceURLMatches(rule: PolicyRule, path: string): boolean {
  return (rule.nonResourceURLs ?? []).some(
    (u) => u === '*' || u === path || (u.endsWith('*') && path.startsWith(u.replace(/\*+$/, ''))),
  );
}

/** Whether one rule covers the request (upstream's RuleAllows). */
export function ruleAllows(attrs: Attributes, rule: PolicyRule): boolean {
  if (!has(rule.verbs, attrs.verb, '*')) return false;
  if (!attrs.isResourceRequest) return nonResourceURLMatches(rule, attrs.path);
  return (
    has(rule.apiGroups, attrs.apiGroup, '*') &&
    resourceMatches(rule, attrs.resource, attrs.subresource) &&
    ((rule.resourceNames ?? []).length === 0 || (rule.resourceNames ?? []).includes(attrs.name))
  );
}

/**
 * The keys a binding is indexed under, one per subject: `user:<name>`
 * (ServiceAccounts as their user name) or `group:<name>`; `namespace` is a
 * RoleBinding's, for subjects that leave theirs out.
 */
export function bindingSubjectKeys(subjects: Subject[] | undefined, namespace: string): string[] {
  const keys: string[] = [];
  for (const s of subjects ?? []) {
    if (s.kind === 'User') keys.push(`user:${s.name}`);
    else if (s.kind === 'Group') keys.push(`group:${s.name}`);
    else if (s.kind === 'ServiceAccount' && (s.namespace || namespace))
      keys.push(`user:${serviceAccountUser(s.namespace || namespace, s.name ?? '')}`);
  }
  return keys;
}

/** The keys a user's bindings are found under (bindingSubjectKeys). */
export const userSubjectKeys = (user: UserInfo): string[] => [
  `user:${user.name}`,
  ...user.groups.map((g) => `group:${g}`),
];

/** upstream's appliesToUser; `namespace` is the RoleBinding's ('' for a ClusterRoleBinding). */
export function subjectMatches(user: UserInfo, subject: Subject, namespace: string): boolean {
  switch (subject.kind) {
    case 'User':
      return user.name === subject.name;
    case 'Group':
      return user.groups.includes(subject.name ?? '');
    case 'ServiceAccount': {
      const ns = subject.namespace || namespace;
      return ns !== '' && user.name === serviceAccountUser(ns, subject.name ?? '');
    }
    default:
      return false;
  }
}

const describeSubject = (s: Subject, bindingNamespace: string) =>
  s.namespace && s.namespace !== bindingNamespace
    ? `${s.kind} ${JSON.stringify(`${s.namespace}/${s.name}`)}`
    : `${s.kind} ${JSON.stringify(s.name)}`;

/** A rule with where it came from, for the reason of an allow. */
export interface SourcedRule {
  rule: PolicyRule;
  /** e.g. ClusterRoleBinding "admins" of ClusterRole "cluster-admin" to Group "ops" */
  source: string;
}

/** Users × namespaces whose resolved rules are kept; all are dropped past this. */
const RESOLVED_LIMIT = 10_000;

export class RBACAuthorizer implements Authorizer, RuleResolver {
  readonly #source: RBACSource;
  readonly #resolved = new Map<string, { rules: SourcedRule[]; errors: string[] }>();
  #generation: number | undefined;

  constructor(source: RBACSource) {
    this.#source = source;
  }

  authorize(attrs: Attributes): Authorization {
    const { rules, errors } = this.#rulesOf(attrs.user, attrs.namespace);
    for (const r of rules) {
      if (ruleAllows(attrs, r.rule)) return { decision: 'allow', reason: `RBAC: allowed by ${r.source}` };
    }
    // upstream aggregates the lookup errors: one as is, several in brackets.
    const reason =
      errors.length === 0 ? '' : `RBAC: ${errors.length === 1 ? errors[0] : `[${errors.join(', ')}]`}`;
    return { decision: 'noOpinion', reason };
  }

  /**
   * The user's rules in a namespace, resolved once per RBAC generation: a
   * request costs a map lookup and the rule checks, not a walk of the
   * bindings and roles. Without a generation (a plain source) every call
   * resolves afresh.
   */
  #rulesOf(user: UserInfo, namespace: string): { rules: SourcedRule[]; errors: string[] } {
    const generation = this.#source.generation?.();
    if (generation === undefined) {
      const errors: string[] = [];
      return { rules: [...this.visitRules(user, namespace, errors)], errors };
    }
    if (generation !== this.#generation) {
      this.#resolved.clear();
      this.#generation = generation;
    }
    const key = `${user.name}\u0000${user.groups.join('\u0000')}\u0001${namespace}`;
    let hit = this.#resolved.get(key);
    if (!hit) {
      const errors: string[] = [];
      hit = { rules: [...this.visitRules(user, namespace, errors)], errors };
      if (this.#resolved.size >= RESOLVED_LIMIT) this.#resolved.clear();
      this.#resolved.set(key, hit);
    }
    return hit;
  }

  /**
   * Every rule granted to the user in `namespace` ('' for cluster scope
   * only), cluster-wide bindings first (upstream's VisitRulesFor). Missing
   * roles are reported into `errors`; the rest still count.
   */
  *visitRules(user: UserInfo, namespace: string, errors: string[] = []): Generator<SourcedRule> {
    const from = this.#source;
    const clusterBindings = from.clusterRoleBindingsFor?.(user) ?? from.clusterRoleBindings();
    for (const b of clusterBindings) {
      const subject = (b.subjects ?? []).find((s) => subjectMatches(user, s, ''));
      if (!subject) continue;
      const rules = this.#roleRules(b.roleRef, '', errors);
      const source = `ClusterRoleBinding ${JSON.stringify(b.metadata.name)} of ${b.roleRef?.kind} ${JSON.stringify(b.roleRef?.name)} to ${describeSubject(subject, '')}`;
      for (const rule of rules) yield { rule, source };
    }
    if (!namespace) return;
    const bindings = from.roleBindingsFor?.(namespace, user) ?? from.roleBindings(namespace);
    for (const b of bindings) {
      const subject = (b.subjects ?? []).find((s) => subjectMatches(user, s, namespace));
      if (!subject) continue;
      const rules = this.#roleRules(b.roleRef, namespace, errors);
      const source = `RoleBinding ${JSON.stringify(`${namespace}/${b.metadata.name}`)} of ${b.roleRef?.kind} ${JSON.stringify(b.roleRef?.name)} to ${describeSubject(subject, namespace)}`;
      for (const rule of rules) yield { rule, source };
    }
  }

  /** Every rule the user holds in `namespace`, for SelfSubjectRulesReview (upstream's RulesFor). */
  rulesFor(user: UserInfo, namespace: string): RuleList {
    const errors: string[] = [];
    const rules = [...this.visitRules(user, namespace, errors)].map((r) => r.rule);
    return { ...ruleList(rules), incomplete: false, errors };
  }

  /** upstream's GetRoleReferenceRules, with its lister's NotFound messages. */
  #roleRules(ref: RoleRef | undefined, namespace: string, errors: string[]): PolicyRule[] {
    const name = ref?.name ?? '';
    if (ref?.kind === 'ClusterRole') {
      const role = this.#source.clusterRole(name);
      if (!role) errors.push(`clusterrole.rbac.authorization.k8s.io ${JSON.stringify(name)} not found`);
      return role?.rules ?? [];
    }
    if (ref?.kind === 'Role') {
      const role = namespace ? this.#source.role(namespace, name) : undefined;
      if (!role) errors.push(`role.rbac.authorization.k8s.io ${JSON.stringify(name)} not found`);
      return role?.rules ?? [];
    }
    errors.push(`unsupported role reference kind: ${JSON.stringify(ref?.kind ?? '')}`);
    return [];
  }
}
