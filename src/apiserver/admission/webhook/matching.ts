// Which admission requests a webhook or a policy is for: its rules
// (operations, apiGroups, apiVersions, resources with subresources, scope),
// its namespaceSelector and its objectSelector, as upstream's
// k8s.io/apiserver pkg/admission/plugin/webhook/predicates. Shared by the
// webhook plugins and ValidatingAdmissionPolicy's matchResources.

import { selectorMatches } from '../../../api/resources/checks.ts';
import type { RuleWithOperations } from '../../../api/types/admissionregistration-v1.ts';
import type { AdmissionAttributes } from '../admission.ts';

const has = (list: readonly string[] | undefined, v: string) =>
  (list ?? []).some((x) => x === '*' || x === v);

/** upstream's rules.Matcher.resource: "*" is every resource (no subresource), "*\/*" everything, "r/*", "*\/s". */
function resourceMatches(
  patterns: readonly string[] | undefined,
  resource: string,
  subresource: string,
): boolean {
  for (const p of patterns ?? []) {
    const [res, sub = ''] = p.split('/', 2) as [string, string?];
    if (p === '*/*') return true;
    if (p === '*' && subresource === '') return true;
    if (res === '*' && sub === subresource) return true;
    if (res === resource && (sub === '*' || sub === subresource)) return true;
  }
  return false;
}

function scopeMatches(scope: string | undefined, attrs: AdmissionAttributes): boolean {
  if (!scope || scope === '*') return true;
  // A Namespace is cluster-scoped, though its request carries its own name as the namespace.
  const clusterScoped = attrs.namespace === '' || (attrs.resource === 'namespaces' && attrs.group === '');
  return scope === 'Cluster' ? clusterScoped : !clusterScoped;
}

export function ruleMatches(rule: RuleWithOperations, attrs: AdmissionAttributes): boolean {
  return (
    has(rule.operations, attrs.operation) &&
    has(rule.apiGroups, attrs.group) &&
    has(rule.apiVersions, attrs.version) &&
    resourceMatches(rule.resources, attrs.resource, attrs.subresource) &&
    scopeMatches(rule.scope, attrs)
  );
}

export const anyRuleMatches = (
  rules: readonly RuleWithOperations[] | undefined,
  attrs: AdmissionAttributes,
) => (rules ?? []).some((r) => ruleMatches(r, attrs));

/** The labels of a namespace, from the server's cache; undefined when it does not exist. */
export type NamespaceLabels = (name: string) => Promise<Record<string, string> | undefined>;

const isEmpty = (sel: unknown) =>
  !sel ||
  (Object.keys((sel as { matchLabels?: object }).matchLabels ?? {}).length === 0 &&
    ((sel as { matchExpressions?: unknown[] }).matchExpressions ?? []).length === 0);

/**
 * upstream's namespace matcher: a cluster-scoped object always matches
 * (but a Namespace is matched by its own labels); a namespaced one by its
 * namespace's labels.
 */
export async function namespaceSelectorMatches(
  selector: unknown,
  attrs: AdmissionAttributes,
  namespaceLabels: NamespaceLabels,
): Promise<boolean> {
  if (isEmpty(selector)) return true;
  if (attrs.group === '' && attrs.resource === 'namespaces') {
    const ns = attrs.object ?? attrs.oldObject;
    return selectorMatches(selector, ns?.metadata.labels ?? {}) === true;
  }
  if (attrs.namespace === '') return true;
  const labels = await namespaceLabels(attrs.namespace);
  return selectorMatches(selector, labels ?? {}) === true;
}

/** upstream's object matcher: the new object's labels or the old one's. */
export function objectSelectorMatches(selector: unknown, attrs: AdmissionAttributes): boolean {
  if (isEmpty(selector)) return true;
  return [attrs.object, attrs.oldObject].some(
    (o) => o !== undefined && selectorMatches(selector, o.metadata.labels ?? {}) === true,
  );
}
