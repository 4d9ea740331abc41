// Admission: the plugins a write passes through after authorization and
// before the registry stores it, as upstream's k8s.io/apiserver admission
// chain. Mutating plugins run first, in order, and may change the object;
// validating plugins then run and may only refuse (throw an ApiError, e.g.
// 403 Forbidden) or add warnings. Any plugin may record audit annotations
// through its attributes (addAuditAnnotation), refusing or not; the server
// writes them into the request's audit event.
//
// Each plugin is one file in this folder with its own tests.

import { ApiError } from '../../api/errors.ts';
import type { KubeObject } from '../../api/meta.ts';
import { isQualifiedName } from '../../api/validation.ts';
import type { UserInfo } from '../authn/user.ts';

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface AdmissionAttributes {
  operation: Operation;
  /** API group ('' for core), version and kind of the object. */
  group: string;
  version: string;
  kind: string;
  /** The resource's plural name and the subresource ('' for the main resource). */
  resource: string;
  subresource: string;
  /** '' for cluster-scoped objects. */
  namespace: string;
  name: string;
  /** The object being written (CREATE, UPDATE); mutating plugins change it in place. */
  object?: KubeObject;
  /** What is stored now (UPDATE, DELETE). */
  oldObject?: KubeObject;
  user: UserInfo;
  dryRun: boolean;
  /**
   * Records `key: value` in the annotations of the request's audit event, as
   * upstream's Attributes.AddAnnotation: the key is `<prefix>/<name>`, the
   * prefix the plugin's own domain (pod-security.kubernetes.io/enforce-policy).
   * A plugin may record before it refuses, and the note stays. The server's
   * chain always supplies it; a plugin called alone (a unit test) may not.
   */
  addAuditAnnotation?(key: string, value: string): void;
}

export interface AdmissionResponse {
  /** Sent back as `Warning: 299 - "<text>"` headers (kubectl prints them). */
  warnings?: string[];
}

export interface MutatingPlugin {
  readonly name: string;
  handles(attrs: AdmissionAttributes): boolean;
  admit(attrs: AdmissionAttributes): Promise<AdmissionResponse | undefined>;
}

export interface ValidatingPlugin {
  readonly name: string;
  handles(attrs: AdmissionAttributes): boolean;
  validate(attrs: AdmissionAttributes): Promise<AdmissionResponse | undefined>;
}

export interface AdmissionChain {
  mutating: readonly MutatingPlugin[];
  validating: readonly ValidatingPlugin[];
}

/** What a phase gave back: the warnings, and the audit annotations recorded on the way. */
export interface AdmissionResult {
  warnings: string[];
  auditAnnotations: Record<string, string>;
}

/** Upstream's checkKeyFormat: `<prefix>/<name>`, a qualified name with its prefix. */
function checkAuditAnnotationKey(key: string): void {
  const why =
    key.split('/').length !== 2
      ? "the right format is a DNS subdomain prefix and '/' and key name"
      : isQualifiedName(key).join('; ');
  // A plugin's bug, caught by its tests; upstream's AddAnnotation returns the same error.
  if (why) throw new Error(`annotation key ${JSON.stringify(key)} has invalid format: ${why}`);
}

/**
 * One phase's attributes: the caller's, with addAuditAnnotation also
 * collecting into `out`. Only the attributes object is new; the object and
 * oldObject are the caller's, so mutations reach the write.
 */
function collecting(attrs: AdmissionAttributes): { attrs: AdmissionAttributes; out: AdmissionResult } {
  const out: AdmissionResult = { warnings: [], auditAnnotations: {} };
  const outer = attrs.addAuditAnnotation?.bind(attrs);
  const addAuditAnnotation = (key: string, value: string) => {
    checkAuditAnnotationKey(key);
    // The first value stays, as upstream's audit context keeps it.
    if (key in out.auditAnnotations) return;
    out.auditAnnotations[key] = value;
    outer?.(key, value);
  };
  return { attrs: { ...attrs, addAuditAnnotation }, out };
}

/** The mutating phase alone: every mutating plugin that handles the request, in order. */
export async function runMutating(
  attrs: AdmissionAttributes,
  mutating: readonly MutatingPlugin[],
): Promise<AdmissionResult> {
  const phase = collecting(attrs);
  for (const p of mutating)
    if (p.handles(phase.attrs)) phase.out.warnings.push(...((await p.admit(phase.attrs))?.warnings ?? []));
  return phase.out;
}

/** The validating phase alone: every validating plugin that handles the request, in order. */
export async function runValidating(
  attrs: AdmissionAttributes,
  validating: readonly ValidatingPlugin[],
): Promise<AdmissionResult> {
  const phase = collecting(attrs);
  for (const p of validating)
    if (p.handles(phase.attrs)) phase.out.warnings.push(...((await p.validate(phase.attrs))?.warnings ?? []));
  return phase.out;
}

/** Runs the chain: every mutating plugin that handles the request, then every validating one. */
export async function runAdmission(
  attrs: AdmissionAttributes,
  mutating: readonly MutatingPlugin[],
  validating: readonly ValidatingPlugin[],
): Promise<AdmissionResult> {
  const a = await runMutating(attrs, mutating);
  const b = await runValidating(attrs, validating);
  return {
    warnings: [...a.warnings, ...b.warnings],
    auditAnnotations: { ...a.auditAnnotations, ...b.auditAnnotations },
  };
}

/**
 * Upstream's admission.NewForbidden: 403 `<resource> "<name>" is forbidden:
 * <why>`, the name being the request's, else the object's (or its
 * generateName, before a name is generated).
 */
export function admissionForbidden(attrs: AdmissionAttributes, why: string): ApiError {
  const name = attrs.name || attrs.object?.metadata.name || attrs.object?.metadata.generateName || 'Unknown';
  const resource = attrs.group ? `${attrs.resource}.${attrs.group}` : attrs.resource;
  return new ApiError(403, 'Forbidden', `${resource} "${name}" is forbidden: ${why}`, {
    name,
    group: attrs.group,
    kind: attrs.resource,
  });
}

/** utilerrors.NewAggregate's text: one message alone, several as "[a, b]". */
export function aggregateMessage(messages: readonly string[]): string {
  return messages.length === 1 ? messages[0]! : `[${messages.join(', ')}]`;
}
