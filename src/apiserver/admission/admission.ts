// Admission: the plugins a write passes through after authorization and
// before the registry stores it, as upstream's k8s.io/apiserver admission
// chain. Mutating plugins run first, in order, and may change the object;
// validating plugins then run and may only refuse (throw an ApiError, e.g.
// 403 Forbidden) or add warnings and audit annotations.
//
// Each plugin is one file in this folder with its own tests.

import { ApiError } from '../../api/errors.ts';
import type { KubeObject } from '../../api/meta.ts';
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
}

export interface AdmissionResponse {
  /** Sent back as `Warning: 299 - "<text>"` headers (kubectl prints them). */
  warnings?: string[];
  /** Recorded on the audit event, as upstream's audit annotations. */
  auditAnnotations?: Record<string, string>;
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

type Collected = Required<AdmissionResponse>;

function collector(): {
  out: Collected;
  collect: (r: AdmissionResponse | undefined, plugin: string) => void;
} {
  const out: Collected = { warnings: [], auditAnnotations: {} };
  const collect = (r: AdmissionResponse | undefined, plugin: string) => {
    out.warnings.push(...(r?.warnings ?? []));
    for (const [k, v] of Object.entries(r?.auditAnnotations ?? {}))
      out.auditAnnotations[`${plugin}/${k}`] = v;
  };
  return { out, collect };
}

/** The mutating phase alone: every mutating plugin that handles the request, in order. */
export async function runMutating(
  attrs: AdmissionAttributes,
  mutating: readonly MutatingPlugin[],
): Promise<Collected> {
  const { out, collect } = collector();
  for (const p of mutating) if (p.handles(attrs)) collect(await p.admit(attrs), p.name);
  return out;
}

/** The validating phase alone: every validating plugin that handles the request, in order. */
export async function runValidating(
  attrs: AdmissionAttributes,
  validating: readonly ValidatingPlugin[],
): Promise<Collected> {
  const { out, collect } = collector();
  for (const p of validating) if (p.handles(attrs)) collect(await p.validate(attrs), p.name);
  return out;
}

/** Runs the chain: every mutating plugin that handles the request, then every validating one. */
export async function runAdmission(
  attrs: AdmissionAttributes,
  mutating: readonly MutatingPlugin[],
  validating: readonly ValidatingPlugin[],
): Promise<Collected> {
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
