// Test helpers: run an object through a registry entry the way the API
// server does (defaults, then prepareCreate or prepareUpdate, then
// validate) and return the causes as "field: message" lines.

import type { KubeObject } from '../meta.ts';
import type { FieldErrorLike } from '../registry.ts';
import { builtinRegistry } from './index.ts';

const registry = builtinRegistry();

function entry(group: string, version: string, plural: string) {
  const rt = registry.get(group, version, plural);
  if (!rt) throw new Error(`no resource ${group}/${version}/${plural}`);
  return rt;
}

const lines = (errs: FieldErrorLike[]) => errs.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message));

/** The object as stored after a create (defaults and prepareCreate applied), and its validation errors. */
export function createObject(
  group: string,
  version: string,
  plural: string,
  body: Record<string, unknown>,
): { obj: KubeObject; errors: string[] } {
  const rt = entry(group, version, plural);
  const obj = structuredClone(body) as KubeObject;
  obj.metadata = { name: 'x', ...(obj.metadata ?? {}) };
  if (rt.namespaced) obj.metadata.namespace ??= 'default';
  obj.metadata.uid ??= '00000000-0000-0000-0000-000000000001';
  rt.defaults?.(obj);
  rt.prepareCreate?.(obj);
  return { obj, errors: lines(rt.validate?.(obj) ?? []) };
}

/** Validation errors of a create. */
export function createErrors(
  group: string,
  version: string,
  plural: string,
  body: Record<string, unknown>,
): string[] {
  return createObject(group, version, plural, body).errors;
}

/** Validation errors of updating `old` (as stored) to `next`, after defaults and prepareUpdate. */
export function updateErrors(
  group: string,
  version: string,
  plural: string,
  old: KubeObject,
  next: (copy: KubeObject) => void,
): string[] {
  const rt = entry(group, version, plural);
  const obj = structuredClone(old);
  next(obj);
  rt.defaults?.(obj);
  rt.prepareUpdate?.(obj, old);
  return lines(rt.validate?.(obj, old) ?? []);
}
