// RBAC's escalation checks (upstream's pkg/registry/rbac/*/policybased): a
// user may only grant what they hold.
//   - Writing a Role or ClusterRole needs every one of its rules, unless the
//     user may `escalate` that role. A ClusterRole's aggregationRule can
//     gather anything, so it needs everything (cluster-admin).
//   - Writing a RoleBinding or ClusterRoleBinding needs every rule of the
//     role it refers to (in the binding's namespace), unless the user may
//     `bind` that role.
// system:masters may do either. A refusal is upstream's 403, naming what
// the user lacks. Upstream runs these in the RBAC registry; here they are
// a validating plugin at the same point of the write (after validation,
// before storage).

import { ApiError } from '../../api/errors.ts';
import type { KubeObject } from '../../api/meta.ts';
import type { PolicyRule, RoleRef, Subject } from '../../api/types/rbac-v1.ts';
import type { UserInfo } from '../authn/user.ts';
import { SYSTEM_MASTERS } from '../authn/user.ts';
import type { Authorizer } from '../authz/authorizer.ts';
import { breakdownRule, missingRules } from '../authz/reconcile.ts';
import type { RuleResolver } from '../authz/reviews.ts';
import type { AdmissionAttributes, ValidatingPlugin } from './admission.ts';

const RBAC = 'rbac.authorization.k8s.io';
const ROLE_KINDS = new Set(['roles', 'clusterroles']);
const BINDING_KINDS = new Set(['rolebindings', 'clusterrolebindings']);
const EVERYTHING: PolicyRule[] = [
  { apiGroups: ['*'], resources: ['*'], verbs: ['*'] },
  { nonResourceURLs: ['*'], verbs: ['*'] },
];

export interface EscalationDeps {
  authorizer: Authorizer;
  resolver: RuleResolver;
  /** The rules of the role a binding refers to; undefined when it does not exist. */
  roleRules(kind: string, namespace: string, name: string): Promise<PolicyRule[] | undefined>;
}

const goQuoted = (xs: string[]) => `[${xs.map((x) => JSON.stringify(x)).join(' ')}]`;

/** upstream's CompactString of one rule: `{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}`. */
function compactString(r: PolicyRule): string {
  const parts: string[] = [];
  if (r.apiGroups?.length) parts.push(`APIGroups:${goQuoted(r.apiGroups)}`);
  if (r.resources?.length) parts.push(`Resources:${goQuoted(r.resources)}`);
  if (r.resourceNames?.length) parts.push(`ResourceNames:${goQuoted(r.resourceNames)}`);
  if (r.nonResourceURLs?.length) parts.push(`NonResourceURLs:${goQuoted(r.nonResourceURLs)}`);
  parts.push(`Verbs:${goQuoted(r.verbs ?? [])}`);
  return `{${parts.join(', ')}}`;
}

/** upstream's CompactRules: one-group, one-resource rules that differ only by verb become one. */
function compact(rules: PolicyRule[]): PolicyRule[] {
  const out = new Map<string, PolicyRule>();
  for (const r of rules) {
    const key = JSON.stringify([r.apiGroups, r.resources, r.resourceNames, r.nonResourceURLs]);
    const seen = out.get(key);
    if (seen) seen.verbs = [...new Set([...(seen.verbs ?? []), ...(r.verbs ?? [])])];
    else out.set(key, { ...r, verbs: [...(r.verbs ?? [])] });
  }
  return [...out.values()];
}

export function rbacEscalationPlugin(deps: EscalationDeps): ValidatingPlugin {
  const allowedTo = (user: UserInfo, verb: string, resource: string, namespace: string, name: string) =>
    deps.authorizer.authorize({
      user,
      verb,
      isResourceRequest: true,
      path: '',
      apiGroup: RBAC,
      apiVersion: '',
      namespace,
      resource,
      subresource: '',
      name,
    }).decision === 'allow';

  /** Throws upstream's 403 unless `user` holds every one of `rules` in `namespace`. */
  const confirmNoEscalation = (attrs: AdmissionAttributes, rules: PolicyRule[], message?: string) => {
    const held = deps.resolver.rulesFor(attrs.user, attrs.namespace);
    const owner: PolicyRule[] = [
      ...held.resourceRules.map((r) => ({ ...r }) as PolicyRule),
      ...held.nonResourceRules.map((r) => ({ ...r }) as PolicyRule),
    ];
    const missing = missingRules(owner, rules.flatMap(breakdownRule));
    if (missing.length === 0) return;
    const name = attrs.object?.metadata.name ?? attrs.name;
    const why =
      message ??
      `user ${JSON.stringify(attrs.user.name)} (groups=${goQuoted(attrs.user.groups)}) is attempting to grant RBAC permissions not currently held:\n${compact(missing).map(compactString).join('\n')}${
        held.errors.length ? `; resolution errors: [${held.errors.join(' ')}]` : ''
      }`;
    throw new ApiError(
      403,
      'Forbidden',
      `${attrs.resource}.${RBAC} ${JSON.stringify(name)} is forbidden: ${why}`,
      {
        name,
        group: RBAC,
        kind: attrs.resource,
      },
    );
  };

  return {
    name: 'RBACEscalation',
    handles: (a) =>
      a.group === RBAC &&
      (a.operation === 'CREATE' || a.operation === 'UPDATE') &&
      a.subresource === '' &&
      !!a.object &&
      (ROLE_KINDS.has(a.resource) || BINDING_KINDS.has(a.resource)),
    async validate(attrs) {
      if (attrs.user.groups.includes(SYSTEM_MASTERS)) return undefined;
      const obj = attrs.object as KubeObject & {
        rules?: PolicyRule[];
        aggregationRule?: { clusterRoleSelectors?: unknown[] };
        roleRef?: RoleRef;
        subjects?: Subject[];
      };
      const old = attrs.oldObject as typeof obj | undefined;
      const name = obj.metadata.name ?? '';
      if (ROLE_KINDS.has(attrs.resource)) {
        const unchanged =
          old &&
          JSON.stringify(old.rules ?? []) === JSON.stringify(obj.rules ?? []) &&
          JSON.stringify(old.aggregationRule ?? null) === JSON.stringify(obj.aggregationRule ?? null);
        if (unchanged || allowedTo(attrs.user, 'escalate', attrs.resource, attrs.namespace, name))
          return undefined;
        if (obj.aggregationRule?.clusterRoleSelectors?.length)
          confirmNoEscalation(
            attrs,
            EVERYTHING,
            'must have cluster-admin privileges to use the aggregationRule',
          );
        confirmNoEscalation(attrs, obj.rules ?? []);
        return undefined;
      }
      const ref = obj.roleRef;
      const unchanged =
        old &&
        JSON.stringify(old.roleRef) === JSON.stringify(ref) &&
        JSON.stringify(old.subjects ?? []) === JSON.stringify(obj.subjects ?? []);
      if (unchanged || !ref?.name || !ref.kind) return undefined;
      const roleResource = ref.kind === 'ClusterRole' ? 'clusterroles' : 'roles';
      if (allowedTo(attrs.user, 'bind', roleResource, attrs.namespace, ref.name)) return undefined;
      const rules = await deps.roleRules(ref.kind, attrs.namespace, ref.name);
      if (!rules) {
        const what = ref.kind === 'ClusterRole' ? 'clusterrole' : 'role';
        throw new ApiError(
          403,
          'Forbidden',
          `${attrs.resource}.${RBAC} ${JSON.stringify(name)} is forbidden: ${what}.${RBAC} ${JSON.stringify(ref.name)} not found`,
          { name, group: RBAC, kind: attrs.resource },
        );
      }
      confirmNoEscalation(attrs, rules);
      return undefined;
    },
  };
}
