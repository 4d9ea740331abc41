// Validation and defaults for admissionregistration.k8s.io/v1: webhook
// configurations and ValidatingAdmissionPolicy(Binding), after upstream's
// pkg/apis/admissionregistration/validation and v1/defaults.go. CEL
// expressions are compiled here, as upstream refuses one that does not
// parse; type errors against the object's schema are the policy's status.

import { celEnv, compile } from '../../cel/cel.ts';
import type { KubeObject } from '../meta.ts';
import { duplicate, invalid, isDNS1123Subdomain, notSupported, required } from '../validation.ts';
import {
  at,
  child,
  type Errs,
  idx,
  isSet,
  labelSelector,
  type Obj,
  obj,
  objs,
  str,
  strings,
} from './checks.ts';

const OPERATIONS = ['*', 'CREATE', 'UPDATE', 'DELETE', 'CONNECT'];
const SCOPES = ['*', 'Cluster', 'Namespaced'];
const FAILURE_POLICIES = ['Fail', 'Ignore'];
const SIDE_EFFECTS = ['None', 'NoneOnDryRun'];
const MATCH_POLICIES = ['Exact', 'Equivalent'];
const REINVOCATION = ['Never', 'IfNeeded'];

// ---- defaults (v1/defaults.go) ----

function defaultRule(rule: Obj): void {
  rule.scope ??= '*';
}

function defaultSelectors(o: Obj): void {
  o.namespaceSelector ??= {};
  o.objectSelector ??= {};
}

export function defaultWebhookConfiguration(cfg: KubeObject, mutating: boolean): void {
  for (const w of objs(cfg.webhooks)) {
    w.failurePolicy ??= 'Fail';
    w.matchPolicy ??= 'Equivalent';
    defaultSelectors(w);
    w.timeoutSeconds ??= 10;
    if (mutating) w.reinvocationPolicy ??= 'Never';
    for (const r of objs(w.rules)) defaultRule(r);
    const service = obj(obj(w.clientConfig).service);
    if (isSet(obj(w.clientConfig).service)) service.port ??= 443;
  }
}

export function defaultPolicy(p: KubeObject): void {
  const spec = child(p as Obj, 'spec');
  spec.failurePolicy ??= 'Fail';
  if (isSet(spec.matchConstraints)) defaultMatchResources(obj(spec.matchConstraints));
}

export function defaultBinding(b: KubeObject): void {
  const spec = child(b as Obj, 'spec');
  if (isSet(spec.matchResources)) defaultMatchResources(obj(spec.matchResources));
}

function defaultMatchResources(m: Obj): void {
  m.matchPolicy ??= 'Equivalent';
  defaultSelectors(m);
  for (const r of [...objs(m.resourceRules), ...objs(m.excludeResourceRules)]) defaultRule(r);
}

// ---- webhook configurations ----

/** A webhook's name: a DNS subdomain with at least three segments (upstream validateWebhook). */
function webhookName(name: string, field: string): Errs {
  if (!name) return [required(field, '')];
  const errs = isDNS1123Subdomain(name).map((m) => invalid(field, name, m));
  if (name.split('.').length < 3)
    errs.push(invalid(field, name, 'should be a domain with at least three segments separated by dots'));
  return errs;
}

function oneOf(value: unknown, allowed: string[], field: string, requiredValue = false): Errs {
  if (!isSet(value)) return requiredValue ? [required(field, '')] : [];
  return allowed.includes(str(value)) ? [] : [notSupported(field, value, allowed)];
}

function ruleWithOperations(rule: Obj, field: string): Errs {
  const errs: Errs = [];
  const ops = strings(rule.operations);
  if (ops.length === 0) errs.push(required(at(field, 'operations'), ''));
  if (ops.length > 1 && ops.includes('*'))
    errs.push(invalid(at(field, 'operations'), ops, "if '*' is present, must not specify other operations"));
  ops.forEach((op, i) => {
    if (!OPERATIONS.includes(op)) errs.push(notSupported(idx(at(field, 'operations'), i), op, OPERATIONS));
  });
  return [...errs, ...rule_(rule, field)];
}

/** The groups, versions and resources of a rule (upstream validateRule). */
function rule_(rule: Obj, field: string): Errs {
  const errs: Errs = [];
  const groups = strings(rule.apiGroups);
  const versions = strings(rule.apiVersions);
  const resources = strings(rule.resources);
  if (groups.length === 0) errs.push(required(at(field, 'apiGroups'), ''));
  if (groups.length > 1 && groups.includes('*'))
    errs.push(
      invalid(at(field, 'apiGroups'), groups, "if '*' is present, must not specify other API groups"),
    );
  if (versions.length === 0) errs.push(required(at(field, 'apiVersions'), ''));
  if (versions.length > 1 && versions.includes('*'))
    errs.push(
      invalid(at(field, 'apiVersions'), versions, "if '*' is present, must not specify other API versions"),
    );
  versions.forEach((v, i) => {
    if (v === '') errs.push(required(idx(at(field, 'apiVersions'), i), ''));
  });
  if (resources.length === 0) errs.push(required(at(field, 'resources'), ''));
  const seen = new Set<string>();
  resources.forEach((r, i) => {
    const f = idx(at(field, 'resources'), i);
    if (r === '') errs.push(required(f, ''));
    else if (r.split('/').length > 2 || r.startsWith('/'))
      errs.push(invalid(f, r, "must be 'resource' or 'resource/subresource'"));
    if (seen.has(r)) errs.push(duplicate(f, r));
    seen.add(r);
  });
  if (
    resources.includes('*') &&
    resources.length > 1 &&
    !resources.every((r) => r === '*' || r.includes('/'))
  )
    errs.push(
      invalid(
        at(field, 'resources'),
        resources,
        "if '*' is present, must not specify other resources without subresources",
      ),
    );
  errs.push(...oneOf(rule.scope, SCOPES, at(field, 'scope')));
  return errs;
}

function clientConfig(cc: Obj, field: string): Errs {
  const hasURL = isSet(cc.url);
  const hasService = isSet(cc.service);
  if (hasURL === hasService) return [required(field, 'exactly one of url or service is required')];
  if (hasURL) {
    const url = str(cc.url);
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      return [invalid(at(field, 'url'), url, 'host must be specified')];
    }
    const errs: Errs = [];
    if (parsed.protocol !== 'https:')
      errs.push(invalid(at(field, 'url'), url, "'https' is the only allowed URL scheme"));
    if (!parsed.host) errs.push(invalid(at(field, 'url'), url, 'host must be specified'));
    if (parsed.username || parsed.password)
      errs.push(invalid(at(field, 'url'), url, 'user information is not permitted in the URL'));
    if (parsed.hash) errs.push(invalid(at(field, 'url'), url, 'fragments are not permitted in the URL'));
    if (parsed.search)
      errs.push(invalid(at(field, 'url'), url, 'query parameters are not permitted in the URL'));
    return errs;
  }
  const svc = obj(cc.service);
  const errs: Errs = [];
  const f = at(field, 'service');
  if (!str(svc.name)) errs.push(required(at(f, 'name'), 'service name is required'));
  if (!str(svc.namespace)) errs.push(required(at(f, 'namespace'), 'service namespace is required'));
  const port = svc.port;
  if (typeof port === 'number' && (port < 1 || port > 65535))
    errs.push(invalid(at(f, 'port'), port, 'port is not valid: must be between 1 and 65535, inclusive'));
  if (isSet(svc.path) && !str(svc.path).startsWith('/'))
    errs.push(invalid(at(f, 'path'), svc.path, "must start with a '/'"));
  return errs;
}

/** The environment matchConditions compile against (upstream's matchconditions filter). */
export const matchConditionEnv = celEnv({
  variables: { object: 'dyn', oldObject: 'dyn', request: 'dyn', authorizer: 'dyn', params: 'dyn' },
});

function matchConditions(conditions: Obj[], field: string): Errs {
  const errs: Errs = [];
  const names = new Set<string>();
  if (conditions.length > 64) errs.push(invalid(field, conditions.length, 'must have at most 64 items'));
  conditions.forEach((c, i) => {
    const f = idx(field, i);
    const name = str(c.name);
    if (!name) errs.push(required(at(f, 'name'), ''));
    else if (names.has(name)) errs.push(duplicate(at(f, 'name'), name));
    names.add(name);
    errs.push(...expression(c.expression, at(f, 'expression'), matchConditionEnv));
  });
  return errs;
}

function expression(expr: unknown, field: string, env: typeof matchConditionEnv): Errs {
  const text = str(expr);
  if (!text) return [required(field, '')];
  const compiled = compile(text, env);
  if (compiled.ok) return [];
  return [invalid(field, text, `compilation failed: ${compiled.errors.map((e) => e.message).join('; ')}`)];
}

function webhook(w: Obj, field: string, mutating: boolean): Errs {
  const errs: Errs = [...webhookName(str(w.name), at(field, 'name'))];
  errs.push(...objs(w.rules).flatMap((r, i) => ruleWithOperations(r, idx(at(field, 'rules'), i))));
  errs.push(...oneOf(w.failurePolicy, FAILURE_POLICIES, at(field, 'failurePolicy')));
  errs.push(...oneOf(w.matchPolicy, MATCH_POLICIES, at(field, 'matchPolicy')));
  errs.push(...oneOf(w.sideEffects, SIDE_EFFECTS, at(field, 'sideEffects'), true));
  if (mutating) errs.push(...oneOf(w.reinvocationPolicy, REINVOCATION, at(field, 'reinvocationPolicy')));
  const timeout = w.timeoutSeconds;
  if (typeof timeout === 'number' && (timeout < 1 || timeout > 30))
    errs.push(
      invalid(at(field, 'timeoutSeconds'), timeout, 'the timeout value must be between 1 and 30 seconds'),
    );
  const versions = strings(w.admissionReviewVersions);
  if (!versions.includes('v1') && !versions.includes('v1beta1'))
    errs.push(required(at(field, 'admissionReviewVersions'), 'must specify one of v1, v1beta1'));
  errs.push(...labelSelector(w.namespaceSelector, at(field, 'namespaceSelector')));
  errs.push(...labelSelector(w.objectSelector, at(field, 'objectSelector')));
  errs.push(...clientConfig(obj(w.clientConfig), at(field, 'clientConfig')));
  errs.push(...matchConditions(objs(w.matchConditions), at(field, 'matchConditions')));
  return errs;
}

export function validateWebhookConfiguration(cfg: KubeObject, mutating: boolean): Errs {
  const errs: Errs = [];
  const names = new Set<string>();
  objs(cfg.webhooks).forEach((w, i) => {
    const field = idx('webhooks', i);
    const name = str(w.name);
    if (name && names.has(name)) errs.push(duplicate(at(field, 'name'), name));
    names.add(name);
    errs.push(...webhook(w, field, mutating));
  });
  return errs;
}

// ---- ValidatingAdmissionPolicy and its binding ----

/** The variables a policy's expressions may use (upstream's validating admission policy environment). */
export const POLICY_VARIABLES = {
  object: 'dyn',
  oldObject: 'dyn',
  request: 'dyn',
  params: 'dyn',
  namespaceObject: 'dyn',
  authorizer: 'dyn',
  variables: 'dyn',
} as const;
export const policyEnv = celEnv({ variables: POLICY_VARIABLES });

function matchResources(m: Obj, field: string, requireRules: boolean): Errs {
  const errs: Errs = [];
  const rules = objs(m.resourceRules);
  if (requireRules && rules.length === 0) errs.push(required(at(field, 'resourceRules'), ''));
  errs.push(...rules.flatMap((r, i) => ruleWithOperations(r, idx(at(field, 'resourceRules'), i))));
  errs.push(
    ...objs(m.excludeResourceRules).flatMap((r, i) =>
      ruleWithOperations(r, idx(at(field, 'excludeResourceRules'), i)),
    ),
  );
  errs.push(...oneOf(m.matchPolicy, MATCH_POLICIES, at(field, 'matchPolicy')));
  errs.push(...labelSelector(m.namespaceSelector, at(field, 'namespaceSelector')));
  errs.push(...labelSelector(m.objectSelector, at(field, 'objectSelector')));
  return errs;
}

export function validatePolicy(p: KubeObject): Errs {
  const spec = obj(p.spec);
  const errs: Errs = [];
  errs.push(...oneOf(spec.failurePolicy, FAILURE_POLICIES, 'spec.failurePolicy'));
  if (!isSet(spec.matchConstraints)) errs.push(required('spec.matchConstraints', ''));
  else errs.push(...matchResources(obj(spec.matchConstraints), 'spec.matchConstraints', true));
  if (isSet(spec.paramKind)) {
    const pk = obj(spec.paramKind);
    if (!str(pk.kind)) errs.push(required('spec.paramKind.kind', ''));
    if (!str(pk.apiVersion)) errs.push(required('spec.paramKind.apiVersion', ''));
    else if (str(pk.apiVersion).split('/').length > 2)
      errs.push(
        invalid(
          'spec.paramKind.apiVersion',
          pk.apiVersion,
          'an apiVersion must be in the form of group/version',
        ),
      );
  }
  const validations = objs(spec.validations);
  const audits = objs(spec.auditAnnotations);
  if (validations.length === 0 && audits.length === 0)
    errs.push(required('spec.validations', 'validations or auditAnnotations must contain at least one item'));
  validations.forEach((v, i) => {
    const f = idx('spec.validations', i);
    errs.push(...expression(v.expression, at(f, 'expression'), policyEnv));
    const message = str(v.message);
    if (/[\r\n]/.test(message))
      errs.push(invalid(at(f, 'message'), message, 'message must not contain line breaks'));
    if (isSet(v.messageExpression))
      errs.push(...expression(v.messageExpression, at(f, 'messageExpression'), policyEnv));
    if (isSet(v.reason)) {
      const reasons = ['Unauthorized', 'Forbidden', 'Invalid', 'RequestEntityTooLarge'];
      errs.push(...oneOf(v.reason, reasons, at(f, 'reason')));
    }
  });
  audits.forEach((a, i) => {
    const f = idx('spec.auditAnnotations', i);
    if (!str(a.key)) errs.push(required(at(f, 'key'), ''));
    errs.push(...expression(a.valueExpression, at(f, 'valueExpression'), policyEnv));
  });
  errs.push(...matchConditions(objs(spec.matchConditions), 'spec.matchConditions'));
  const names = new Set<string>();
  objs(spec.variables).forEach((v, i) => {
    const f = idx('spec.variables', i);
    const name = str(v.name);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      errs.push(invalid(at(f, 'name'), name, 'name is not a valid CEL identifier'));
    if (names.has(name)) errs.push(duplicate(at(f, 'name'), name));
    names.add(name);
    errs.push(...expression(v.expression, at(f, 'expression'), policyEnv));
  });
  return errs;
}

const VALIDATION_ACTIONS = ['Deny', 'Warn', 'Audit'];

export function validateBinding(b: KubeObject): Errs {
  const spec = obj(b.spec);
  const errs: Errs = [];
  if (!str(spec.policyName)) errs.push(required('spec.policyName', ''));
  const actions = strings(spec.validationActions);
  if (actions.length === 0) errs.push(required('spec.validationActions', ''));
  const seen = new Set<string>();
  actions.forEach((a, i) => {
    const f = idx('spec.validationActions', i);
    if (!VALIDATION_ACTIONS.includes(a)) errs.push(notSupported(f, a, VALIDATION_ACTIONS));
    if (seen.has(a)) errs.push(duplicate(f, a));
    seen.add(a);
  });
  if (actions.includes('Deny') && actions.includes('Warn'))
    errs.push(
      invalid(
        'spec.validationActions',
        actions,
        'must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)',
      ),
    );
  if (isSet(spec.paramRef)) {
    const ref = obj(spec.paramRef);
    if (isSet(ref.name) && isSet(ref.selector))
      errs.push(invalid('spec.paramRef', ref, 'name and selector are mutually exclusive'));
    if (!isSet(ref.name) && !isSet(ref.selector))
      errs.push(required('spec.paramRef', 'one of name or selector must be set'));
    errs.push(
      ...oneOf(ref.parameterNotFoundAction, ['Allow', 'Deny'], 'spec.paramRef.parameterNotFoundAction', true),
    );
  }
  if (isSet(spec.matchResources))
    errs.push(...matchResources(obj(spec.matchResources), 'spec.matchResources', false));
  return errs;
}
