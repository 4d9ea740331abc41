// The ValidatingAdmissionPolicy plugin, as upstream's
// pkg/admission/plugin/policy/validating: each ValidatingAdmissionPolicyBinding
// names a policy; when the request matches the policy's matchConstraints and
// the binding's matchResources, the policy's matchConditions hold, and its
// params are found (paramKind + the binding's paramRef), each CEL validation
// is evaluated against object, oldObject, request, params, namespaceObject
// and variables. A failed validation is acted on as the binding's
// validationActions say: Deny refuses, Warn warns, Audit annotates.

import { ApiError, type StatusReason } from '../../api/errors.ts';
import type { KubeObject } from '../../api/meta.ts';
import { policyEnv } from '../../api/resources/admissionregistration-validation.ts';
import { selectorMatches } from '../../api/resources/checks.ts';
import type {
  MatchResources,
  ValidatingAdmissionPolicy,
  ValidatingAdmissionPolicyBinding,
} from '../../api/types/admissionregistration-v1.ts';
import { compile, type Program } from '../../cel/cel.ts';
import type { AdmissionAttributes, AdmissionResponse, ValidatingPlugin } from './admission.ts';
import {
  anyRuleMatches,
  type NamespaceLabels,
  namespaceSelectorMatches,
  objectSelectorMatches,
} from './webhook/matching.ts';
import { admissionReview } from './webhook/review.ts';

export interface PolicyDeps {
  policies(): Promise<ValidatingAdmissionPolicy[]>;
  bindings(): Promise<ValidatingAdmissionPolicyBinding[]>;
  namespaceLabels: NamespaceLabels;
  getNamespace(name: string): Promise<KubeObject | undefined>;
  /**
   * The param objects of `apiVersion`/`kind`: the one named, or those the
   * selector selects, in `namespace` ('' for cluster-scoped kinds or all
   * namespaces). Undefined when the kind is not served.
   */
  params(
    apiVersion: string,
    kind: string,
    namespace: string,
    ref: { name?: string; selector?: unknown },
  ): Promise<{ namespaced: boolean; items: KubeObject[] } | undefined>;
}

const programs = new Map<string, Program | string>();
function program(expression: string): Program | string {
  let p = programs.get(expression);
  if (!p) {
    const c = compile(expression, policyEnv);
    p = c.ok ? c.program : c.errors.map((e) => e.message).join('; ');
    if (programs.size > 10_000) programs.clear();
    programs.set(expression, p);
  }
  return p;
}

/** Evaluates one expression; a compile error is an evaluation error, as upstream reports it. */
function evaluate(
  expression: string,
  activation: Record<string, unknown>,
): { value: unknown } | { error: string } {
  const p = program(expression);
  if (typeof p === 'string') return { error: `compilation error: ${p}` };
  const r = p.eval(activation);
  return r.ok ? { value: r.value } : { error: r.error };
}

async function matchResources(
  m: MatchResources | undefined,
  attrs: AdmissionAttributes,
  namespaceLabels: NamespaceLabels,
  requireRules: boolean,
): Promise<boolean> {
  if (!m) return !requireRules;
  if (m.resourceRules?.length || requireRules) if (!anyRuleMatches(m.resourceRules, attrs)) return false;
  if (anyRuleMatches(m.excludeResourceRules, attrs)) return false;
  if (!objectSelectorMatches(m.objectSelector, attrs)) return false;
  return namespaceSelectorMatches(m.namespaceSelector, attrs, namespaceLabels);
}

interface Failure {
  message: string;
  reason: StatusReason;
  index: number;
}

const REASON_CODES: Partial<Record<StatusReason, number>> = {
  Unauthorized: 401,
  Forbidden: 403,
  Invalid: 422,
  RequestEntityTooLarge: 413,
};

/** The refusal for a Deny, as upstream's: 422 Invalid unless the validation names another reason. */
function refusal(attrs: AdmissionAttributes, f: Failure): ApiError {
  const name = attrs.name || attrs.object?.metadata.name || '';
  const resource = attrs.group ? `${attrs.resource}.${attrs.group}` : attrs.resource;
  const details = { name, group: attrs.group, kind: attrs.resource };
  if (f.reason === 'Invalid')
    return new ApiError(422, 'Invalid', `${resource} "${name}" is invalid: : ${f.message}`, {
      ...details,
      causes: [{ reason: 'FieldValueInvalid', message: f.message, field: '' }],
    });
  if (f.reason === 'Forbidden')
    return new ApiError(403, 'Forbidden', `${resource} "${name}" is forbidden: ${f.message}`, details);
  return new ApiError(REASON_CODES[f.reason] ?? 400, f.reason, f.message, details);
}

export function validatingAdmissionPolicyPlugin(deps: PolicyDeps): ValidatingPlugin {
  return {
    name: 'ValidatingAdmissionPolicy',
    // As the webhooks, policies never judge the objects that configure admission.
    handles: (attrs) =>
      !(
        attrs.group === 'admissionregistration.k8s.io' &&
        (attrs.resource === 'validatingadmissionpolicies' ||
          attrs.resource === 'validatingadmissionpolicybindings')
      ),
    async validate(attrs): Promise<AdmissionResponse> {
      const [policies, bindings] = await Promise.all([deps.policies(), deps.bindings()]);
      if (bindings.length === 0) return {};
      const byName = new Map(policies.map((p) => [p.metadata.name, p]));
      const warnings: string[] = [];
      const audits: unknown[] = [];
      const sorted = [...bindings].sort((a, b) =>
        (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''),
      );
      for (const binding of sorted) {
        const policy = byName.get(binding.spec?.policyName ?? '');
        if (!policy) continue;
        const pspec = policy.spec ?? {};
        if (!(await matchResources(pspec.matchConstraints, attrs, deps.namespaceLabels, true))) continue;
        if (!(await matchResources(binding.spec?.matchResources, attrs, deps.namespaceLabels, false)))
          continue;
        const failures = await evaluatePolicy(policy, binding, attrs, deps);
        const actions = binding.spec?.validationActions ?? [];
        const policyName = policy.metadata.name ?? '';
        const bindingName = binding.metadata.name ?? '';
        for (const f of failures) {
          if (actions.includes('Deny'))
            throw refusal(attrs, {
              ...f,
              message: `ValidatingAdmissionPolicy '${policyName}' with binding '${bindingName}' denied request: ${f.message}`,
            });
          if (actions.includes('Warn'))
            warnings.push(
              `Validation failed for ValidatingAdmissionPolicy '${policyName}' with binding '${bindingName}': ${f.message}`,
            );
          if (actions.includes('Audit'))
            audits.push({
              message: f.message,
              policy: policyName,
              binding: bindingName,
              expressionIndex: f.index,
              validationActions: actions,
            });
        }
      }
      if (audits.length)
        attrs.addAuditAnnotation?.(
          'validation.policy.admission.k8s.io/validation_failure',
          JSON.stringify(audits),
        );
      return { warnings };
    },
  };
}

/** The failures of one policy under one binding; [] when it does not apply (matchConditions false, params allowed missing). */
async function evaluatePolicy(
  policy: ValidatingAdmissionPolicy,
  binding: ValidatingAdmissionPolicyBinding,
  attrs: AdmissionAttributes,
  deps: PolicyDeps,
): Promise<Failure[]> {
  const spec = policy.spec ?? {};
  const fail = spec.failurePolicy !== 'Ignore';
  const misconfigured = (message: string): Failure[] =>
    fail ? [{ message, reason: 'Invalid', index: -1 }] : [];

  // The params: none without a paramKind; one evaluation per param object otherwise.
  let paramSets: (KubeObject | null)[] = [null];
  if (spec.paramKind) {
    const ref = binding.spec?.paramRef;
    if (!ref) return misconfigured('failed to configure binding: paramRef is required when paramKind is set');
    const found = await deps.params(spec.paramKind.apiVersion ?? '', spec.paramKind.kind ?? '', '', {});
    if (!found)
      return misconfigured(`failed to configure policy: paramKind ${spec.paramKind.kind} is not served`);
    const namespace = found.namespaced ? (ref.namespace ?? attrs.namespace) : '';
    const { items } = (await deps.params(
      spec.paramKind.apiVersion ?? '',
      spec.paramKind.kind ?? '',
      namespace,
      {
        ...(ref.name ? { name: ref.name } : {}),
        ...(ref.selector ? { selector: ref.selector } : {}),
      },
    )) ?? { items: [] };
    if (items.length === 0) {
      if (ref.parameterNotFoundAction === 'Allow') return [];
      return [
        {
          message: 'no params found for policy binding with `Deny` parameterNotFoundAction',
          reason: 'Invalid',
          index: -1,
        },
      ];
    }
    paramSets = items;
  }

  const review = admissionReview(attrs);
  const namespaceObject = attrs.namespace ? ((await deps.getNamespace(attrs.namespace)) ?? null) : null;
  const failures: Failure[] = [];
  for (const params of paramSets) {
    const activation: Record<string, unknown> = {
      object: attrs.object ?? null,
      oldObject: attrs.oldObject ?? null,
      request: review.request,
      params,
      namespaceObject,
      authorizer: null,
    };
    const variables: Record<string, unknown> = {};
    activation.variables = variables;
    for (const v of spec.variables ?? []) {
      const r = evaluate(v.expression ?? '', activation);
      if ('value' in r) variables[v.name ?? ''] = r.value;
    }
    let matched = true;
    for (const c of spec.matchConditions ?? []) {
      const r = evaluate(c.expression ?? '', activation);
      if ('error' in r) {
        if (fail)
          failures.push({
            message: `error evaluating matchCondition ${JSON.stringify(c.name)}: ${r.error}`,
            reason: 'Invalid',
            index: -1,
          });
        matched = false;
        break;
      }
      if (r.value !== true) {
        matched = false;
        break;
      }
    }
    if (!matched) continue;
    (spec.validations ?? []).forEach((v, index) => {
      const expression = v.expression ?? '';
      const r = evaluate(expression, activation);
      const reason = (v.reason as StatusReason | undefined) ?? 'Invalid';
      if ('error' in r) {
        if (fail)
          failures.push({
            message: `expression '${expression}' resulted in error: ${r.error}`,
            reason,
            index,
          });
        return;
      }
      if (r.value === true) return;
      failures.push({ message: validationMessage(v, expression, activation), reason, index });
    });
    for (const a of spec.auditAnnotations ?? []) {
      const r = evaluate(a.valueExpression ?? '', activation);
      if ('value' in r && typeof r.value === 'string' && r.value !== '')
        attrs.addAuditAnnotation?.(`${policy.metadata.name}/${a.key}`, r.value);
    }
  }
  return failures;
}

/** messageExpression's string when it gives one, else message, else upstream's "failed expression: ...". */
function validationMessage(
  v: { message?: string; messageExpression?: string },
  expression: string,
  activation: Record<string, unknown>,
): string {
  if (v.messageExpression) {
    const r = evaluate(v.messageExpression, activation);
    if ('value' in r && typeof r.value === 'string' && r.value.trim() !== '' && !/[\r\n]/.test(r.value))
      return r.value;
  }
  return v.message || `failed expression: ${expression.trim()}`;
}

/** Whether an object's labels match a paramRef's selector (for param lookups by selector). */
export const paramSelected = (selector: unknown, o: KubeObject): boolean =>
  selectorMatches(selector ?? {}, o.metadata.labels ?? {}) === true;
