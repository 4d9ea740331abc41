// Validation of a custom resource against its version's structural schema,
// with upstream's messages: kube-openapi's validator as apiextensions-apiserver
// turns its results into field errors (pkg/apiserver/validation/validation.go).
// Paths are field paths (`spec.items[0].name`), and "in body" messages name
// the same path, as upstream's do.

import type { FieldErrorLike } from '../api/registry.ts';
import {
  childPath,
  indexPath,
  invalid,
  notSupported,
  required,
  tooLong,
  tooMany,
} from '../api/validation.ts';
import { isSchemaObject, type JSONSchemaProps } from './types.ts';

type Value = unknown;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The JSON type name of a value, as kube-openapi reports it. */
function jsonType(v: Value): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeMatches(type: string, v: Value): boolean {
  switch (type) {
    case 'object':
      return isPlainObject(v);
    case 'array':
      return Array.isArray(v);
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'number':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    default:
      return true;
  }
}

const formats: Record<string, (s: string) => boolean> = {
  'date-time': (s) => /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(s),
  date: (s) => /^\d{4}-\d{2}-\d{2}$/.test(s),
  byte: (s) => /^[A-Za-z0-9+/]*={0,2}$/.test(s) && s.length % 4 === 0,
  uuid: (s) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s),
  ipv4: (s) => /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(s),
  hostname: (s) => /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/i.test(s),
};

/**
 * Every problem with `value` under `schema` at `path`. The root object's
 * metadata is ObjectMeta's business (validated with the kind), so only the
 * schema's own rules run here.
 */
export function validateValue(schema: JSONSchemaProps, value: Value, path: string): FieldErrorLike[] {
  const errs: FieldErrorLike[] = [];
  walk(schema, value, path, errs);
  return errs;
}

const inBody = (path: string, rest: string) => `${path} in body ${rest}`;

function walk(schema: JSONSchemaProps, value: Value, path: string, errs: FieldErrorLike[]): void {
  if (value === null) {
    if (schema.nullable || (schema['x-kubernetes-preserve-unknown-fields'] && !schema.type)) return;
    if (schema.type) {
      errs.push(invalid(path, 'null', inBody(path, `must be of type ${schema.type}: "null"`)));
    }
    return;
  }
  if (schema['x-kubernetes-int-or-string']) {
    if (!(typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value)))) {
      errs.push(
        invalid(path, jsonType(value), inBody(path, `must be of type integer,string: "${jsonType(value)}"`)),
      );
      return;
    }
  } else if (schema.type && !typeMatches(schema.type, value)) {
    errs.push(
      invalid(path, jsonType(value), inBody(path, `must be of type ${schema.type}: "${jsonType(value)}"`)),
    );
    return;
  }
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    errs.push(
      notSupported(
        path,
        value,
        schema.enum.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))),
      ),
    );
  }
  if (typeof value === 'number') numberRules(schema, value, path, errs);
  if (typeof value === 'string') stringRules(schema, value, path, errs);
  if (Array.isArray(value)) arrayRules(schema, value, path, errs);
  if (isPlainObject(value)) objectRules(schema, value, path, errs);
  junctorRules(schema, value, path, errs);
}

function numberRules(schema: JSONSchemaProps, n: number, path: string, errs: FieldErrorLike[]): void {
  if (schema.minimum !== undefined) {
    if (schema.exclusiveMinimum ? n <= schema.minimum : n < schema.minimum) {
      const rel = schema.exclusiveMinimum ? 'greater than' : 'greater than or equal to';
      errs.push(invalid(path, n, inBody(path, `should be ${rel} ${schema.minimum}`)));
    }
  }
  if (schema.maximum !== undefined) {
    if (schema.exclusiveMaximum ? n >= schema.maximum : n > schema.maximum) {
      const rel = schema.exclusiveMaximum ? 'less than' : 'less than or equal to';
      errs.push(invalid(path, n, inBody(path, `should be ${rel} ${schema.maximum}`)));
    }
  }
  if (schema.multipleOf !== undefined && schema.multipleOf > 0) {
    const q = n / schema.multipleOf;
    if (Math.abs(q - Math.round(q)) > 1e-9) {
      errs.push(invalid(path, n, inBody(path, `should be a multiple of ${schema.multipleOf}`)));
    }
  }
}

function stringRules(schema: JSONSchemaProps, s: string, path: string, errs: FieldErrorLike[]): void {
  const length = [...s].length;
  if (schema.maxLength !== undefined && length > schema.maxLength)
    errs.push(tooLong(path, s, schema.maxLength));
  if (schema.minLength !== undefined && length < schema.minLength) {
    errs.push(invalid(path, s, inBody(path, `should be at least ${schema.minLength} chars long`)));
  }
  if (schema.pattern !== undefined && !safeRegExp(schema.pattern)?.test(s)) {
    errs.push(invalid(path, s, inBody(path, `should match '${schema.pattern}'`)));
  }
  const check = schema.format ? formats[schema.format] : undefined;
  if (check && !check(s)) {
    errs.push(invalid(path, s, inBody(path, `must be of type ${schema.format}: ${JSON.stringify(s)}`)));
  }
}

const regexps = new Map<string, RegExp | undefined>();

/** ECMA-262 patterns, as OpenAPI says; one that does not compile matches nothing. */
function safeRegExp(pattern: string): RegExp | undefined {
  if (!regexps.has(pattern)) {
    try {
      regexps.set(pattern, new RegExp(pattern, 'u'));
    } catch {
      regexps.set(pattern, undefined);
    }
  }
  return regexps.get(pattern);
}

function arrayRules(schema: JSONSchemaProps, list: unknown[], path: string, errs: FieldErrorLike[]): void {
  if (schema.maxItems !== undefined && list.length > schema.maxItems)
    errs.push(tooMany(path, list.length, schema.maxItems));
  if (schema.minItems !== undefined && list.length < schema.minItems) {
    errs.push(invalid(path, list.length, inBody(path, `should have at least ${schema.minItems} items`)));
  }
  const items = schema.items;
  if (items) for (const [i, item] of list.entries()) walk(items, item, indexPath(path, i), errs);
  errs.push(...listTypeErrors(schema, list, path));
}

/** x-kubernetes-list-type set and map: no duplicate items, no duplicate keys (upstream's listtype validation). */
function listTypeErrors(schema: JSONSchemaProps, list: unknown[], path: string): FieldErrorLike[] {
  const type = schema['x-kubernetes-list-type'];
  const errs: FieldErrorLike[] = [];
  if (type === 'set') {
    const seen = new Set<string>();
    list.forEach((item, i) => {
      const k = JSON.stringify(item);
      if (seen.has(k))
        errs.push({
          type: 'FieldValueDuplicate',
          field: indexPath(path, i),
          message: `Duplicate value: ${k}`,
        });
      seen.add(k);
    });
  } else if (type === 'map') {
    const keys = schema['x-kubernetes-list-map-keys'] ?? [];
    const seen = new Set<string>();
    list.forEach((item, i) => {
      if (!isPlainObject(item)) return;
      const entry = Object.fromEntries(keys.filter((k) => item[k] !== undefined).map((k) => [k, item[k]]));
      const k = JSON.stringify(keys.map((key) => item[key] ?? null));
      if (seen.has(k))
        errs.push({
          type: 'FieldValueDuplicate',
          field: indexPath(path, i),
          message: `Duplicate value: ${JSON.stringify(entry)}`,
        });
      seen.add(k);
    });
  }
  return errs;
}

function objectRules(
  schema: JSONSchemaProps,
  obj: Record<string, unknown>,
  path: string,
  errs: FieldErrorLike[],
): void {
  const count = Object.keys(obj).length;
  if (schema.maxProperties !== undefined && count > schema.maxProperties)
    errs.push(tooMany(path, count, schema.maxProperties));
  if (schema.minProperties !== undefined && count < schema.minProperties) {
    errs.push(invalid(path, count, inBody(path, `should have at least ${schema.minProperties} properties`)));
  }
  for (const name of schema.required ?? []) {
    if (obj[name] === undefined) errs.push(required(childPath(path, name)));
  }
  if (schema['x-kubernetes-embedded-resource']) errs.push(...embeddedResourceErrors(obj, path));
  const props = schema.properties ?? {};
  const additional = isSchemaObject(schema.additionalProperties) ? schema.additionalProperties : undefined;
  for (const [key, v] of Object.entries(obj)) {
    const child = props[key] ?? additional;
    if (child) walk(child, v, additional && !props[key] ? `${path}[${key}]` : childPath(path, key), errs);
  }
}

/** An embedded object must say what it is: apiVersion and kind (upstream's objectmeta validation of embedded resources). */
function embeddedResourceErrors(obj: Record<string, unknown>, path: string): FieldErrorLike[] {
  const errs: FieldErrorLike[] = [];
  if (!obj.apiVersion) errs.push(required(childPath(path, 'apiVersion'), 'must not be empty'));
  if (!obj.kind) errs.push(required(childPath(path, 'kind'), 'must not be empty'));
  return errs;
}

/** allOf, anyOf, oneOf and not: value validation only in a structural schema. */
function junctorRules(schema: JSONSchemaProps, value: Value, path: string, errs: FieldErrorLike[]): void {
  for (const s of schema.allOf ?? []) walk(s, value, path, errs);
  if (schema.anyOf && !schema.anyOf.some((s) => validateValue(s, value, path).length === 0)) {
    errs.push(invalid(path, value, inBody(path, 'must validate at least one schema (anyOf)')));
  }
  if (schema.oneOf && schema.oneOf.filter((s) => validateValue(s, value, path).length === 0).length !== 1) {
    errs.push(invalid(path, value, inBody(path, 'must validate one and only one schema (oneOf)')));
  }
  if (schema.not && validateValue(schema.not, value, path).length === 0) {
    errs.push(invalid(path, value, inBody(path, 'must not validate the schema (not)')));
  }
}
