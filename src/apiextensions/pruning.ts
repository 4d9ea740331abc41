// Pruning and defaulting of custom resources by their structural schema
// (apiextensions-apiserver pkg/apiserver/schema/pruning and defaulting).
//
// Pruning drops every field the schema does not specify, unless the schema
// says x-kubernetes-preserve-unknown-fields there. apiVersion, kind and
// metadata are always kept at the root and in embedded resources. The
// pruned paths are what fieldValidation reports (Warn) or refuses (Strict).

import { deepCopy } from '../api/meta.ts';
import { isSchemaObject, type JSONSchemaProps } from './types.ts';

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const typeMetaFields = new Set(['apiVersion', 'kind', 'metadata']);

/** Removes unknown fields from obj in place; returns their paths (`spec.foo`). */
export function prune(schema: JSONSchemaProps, obj: Record<string, unknown>): string[] {
  const pruned: string[] = [];
  pruneObject(schema, obj, '', true, pruned);
  return pruned;
}

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

function pruneValue(
  schema: JSONSchemaProps | undefined,
  value: unknown,
  path: string,
  pruned: string[],
): void {
  if (!schema) return;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) pruneValue(schema.items, item, `${path}[${i}]`, pruned);
  } else if (isPlainObject(value)) {
    pruneObject(schema, value, path, schema['x-kubernetes-embedded-resource'] === true, pruned);
  }
}

function pruneObject(
  schema: JSONSchemaProps,
  obj: Record<string, unknown>,
  path: string,
  keepTypeMeta: boolean,
  pruned: string[],
): void {
  const preserve = schema['x-kubernetes-preserve-unknown-fields'] === true;
  const props = schema.properties ?? {};
  const additional = schema.additionalProperties;
  for (const key of Object.keys(obj)) {
    if (keepTypeMeta && typeMetaFields.has(key)) continue;
    const child = props[key] ?? (isSchemaObject(additional) ? additional : undefined);
    if (child) pruneValue(child, obj[key], join(path, key), pruned);
    else if (!preserve && additional !== true) {
      pruned.push(join(path, key));
      delete obj[key];
    }
  }
}

/** Sets every `default` the schema has for fields that are missing (or null where not nullable), in place. */
export function applyDefaults(schema: JSONSchemaProps, value: unknown): void {
  if (Array.isArray(value)) {
    if (schema.items) for (const item of value) applyDefaults(schema.items, item);
    return;
  }
  if (!isPlainObject(value)) return;
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    const missing = value[key] === undefined || (value[key] === null && !child.nullable);
    if (missing && child.default !== undefined) value[key] = deepCopy(child.default);
    if (value[key] !== undefined) applyDefaults(child, value[key]);
  }
  const additional = schema.additionalProperties;
  if (isSchemaObject(additional)) {
    for (const [key, v] of Object.entries(value)) if (!schema.properties?.[key]) applyDefaults(additional, v);
  }
}
