// PodSecurity: the built-in admission plugin that applies the Pod Security
// Standards per namespace, as upstream's k8s.io/pod-security-admission.
//
// A namespace opts in with labels, one per mode:
//   pod-security.kubernetes.io/enforce: restricted   refuse violating pods (403)
//   pod-security.kubernetes.io/warn: baseline        warn the client (pods and workloads)
//   pod-security.kubernetes.io/audit: restricted     annotate the audit event
// each with an optional `-version` label (latest, or v1.N to pin the
// checks of that release). Unlabelled namespaces are privileged: anything
// goes, kube-system included. Only pods are enforced; workloads with pod
// templates only get warnings and audit annotations, so a Deployment is
// accepted and its ReplicaSet's pods are what get refused.
//
// The audit annotations are upstream's, recorded through the attributes
// (so a refusal keeps them): pod-security.kubernetes.io/enforce-policy (the
// level and version enforced), /audit-violations (what the audit level would
// refuse), /exempt (why a request was not evaluated) and /error.

import { ApiError, internalError, invalid } from '../../api/errors.ts';
import type { Namespace, Pod } from '../../api/types/core-v1.ts';
import type { AdmissionAttributes, AdmissionResponse, ValidatingPlugin } from './admission.ts';
import { BASELINE_CHECKS } from './pod-security/baseline.ts';
import {
  compareLevels,
  DEFAULT_POLICY,
  type LabelError,
  labelErrorCause,
  labelErrorsString,
  type Policy,
  policyFromLabels,
  sameLevelVersion,
} from './pod-security/labels.ts';
import { existingPodWarnings } from './pod-security/namespace-pods.ts';
import { hasPodTemplate, isSignificantPodUpdate, podTemplateOf } from './pod-security/pod-specs.ts';
import {
  type Check,
  evaluatePod,
  forbiddenDetails,
  type LevelVersion,
  levelVersionString,
  type PodView,
  type Violation,
} from './pod-security/policy.ts';
import { RESTRICTED_CHECKS } from './pod-security/restricted.ts';

export const POD_SECURITY_CHECKS: readonly Check[] = [...BASELINE_CHECKS, ...RESTRICTED_CHECKS];

export interface PodSecurityExemptions {
  namespaces?: string[];
  usernames?: string[];
  runtimeClasses?: string[];
}

export interface PodSecurityOptions {
  /** Looks a namespace up (from an informer cache in the server); undefined if it does not exist. */
  getNamespace(name: string): Promise<Namespace | undefined>;
  /** Lists a namespace's pods, to warn about them when its enforce level is raised. */
  listPods?(namespace: string): Promise<Pod[]>;
  /** The AdmissionConfiguration's defaults for unlabelled modes (privileged:latest). */
  defaults?: Policy;
  exemptions?: PodSecurityExemptions;
}

/** Pod subresources that cannot change the pod spec, as upstream's ignoredPodSubresources. */
const IGNORED_POD_SUBRESOURCES = new Set([
  'exec',
  'attach',
  'binding',
  'eviction',
  'log',
  'portforward',
  'proxy',
  'status',
]);

const allowed: AdmissionResponse = {};

/** Upstream's AuditAnnotationPrefix, before each of the evaluation's keys. */
const AUDIT_ANNOTATION_PREFIX = 'pod-security.kubernetes.io/';

function annotate(attrs: AdmissionAttributes, annotations: Record<string, string>): void {
  for (const [k, v] of Object.entries(annotations))
    attrs.addAuditAnnotation?.(AUDIT_ANNOTATION_PREFIX + k, v);
}

/** Not evaluated: says why in the audit event (exempt: namespace, user or runtimeClass). */
function exempted(attrs: AdmissionAttributes, why: string): AdmissionResponse {
  annotate(attrs, { exempt: why });
  return allowed;
}

export function podSecurityPlugin(opts: PodSecurityOptions): ValidatingPlugin {
  const defaults = opts.defaults ?? DEFAULT_POLICY;
  const exempt = {
    namespaces: new Set(opts.exemptions?.namespaces ?? []),
    usernames: new Set(opts.exemptions?.usernames ?? []),
    runtimeClasses: new Set(opts.exemptions?.runtimeClasses ?? []),
  };
  const exemptRuntimeClass = (spec: PodView['spec']) =>
    !!spec.runtimeClassName && exempt.runtimeClasses.has(spec.runtimeClassName);

  /** The namespace's policy, or why it could not be looked up. */
  const namespacePolicy = async (name: string) => {
    try {
      const ns = await opts.getNamespace(name);
      if (!ns) return { lookupError: `namespaces ${JSON.stringify(name)} not found` };
      return policyFromLabels(ns.metadata.labels, defaults);
    } catch (e) {
      return { lookupError: e instanceof Error ? e.message : String(e) };
    }
  };

  /** Why a request is not evaluated at all, if it is exempt. */
  const exemption = (attrs: AdmissionAttributes) =>
    exempt.namespaces.has(attrs.namespace)
      ? 'namespace'
      : exempt.usernames.has(attrs.user.name)
        ? 'user'
        : undefined;

  async function validateNamespace(attrs: AdmissionAttributes): Promise<AdmissionResponse | undefined> {
    if (attrs.subresource !== '' || !attrs.object) return allowed;
    const next = policyFromLabels(attrs.object.metadata.labels, defaults);
    const refuse = () => invalid('', 'Namespace', attrs.name, next.errors.map(labelErrorCause));
    if (attrs.operation === 'CREATE') {
      if (next.errors.length > 0) throw refuse();
      return allowed;
    }
    const prev = policyFromLabels(attrs.oldObject?.metadata.labels, defaults);
    // A bad label that was already there does not block unrelated updates.
    if (next.errors.length > 0 && labelErrorsString(next.errors) !== labelErrorsString(prev.errors))
      throw refuse();
    const enforce = next.policy.enforce;
    const old = prev.policy.enforce;
    if (sameLevelVersion(enforce, old) || enforce.level === 'privileged') return allowed;
    if (enforce.version === old.version && compareLevels(enforce.level, old.level) <= 0) return allowed;
    if (exempt.namespaces.has(attrs.name)) return exempted(attrs, 'namespace');
    if (!opts.listPods) return allowed;
    let pods: Pod[];
    try {
      pods = await opts.listPods(attrs.name);
    } catch {
      return { warnings: ['failed to list pods while checking new PodSecurity enforce level'] };
    }
    const warnings = existingPodWarnings(attrs.name, enforce, pods, POD_SECURITY_CHECKS, (p) =>
      exemptRuntimeClass(p.spec ?? {}),
    );
    return warnings.length > 0 ? { warnings } : allowed;
  }

  async function validatePod(attrs: AdmissionAttributes): Promise<AdmissionResponse | undefined> {
    if (IGNORED_POD_SUBRESOURCES.has(attrs.subresource)) return allowed;
    const why = exemption(attrs);
    if (why) return exempted(attrs, why);
    const found = await namespacePolicy(attrs.namespace);
    if ('lookupError' in found) throw internalError(`failed to lookup namespace ${attrs.namespace}`);
    const { policy, errors } = found;
    const pod = attrs.object as Pod | undefined;
    if (!pod) return allowed;
    if (errors.length === 0 && allPrivileged(policy, ['enforce', 'audit', 'warn'])) {
      annotate(attrs, { 'enforce-policy': levelVersionString(policy.enforce) });
      return allowed;
    }
    if (
      attrs.operation === 'UPDATE' &&
      attrs.oldObject &&
      !isSignificantPodUpdate(pod, attrs.oldObject as Pod)
    )
      return allowed;
    return evaluate(attrs, policy, errors, { metadata: pod.metadata, spec: pod.spec ?? {} }, true);
  }

  async function validatePodTemplate(attrs: AdmissionAttributes): Promise<AdmissionResponse | undefined> {
    if (attrs.subresource !== '' || !attrs.object) return allowed;
    const why = exemption(attrs);
    if (why) return exempted(attrs, why);
    const found = await namespacePolicy(attrs.namespace);
    // Templates are never refused, so a failed lookup only leaves a note.
    if ('lookupError' in found) {
      annotate(attrs, { error: `failed to lookup namespace ${attrs.namespace}: ${found.lookupError}` });
      return allowed;
    }
    const { policy, errors } = found;
    if (errors.length === 0 && allPrivileged(policy, ['audit', 'warn'])) return allowed;
    const template = podTemplateOf(attrs.group, attrs.resource, attrs.object);
    if (!template) return allowed;
    return evaluate(attrs, policy, errors, template, false);
  }

  function evaluate(
    attrs: AdmissionAttributes,
    policy: Policy,
    errors: readonly LabelError[],
    pod: PodView,
    enforce: boolean,
  ): AdmissionResponse {
    if (exemptRuntimeClass(pod.spec)) return exempted(attrs, 'runtimeClass');
    // Modes at the same level and version share one evaluation.
    const cache = new Map<string, Violation[]>();
    const violations = (lv: LevelVersion) => {
      const key = levelVersionString(lv);
      const cached = cache.get(key);
      if (cached) return cached;
      const v = evaluatePod(lv, pod, POD_SECURITY_CHECKS);
      cache.set(key, v);
      return v;
    };
    const auditAnnotations: Record<string, string> = {};
    if (errors.length > 0) auditAnnotations.error = `Failed to parse policy: ${labelErrorsString(errors)}`;
    let refusal: ApiError | undefined;
    if (enforce) {
      auditAnnotations['enforce-policy'] = levelVersionString(policy.enforce);
      const v = violations(policy.enforce);
      if (v.length > 0)
        refusal = forbiddenPod(
          attrs,
          `violates PodSecurity "${levelVersionString(policy.enforce)}": ${forbiddenDetails(v)}`,
        );
    }
    const audited = violations(policy.audit);
    if (audited.length > 0) auditAnnotations['audit-violations'] = wouldViolate(policy.audit, audited);
    // A refused pod's audit event still says what was enforced and audited, as upstream's.
    annotate(attrs, auditAnnotations);
    if (refusal) throw refusal;
    const warned = violations(policy.warn);
    const warnings = warned.length > 0 ? [wouldViolate(policy.warn, warned)] : [];
    return { warnings };
  }

  return {
    name: 'PodSecurity',
    handles(attrs) {
      if (attrs.operation !== 'CREATE' && attrs.operation !== 'UPDATE') return false;
      if (attrs.group === '' && (attrs.resource === 'namespaces' || attrs.resource === 'pods')) return true;
      return hasPodTemplate(attrs.group, attrs.resource);
    },
    async validate(attrs) {
      if (attrs.group === '' && attrs.resource === 'namespaces') return validateNamespace(attrs);
      if (attrs.group === '' && attrs.resource === 'pods') return validatePod(attrs);
      return validatePodTemplate(attrs);
    },
  };
}

const allPrivileged = (policy: Policy, modes: readonly (keyof Policy)[]) =>
  modes.every((m) => policy[m].level === 'privileged');

const wouldViolate = (lv: LevelVersion, v: readonly Violation[]) =>
  `would violate PodSecurity "${levelVersionString(lv)}": ${forbiddenDetails(v)}`;

/** Upstream's NewForbidden on the pod: `pods "name" is forbidden: <why>`. */
function forbiddenPod(attrs: AdmissionAttributes, why: string) {
  const name = attrs.name || attrs.object?.metadata.name || '';
  return new ApiError(403, 'Forbidden', `pods "${name}" is forbidden: ${why}`, {
    name,
    group: '',
    kind: 'pods',
  });
}
