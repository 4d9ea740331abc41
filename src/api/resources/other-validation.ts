// Validation for the smaller API groups: RBAC, networking (Ingress,
// IngressClass), autoscaling, scheduling (PriorityClass), coordination
// (Lease) and policy (PodDisruptionBudget), after each group's upstream
// pkg/apis/<group>/validation.

import type { KubeObject } from '../meta.ts';
import {
  forbidden,
  goQuote,
  invalid,
  isDNS1035Label,
  isDNS1123Label,
  isDNS1123Subdomain,
  isValidIP,
  isValidPortName,
  isValidPortNum,
  notSupported,
  required,
  tooLong,
  validatePathSegmentName,
} from '../validation.ts';
import {
  at,
  dns1123Subdomain,
  type Errs,
  idx,
  immutableField,
  invalidShown,
  isSet,
  isWildcardDNS1123Subdomain,
  labelSelector,
  list,
  msgs,
  nonNegative,
  notMoreThan100Percent,
  num,
  type Obj,
  obj,
  objs,
  positiveIntOrPercent,
  quantity,
  quantityFormatError,
  str,
  strings,
} from './checks.ts';
import { preemptionPolicy } from './pod-validation.ts';

// ---- rbac.authorization.k8s.io ----

export const rbacGroup = 'rbac.authorization.k8s.io';

// Go's %#v of a []string, as upstream prints these bad values.
const goStrings = (v: string[]) => `[]string{${v.map(goQuote).join(', ')}}`;

const pathSegment = (name: string, field: string): Errs =>
  validatePathSegmentName(name, false).map((m) => invalid(field, name, m));

function policyRule(rule: Obj, namespaced: boolean, field: string): Errs {
  const errs: Errs = [];
  if (list(rule.verbs).length === 0)
    errs.push(required(at(field, 'verbs'), 'verbs must contain at least one value'));
  const urls = strings(rule.nonResourceURLs);
  if (urls.length > 0) {
    const p = at(field, 'nonResourceURLs');
    if (namespaced)
      errs.push(invalidShown(p, goStrings(urls), 'namespaced rules cannot apply to non-resource URLs'));
    if (list(rule.apiGroups).length + list(rule.resources).length + list(rule.resourceNames).length > 0)
      errs.push(
        invalidShown(
          p,
          goStrings(urls),
          'rules cannot apply to both regular resources and non-resource URLs',
        ),
      );
    return errs;
  }
  if (list(rule.apiGroups).length === 0)
    errs.push(required(at(field, 'apiGroups'), 'resource rules must supply at least one api group'));
  if (list(rule.resources).length === 0)
    errs.push(required(at(field, 'resources'), 'resource rules must supply at least one resource'));
  return errs;
}

/** ValidateRole and ValidateClusterRole. */
export function validateRole(role: KubeObject, namespaced: boolean): Errs {
  const errs: Errs = [];
  objs(role.rules).forEach((rule, i) => {
    errs.push(...policyRule(rule, namespaced, idx('rules', i)));
  });
  if (!namespaced && isSet(role.aggregationRule)) {
    const selectors = list(obj(role.aggregationRule).clusterRoleSelectors);
    const p = 'aggregationRule.clusterRoleSelectors';
    if (selectors.length === 0)
      errs.push(required(p, 'at least one clusterRoleSelector required if aggregationRule is non-nil'));
    selectors.forEach((s, i) => {
      errs.push(...labelSelector(s, idx(p, i)));
    });
  }
  return errs;
}

function subject(s: Obj, namespaced: boolean, field: string): Errs {
  const errs: Errs = [];
  const name = str(s.name);
  const group = str(s.apiGroup);
  if (!name) errs.push(required(at(field, 'name')));
  switch (s.kind) {
    case 'ServiceAccount':
      if (name) errs.push(...dns1123Subdomain(name, at(field, 'name')));
      if (group) errs.push(notSupported(at(field, 'apiGroup'), group, ['']));
      if (!namespaced && !str(s.namespace)) errs.push(required(at(field, 'namespace')));
      break;
    case 'User':
    case 'Group':
      if (group !== rbacGroup) errs.push(notSupported(at(field, 'apiGroup'), group, [rbacGroup]));
      break;
    default:
      errs.push(notSupported(at(field, 'kind'), str(s.kind), ['ServiceAccount', 'User', 'Group']));
  }
  return errs;
}

// Go's %#v of the internal RoleRef, as upstream prints it.
const roleRefShown = (r: Obj) =>
  `rbac.RoleRef{APIGroup:${goQuote(str(r.apiGroup))}, Kind:${goQuote(str(r.kind))}, Name:${goQuote(str(r.name))}}`;

/** ValidateRoleBinding and ValidateClusterRoleBinding, with the update rule when old is set. */
export function validateRoleBinding(b: KubeObject, namespaced: boolean, old?: KubeObject): Errs {
  const errs: Errs = [];
  const ref = obj(b.roleRef);
  if (ref.apiGroup !== rbacGroup) errs.push(notSupported('roleRef.apiGroup', str(ref.apiGroup), [rbacGroup]));
  const kinds = namespaced ? ['Role', 'ClusterRole'] : ['ClusterRole'];
  if (!kinds.includes(str(ref.kind))) errs.push(notSupported('roleRef.kind', str(ref.kind), kinds));
  const name = str(ref.name);
  if (!name) errs.push(required('roleRef.name'));
  else errs.push(...pathSegment(name, 'roleRef.name'));
  objs(b.subjects).forEach((s, i) => {
    errs.push(...subject(s, namespaced, idx('subjects', i)));
  });
  if (old) {
    const before = obj(old.roleRef);
    if (before.apiGroup !== ref.apiGroup || before.kind !== ref.kind || before.name !== ref.name)
      errs.push(invalidShown('roleRef', roleRefShown(ref), 'cannot change roleRef'));
  }
  return errs;
}

/** v1 defaults: a roleRef's and a User or Group subject's API group. */
export function rbacBindingDefaults(b: KubeObject): void {
  if (b.roleRef && typeof b.roleRef === 'object' && !str((b.roleRef as Obj).apiGroup))
    (b.roleRef as Obj).apiGroup = rbacGroup;
  for (const s of objs(b.subjects)) {
    if (!str(s.apiGroup) && (s.kind === 'User' || s.kind === 'Group')) s.apiGroup = rbacGroup;
  }
}

// ---- networking.k8s.io ----

const pathTypes = ['Exact', 'ImplementationSpecific', 'Prefix'];
const invalidPathSequences = ['//', '/./', '/../', '%2f', '%2F'];
const invalidPathSuffixes = ['/..', '/.'];

function ingressBackend(b: Obj, field: string): Errs {
  const hasResource = isSet(b.resource);
  const hasService = isSet(b.service);
  if (hasResource && hasService) return [invalid(field, '', 'cannot set both resource and service backends')];
  if (hasResource) {
    const r = obj(b.resource);
    const p = at(field, 'resource');
    const errs: Errs = [];
    if (isSet(r.apiGroup)) errs.push(...dns1123Subdomain(str(r.apiGroup), at(p, 'apiGroup')));
    if (!str(r.kind)) errs.push(required(at(p, 'kind')));
    else errs.push(...pathSegment(str(r.kind), at(p, 'kind')));
    if (!str(r.name)) errs.push(required(at(p, 'name')));
    else errs.push(...pathSegment(str(r.name), at(p, 'name')));
    return errs;
  }
  if (!hasService) return [invalid(field, '', 'resource or service backend is required')];
  const svc = obj(b.service);
  const errs: Errs = [];
  const name = str(svc.name);
  if (!name) errs.push(required(at(field, 'service', 'name')));
  else {
    // Services are named as DNS-1035 labels.
    errs.push(...msgs(at(field, 'service', 'name'), name, isDNS1035Label(name)));
  }
  const port = obj(svc.port);
  const portName = str(port.name);
  const portNumber = num(port.number) ?? 0;
  if (portName && portNumber) errs.push(invalid(field, '', 'cannot set both port name & port number'));
  else if (portName)
    errs.push(...msgs(at(field, 'service', 'port', 'name'), portName, isValidPortName(portName)));
  else if (portNumber)
    errs.push(...msgs(at(field, 'service', 'port', 'number'), portNumber, isValidPortNum(portNumber)));
  else errs.push(required(field, 'port name or number is required'));
  return errs;
}

function ingressPath(p: Obj, field: string): Errs {
  if (!isSet(p.pathType)) return [required(at(field, 'pathType'), 'pathType must be specified')];
  const errs: Errs = [];
  const path = str(p.path);
  const pp = at(field, 'path');
  switch (p.pathType) {
    case 'Exact':
    case 'Prefix':
      if (!path.startsWith('/')) errs.push(invalid(pp, path, 'must be an absolute path'));
      if (path) {
        for (const seq of invalidPathSequences)
          if (path.includes(seq)) errs.push(invalid(pp, path, `must not contain '${seq}'`));
        for (const suffix of invalidPathSuffixes)
          if (path.endsWith(suffix)) errs.push(invalid(pp, path, `cannot end with '${suffix}'`));
      }
      break;
    case 'ImplementationSpecific':
      if (path && !path.startsWith('/')) errs.push(invalid(pp, path, 'must be an absolute path'));
      break;
    default:
      errs.push(notSupported(at(field, 'pathType'), str(p.pathType), pathTypes));
  }
  errs.push(...ingressBackend(obj(p.backend), at(field, 'backend')));
  return errs;
}

function ingressHost(host: string, field: string): Errs {
  const errs: Errs = [];
  if (isValidIP(host).length === 0) errs.push(invalid(field, host, 'must be a DNS name, not an IP address'));
  if (host.includes('*')) errs.push(...msgs(field, host, isWildcardDNS1123Subdomain(host)));
  else errs.push(...msgs(field, host, isDNS1123Subdomain(host)));
  return errs;
}

export function validateIngress(ing: KubeObject): Errs {
  const spec = obj(ing.spec);
  const errs: Errs = [];
  const rules = objs(spec.rules);
  if (rules.length === 0 && !isSet(spec.defaultBackend)) {
    // Upstream prints the (empty) rules slice with Go's %#v.
    const shown = Array.isArray(spec.rules) ? '[]networking.IngressRule{}' : '[]networking.IngressRule(nil)';
    errs.push(invalidShown('spec', shown, 'either `defaultBackend` or `rules` must be specified'));
  }
  if (isSet(spec.defaultBackend))
    errs.push(...ingressBackend(obj(spec.defaultBackend), 'spec.defaultBackend'));
  rules.forEach((rule, i) => {
    const rp = idx('spec.rules', i);
    const host = str(rule.host);
    if (host) errs.push(...ingressHost(host, at(rp, 'host')));
    if (!isSet(rule.http)) return;
    const paths = objs(obj(rule.http).paths);
    if (paths.length === 0) errs.push(required(at(rp, 'http', 'paths')));
    paths.forEach((p, j) => {
      errs.push(...ingressPath(p, idx(at(rp, 'http', 'paths'), j)));
    });
  });
  objs(spec.tls).forEach((tls, i) => {
    const tp = idx('spec.tls', i);
    strings(tls.hosts).forEach((h, j) => {
      const hp = idx(at(tp, 'hosts'), j);
      errs.push(...msgs(hp, h, h.includes('*') ? isWildcardDNS1123Subdomain(h) : isDNS1123Subdomain(h)));
    });
    const secret = str(tls.secretName);
    if (secret) errs.push(...dns1123Subdomain(secret, at(tp, 'secretName')));
  });
  if (isSet(spec.ingressClassName))
    errs.push(...dns1123Subdomain(str(spec.ingressClassName), 'spec.ingressClassName'));
  return errs;
}

const httpPathFmt = "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+";
const httpPathRegexp = new RegExp(`^${httpPathFmt}$`);

/** IsDomainPrefixedPath, as IngressClass controllers are named. */
function domainPrefixedPath(v: string, field: string): Errs {
  if (!v) return [required(field)];
  const slash = v.indexOf('/');
  const host = slash < 0 ? v : v.slice(0, slash);
  const path = slash < 0 ? '' : v.slice(slash + 1);
  if (slash < 0 || !host || !path)
    return [invalid(field, v, 'must be a domain-prefixed path (such as "acme.io/foo")')];
  const errs = msgs(field, host, isDNS1123Subdomain(host));
  if (!httpPathRegexp.test(path))
    errs.push(invalid(field, path, `Invalid path (regex used for validation is '${httpPathFmt}')`));
  return errs;
}

export function validateIngressClass(ic: KubeObject, old?: KubeObject): Errs {
  const spec = obj(ic.spec);
  const controller = str(spec.controller);
  const errs: Errs = [];
  if (controller.length > 250) errs.push(tooLong('spec.controller', '', 250));
  errs.push(...domainPrefixedPath(controller, 'spec.controller'));
  if (isSet(spec.parameters)) {
    const params = obj(spec.parameters);
    const pp = 'spec.parameters';
    if (isSet(params.apiGroup)) errs.push(...dns1123Subdomain(str(params.apiGroup), at(pp, 'apiGroup')));
    if (!str(params.kind)) errs.push(required(at(pp, 'kind')));
    else errs.push(...pathSegment(str(params.kind), at(pp, 'kind')));
    if (!str(params.name)) errs.push(required(at(pp, 'name')));
    else errs.push(...pathSegment(str(params.name), at(pp, 'name')));
    const scope = str(params.scope);
    if (!isSet(params.scope)) errs.push(required(at(pp, 'scope')));
    else if (scope !== 'Cluster' && scope !== 'Namespace')
      errs.push(notSupported(at(pp, 'scope'), scope, ['Cluster', 'Namespace']));
    else if (scope === 'Namespace') {
      if (!isSet(params.namespace))
        errs.push(required(at(pp, 'namespace'), "`parameters.scope` is set to 'Namespace'"));
      else
        errs.push(...msgs(at(pp, 'namespace'), str(params.namespace), isDNS1123Label(str(params.namespace))));
    } else if (isSet(params.namespace)) {
      errs.push(forbidden(at(pp, 'namespace'), "`parameters.scope` is set to 'Cluster'"));
    }
  }
  if (old) errs.push(...immutableField(spec.controller, obj(old.spec).controller, 'spec.controller'));
  return errs;
}

// ---- autoscaling ----

const metricSourceTypes = ['ContainerResource', 'External', 'Object', 'Pods', 'Resource'];
const metricTargetTypes = ['AverageValue', 'Utilization', 'Value'];
const sourceFields: Record<string, string> = {
  Object: 'object',
  Pods: 'pods',
  Resource: 'resource',
  External: 'external',
  ContainerResource: 'containerResource',
};

function resourceMetric(r: Obj, field: string, container: boolean): Errs {
  const errs: Errs = [];
  if (!str(r.name)) errs.push(required(at(field, 'name'), 'must specify a resource name'));
  if (container && !str(r.container)) errs.push(required(at(field, 'container'), 'must specify a container'));
  const t = obj(r.target);
  const tp = at(field, 'target');
  const type = str(t.type);
  if (!type) errs.push(required(at(tp, 'type'), 'must specify a metric target type'));
  else if (!metricTargetTypes.includes(type))
    errs.push(notSupported(at(tp, 'type'), type, metricTargetTypes));
  const util = num(t.averageUtilization);
  if (util !== undefined && util < 1)
    errs.push(invalid(at(tp, 'averageUtilization'), util, 'must be greater than 0'));
  for (const k of ['value', 'averageValue']) {
    if (!isSet(t[k])) continue;
    const q = quantity(t[k]);
    if (!q) errs.push(invalid(at(tp, k), t[k], quantityFormatError));
    else if (q.unscaled <= 0n) errs.push(invalid(at(tp, k), t[k], 'must be positive'));
  }
  if (isSet(t.averageValue) && isSet(t.averageUtilization))
    errs.push(
      forbidden(at(tp, 'averageValue'), 'may not set both a target raw value and a target utilization'),
    );
  if (!isSet(t.averageValue) && !isSet(t.averageUtilization))
    errs.push(
      required(at(tp, 'averageUtilization'), 'must set either a target raw value or a target utilization'),
    );
  return errs;
}

function metricSpec(m: Obj, field: string): Errs {
  const errs: Errs = [];
  const type = str(m.type);
  if (!type) errs.push(required(at(field, 'type'), 'must specify a metric source type'));
  else if (!metricSourceTypes.includes(type))
    errs.push(notSupported(at(field, 'type'), type, metricSourceTypes));
  const expected = sourceFields[type];
  if (expected && !isSet(m[expected]))
    errs.push(required(at(field, expected), 'must populate information for the given metric source'));
  for (const [t, f] of Object.entries(sourceFields)) {
    // Upstream names the stray source by its type, capitalized.
    if (t !== type && isSet(m[f]))
      errs.push(forbidden(at(field, t), 'must populate the given metric source only'));
  }
  if (type === 'Resource' && isSet(m.resource))
    errs.push(...resourceMetric(obj(m.resource), at(field, 'resource'), false));
  if (type === 'ContainerResource' && isSet(m.containerResource))
    errs.push(...resourceMetric(obj(m.containerResource), at(field, 'containerResource'), true));
  return errs;
}

export function validateHorizontalPodAutoscaler(h: KubeObject): Errs {
  const spec = obj(h.spec);
  const errs: Errs = [];
  const min = num(spec.minReplicas);
  const max = num(spec.maxReplicas) ?? 0;
  // minReplicas 0 needs the HPAScaleToZero feature gate, off by default.
  if (min !== undefined && min < 1)
    errs.push(invalid('spec.minReplicas', min, 'must be greater than or equal to 1'));
  if (max < 1) errs.push(invalid('spec.maxReplicas', max, 'must be greater than 0'));
  if (min !== undefined && max < min)
    errs.push(invalid('spec.maxReplicas', max, 'must be greater than or equal to `minReplicas`'));
  const ref = obj(spec.scaleTargetRef);
  const rp = 'spec.scaleTargetRef';
  if (!str(ref.kind)) errs.push(required(at(rp, 'kind')));
  else errs.push(...pathSegment(str(ref.kind), at(rp, 'kind')));
  if (!str(ref.name)) errs.push(required(at(rp, 'name')));
  else errs.push(...pathSegment(str(ref.name), at(rp, 'name')));
  objs(spec.metrics).forEach((m, i) => {
    errs.push(...metricSpec(m, idx('spec.metrics', i)));
  });
  // autoscaling/v1 has a single CPU target instead of metrics.
  const cpu = num(spec.targetCPUUtilizationPercentage);
  if (cpu !== undefined && cpu < 1)
    errs.push(invalid('spec.targetCPUUtilizationPercentage', cpu, 'must be greater than 0'));
  return errs;
}

// ---- scheduling.k8s.io ----

export const HighestUserDefinablePriority = 1_000_000_000;
const systemPriorityClasses: Record<string, number> = {
  'system-node-critical': 2_000_001_000,
  'system-cluster-critical': 2_000_000_000,
};

export function validatePriorityClass(pc: KubeObject, old?: KubeObject): Errs {
  const errs: Errs = [];
  const name = pc.metadata.name ?? '';
  const value = num(pc.value) ?? 0;
  if (name.startsWith('system-')) {
    const known = systemPriorityClasses[name];
    let err = '';
    if (known === undefined) err = `${name} is not a known system priority class`;
    else if (known !== value) err = `value of ${name} PriorityClass must be ${known}`;
    else if (pc.globalDefault === true) err = `globalDefault of ${name} PriorityClass must be false`;
    if (err)
      errs.push(
        forbidden(
          'metadata.name',
          `priority class names with 'system-' prefix are reserved for system use only. error: ${err}`,
        ),
      );
  } else if (value > HighestUserDefinablePriority) {
    errs.push(
      forbidden(
        'value',
        `maximum allowed value of a user defined priority is ${HighestUserDefinablePriority}`,
      ),
    );
  }
  if (isSet(pc.preemptionPolicy)) errs.push(...preemptionPolicy(pc.preemptionPolicy, 'preemptionPolicy'));
  if (old) {
    if ((num(old.value) ?? 0) !== value) errs.push(forbidden('value', 'may not be changed in an update.'));
    errs.push(...immutableField(pc.preemptionPolicy, old.preemptionPolicy, 'preemptionPolicy'));
  }
  return errs;
}

// ---- coordination.k8s.io ----

export function validateLease(l: KubeObject): Errs {
  const spec = obj(l.spec);
  const errs: Errs = [];
  const duration = num(spec.leaseDurationSeconds);
  if (duration !== undefined && duration <= 0)
    errs.push(invalid('spec.leaseDurationSeconds', duration, 'must be greater than 0'));
  errs.push(...nonNegative('spec.leaseTransitions', spec.leaseTransitions));
  if (str(spec.preferredHolder) && !str(spec.strategy))
    errs.push(forbidden('spec.preferredHolder', 'may only be specified if `strategy` is defined'));
  return errs;
}

// ---- policy ----

export function validatePodDisruptionBudget(pdb: KubeObject): Errs {
  const spec = obj(pdb.spec);
  const errs: Errs = [];
  if (isSet(spec.minAvailable) && isSet(spec.maxUnavailable))
    errs.push(invalid('spec', spec, 'minAvailable and maxUnavailable cannot be both set'));
  for (const k of ['minAvailable', 'maxUnavailable']) {
    if (!isSet(spec[k])) continue;
    errs.push(
      ...positiveIntOrPercent(spec[k], at('spec', k)),
      ...notMoreThan100Percent(spec[k], at('spec', k)),
    );
  }
  errs.push(...labelSelector(spec.selector, 'spec.selector'));
  const policies = ['AlwaysAllow', 'IfHealthyBudget'];
  if (isSet(spec.unhealthyPodEvictionPolicy) && !policies.includes(str(spec.unhealthyPodEvictionPolicy)))
    errs.push(notSupported('spec.unhealthyPodEvictionPolicy', spec.unhealthyPodEvictionPolicy, policies));
  return errs;
}
