// Audit policy (audit.k8s.io/v1 Policy), as upstream's
// k8s.io/apiserver/pkg/audit/policy: the first rule that matches a request
// decides its level (None, Metadata, Request, RequestResponse); no match is
// None. A rule matches on users, userGroups, verbs, resources (group,
// resources with `*` and `<resource>/<subresource>` forms, resourceNames),
// namespaces, and nonResourceURLs (`*` as a suffix wildcard). omitStages at
// the policy and the rule add up.

import { parse as parseYaml } from 'yaml';
import type { UserInfo } from '../authn/user.ts';
import type { RequestInfo } from '../request-info.ts';

export const LEVELS = ['None', 'Metadata', 'Request', 'RequestResponse'] as const;
export type Level = (typeof LEVELS)[number];
export const STAGES = ['RequestReceived', 'ResponseStarted', 'ResponseComplete', 'Panic'] as const;
export type Stage = (typeof STAGES)[number];

interface GroupResources {
  group?: string;
  resources?: string[];
  resourceNames?: string[];
}

export interface PolicyRule {
  level: Level;
  users?: string[];
  userGroups?: string[];
  verbs?: string[];
  resources?: GroupResources[];
  namespaces?: string[];
  nonResourceURLs?: string[];
  omitStages?: Stage[];
  omitManagedFields?: boolean;
}

export interface Policy {
  rules: PolicyRule[];
  omitStages?: Stage[];
  omitManagedFields?: boolean;
}

export interface Decision {
  level: Level;
  omitStages: Stage[];
  omitManagedFields: boolean;
}

/** Parses a policy file (YAML or JSON); throws saying what is wrong, as kube-apiserver refuses to start. */
export function parsePolicy(text: string, path = 'audit policy'): Policy {
  const doc = parseYaml(text) as Partial<Policy> & { kind?: string; apiVersion?: string };
  if (doc?.kind !== 'Policy' || !/^audit\.k8s\.io\/v1(beta1|alpha1)?$/.test(doc.apiVersion ?? ''))
    throw new Error(`${path}: not an audit.k8s.io/v1 Policy`);
  const rules = doc.rules ?? [];
  if (rules.length === 0) throw new Error(`${path}: the policy has no rules`);
  rules.forEach((r, i) => {
    if (!LEVELS.includes(r.level))
      throw new Error(
        `${path}: rules[${i}].level: ${JSON.stringify(r.level)} is not one of ${LEVELS.join(', ')}`,
      );
    for (const s of [...(r.omitStages ?? []), ...(doc.omitStages ?? [])])
      if (!STAGES.includes(s)) throw new Error(`${path}: unknown stage ${JSON.stringify(s)}`);
    if (r.nonResourceURLs?.length && (r.resources?.length || r.namespaces?.length))
      throw new Error(
        `${path}: rules[${i}]: rules cannot apply to both regular resources and non-resource URLs`,
      );
  });
  return { rules, omitStages: doc.omitStages ?? [], omitManagedFields: doc.omitManagedFields ?? false };
}

const matchesResource = (rule: PolicyRule, info: RequestInfo): boolean => {
  if (!info.isResourceRequest) return false;
  if (rule.namespaces?.length && !rule.namespaces.includes(info.namespace ?? '')) return false;
  if (!rule.resources?.length) return true;
  const combined = info.subresource ? `${info.resource}/${info.subresource}` : info.resource;
  return rule.resources.some((gr) => {
    if ((gr.group ?? '') !== info.group && gr.group !== '*') return false;
    const names = gr.resources ?? [];
    const resourceOk =
      names.length === 0 ||
      names.some(
        (r) =>
          r === '*' ||
          r === combined ||
          (r === info.resource && !info.subresource) ||
          (r === `*/${info.subresource}` && info.subresource !== '') ||
          (r === `${info.resource}/*` && info.subresource !== ''),
      );
    return resourceOk && (!gr.resourceNames?.length || gr.resourceNames.includes(info.name));
  });
};

const matchesURL = (rule: PolicyRule, path: string) =>
  (rule.nonResourceURLs ?? []).some(
    (u) => u === '*' || u === path || (u.endsWith('*') && path.startsWith(u.slice(0, -1))),
  );

function ruleMatches(rule: PolicyRule, info: RequestInfo, user: UserInfo): boolean {
  if (rule.users?.length && !rule.users.includes(user.name)) return false;
  if (rule.userGroups?.length && !rule.userGroups.some((g) => user.groups.includes(g))) return false;
  if (rule.verbs?.length && !rule.verbs.includes(info.verb)) return false;
  if (rule.nonResourceURLs?.length) return !info.isResourceRequest && matchesURL(rule, info.path);
  if (rule.resources?.length || rule.namespaces?.length) return matchesResource(rule, info);
  return true;
}

/** The level a request is audited at, and the stages left out. */
export function evaluate(policy: Policy, info: RequestInfo, user: UserInfo): Decision {
  for (const rule of policy.rules) {
    if (!ruleMatches(rule, info, user)) continue;
    return {
      level: rule.level,
      omitStages: [...new Set([...(policy.omitStages ?? []), ...(rule.omitStages ?? [])])],
      omitManagedFields: rule.omitManagedFields ?? policy.omitManagedFields ?? false,
    };
  }
  return { level: 'None', omitStages: [], omitManagedFields: false };
}
