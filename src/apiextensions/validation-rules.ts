// CRDs' `x-kubernetes-validations`: CEL rules in the structural schema,
// evaluated with `self` bound to the value at the rule's node and, on
// updates, `oldSelf` to the old value at the same path. Messages and causes
// follow upstream's apiextensions-apiserver pkg/apiserver/schema/cel
// (validation.go), so clients that match on them see the same text.

import type { KubeObject } from '../api/meta.ts';
import type { FieldErrorLike } from '../api/registry.ts';
import {
  childPath,
  duplicate,
  forbidden,
  goQuote,
  indexPath,
  invalid,
  keyPath,
  required,
} from '../api/validation.ts';
import { type CelEnv, celEnv, compile, type Program } from '../cel/cel.ts';
import type { ValidationRules } from './custom-resource.ts';
import type { JSONSchemaProps } from './types.ts';

/** One `x-kubernetes-validations` entry as the CRD spells it. */
export interface ValidationRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  fieldPath?: string;
  reason?: string;
  optionalOldSelf?: boolean;
}

interface CompiledRule {
  rule: ValidationRule;
  /** Absent when the rule did not compile (the CRD's validation refuses those; here they are skipped). */
  program?: Program;
  message?: Program;
  /** References oldSelf: evaluated only where an old value exists. */
  transition: boolean;
}

let sharedEnv: CelEnv | undefined;
/** Building an environment is costly; every rule shares one. */
function env(): CelEnv {
  sharedEnv ??= celEnv({ variables: { self: 'dyn', oldSelf: 'dyn' } });
  return sharedEnv;
}

// Each schema node's rules compile once: a CRD's schema object lives as long
// as its served version, so a WeakMap drops them with it.
const compiledBySchema = new WeakMap<JSONSchemaProps, CompiledRule[]>();

function rulesOf(schema: JSONSchemaProps): CompiledRule[] {
  const cached = compiledBySchema.get(schema);
  if (cached) return cached;
  const compiled = ((schema['x-kubernetes-validations'] ?? []) as ValidationRule[]).map(compileRule);
  compiledBySchema.set(schema, compiled);
  return compiled;
}

function compileRule(rule: ValidationRule): CompiledRule {
  const r = compile(rule.rule, env());
  const m = rule.messageExpression ? compile(rule.messageExpression, env()) : undefined;
  return {
    rule,
    ...(r.ok ? { program: r.program } : {}),
    ...(m?.ok ? { message: m.program } : {}),
    transition: /\boldSelf\b/.test(rule.rule),
  };
}

/** The ValidationRules hook: every rule of the schema, walked alongside the object. */
export const celValidationRules: ValidationRules = (schema, obj, old) => {
  const errs: FieldErrorLike[] = [];
  validateNode(schema, rootValue(obj), old === undefined ? undefined : rootValue(old), '', errs);
  return errs;
};

/**
 * At the root, upstream exposes only metadata.name and generateName to
 * rules: the rest of ObjectMeta is the server's, not the schema's.
 */
function rootValue(obj: KubeObject): Record<string, unknown> {
  const { metadata, ...rest } = obj;
  const meta: Record<string, unknown> = {};
  if (metadata?.name !== undefined) meta.name = metadata.name;
  if (metadata?.generateName !== undefined) meta.generateName = metadata.generateName;
  return { ...rest, metadata: meta };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function validateNode(
  schema: JSONSchemaProps,
  value: unknown,
  old: unknown,
  path: string,
  errs: FieldErrorLike[],
): void {
  // A null (nullable) value has nothing for a rule to check, as upstream.
  if (value === null || value === undefined) return;
  for (const c of rulesOf(schema)) evalRule(c, schema, value, old, path, errs);
  if (isPlainObject(value))
    validateProperties(schema, value, isPlainObject(old) ? old : undefined, path, errs);
  else if (Array.isArray(value) && schema.items) validateItems(schema, value, old, path, errs);
}

function validateProperties(
  schema: JSONSchemaProps,
  value: Record<string, unknown>,
  old: Record<string, unknown> | undefined,
  path: string,
  errs: FieldErrorLike[],
): void {
  const additional =
    typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined;
  for (const [k, v] of Object.entries(value)) {
    const sub = schema.properties?.[k];
    if (sub) validateNode(sub, v, old?.[k], childPath(path, k), errs);
    else if (additional) validateNode(additional, v, old?.[k], keyPath(path, k), errs);
  }
}

/**
 * List items correlate with old items only in a map list (by its keys), as
 * upstream: an atomic list or a set has no identity for an item to keep.
 */
function validateItems(
  schema: JSONSchemaProps,
  list: unknown[],
  old: unknown,
  path: string,
  errs: FieldErrorLike[],
): void {
  const items = schema.items!;
  const keys = schema['x-kubernetes-list-map-keys'];
  const oldList = Array.isArray(old) ? old : [];
  const correlate =
    schema['x-kubernetes-list-type'] === 'map' && keys?.length
      ? (item: unknown) => oldList.find((o) => sameKeys(o, item, keys))
      : () => undefined;
  for (const [i, item] of list.entries())
    validateNode(items, item, correlate(item), indexPath(path, i), errs);
}

function sameKeys(a: unknown, b: unknown, keys: string[]): boolean {
  return isPlainObject(a) && isPlainObject(b) && keys.every((k) => a[k] === b[k]);
}

function evalRule(
  c: CompiledRule,
  schema: JSONSchemaProps,
  value: unknown,
  old: unknown,
  path: string,
  errs: FieldErrorLike[],
): void {
  if (!c.program) return;
  if (c.transition && (old === undefined || old === null)) return;
  const activation = c.transition ? { self: value, oldSelf: old } : { self: value };
  const type = schema.type ?? '';
  const result = c.program.eval(activation);
  if (!result.ok) {
    errs.push(invalid(path, type, evalErrorDetail(result.error, c.rule)));
    return;
  }
  if (result.value === true) return;
  if (result.value !== false) {
    errs.push(invalid(path, type, `rule did not evaluate to a bool: ${ruleText(c.rule)}`));
    return;
  }
  errs.push(
    errorForReason(c.rule.reason, withFieldPath(path, c.rule.fieldPath), type, failureMessage(c, activation)),
  );
}

const ruleText = (rule: ValidationRule): string => rule.rule.trim();

/** Upstream's wording for a rule that could not be evaluated, by the kind of error. */
function evalErrorDetail(raw: string, rule: ValidationRule): string {
  // The engine capitalises what cel-go spells `no such key: x`, `no such overload`.
  const error = raw.replace(/^No such /, 'no such ');
  if (error.startsWith('no such overload')) {
    return `'${error}': call arguments did not match a supported operator, function or macro signature for rule: ${ruleText(rule)}`;
  }
  if (error.startsWith('operation cancelled: actual cost limit exceeded')) {
    return `'${error}': call cost exceeds limit for rule: ${ruleText(rule)}`;
  }
  // no such key, index out of bounds, division by zero, ...
  return `${error} evaluating rule: ${ruleText(rule)}`;
}

/** The rule's message, else the default; a messageExpression that fails or is unusable falls back to them. */
function failureMessage(c: CompiledRule, activation: Record<string, unknown>): string {
  if (c.message) {
    const r = c.message.eval(activation);
    if (r.ok && typeof r.value === 'string') {
      const msg = r.value.trim();
      if (msg !== '' && !/[\r\n]/.test(msg)) return msg;
    }
  }
  return c.rule.message?.trim() ? c.rule.message.trim() : `failed rule: ${ruleText(c.rule)}`;
}

function errorForReason(
  reason: string | undefined,
  path: string,
  type: string,
  detail: string,
): FieldErrorLike {
  switch (reason) {
    case 'FieldValueForbidden':
      return forbidden(path, detail);
    case 'FieldValueRequired':
      return required(path, detail);
    case 'FieldValueDuplicate':
      return duplicate(path, type);
    default:
      return invalid(path, type, detail);
  }
}

/** fieldPath is relative to the rule's node: `.a.b`, `.a['b.c']`, `.list[0]`. */
function withFieldPath(path: string, fieldPath: string | undefined): string {
  if (!fieldPath) return path;
  let out = path;
  const re = /\.([A-Za-z_$][\w$-]*)|\['((?:[^'\\]|\\.)*)'\]|\[(\d+)\]/gy;
  let m: RegExpExecArray | null = re.exec(fieldPath);
  while (m) {
    if (m[1] !== undefined) out = childPath(out, m[1]);
    else if (m[2] !== undefined) out = keyPath(out, m[2]);
    else out = indexPath(out, Number(m[3]));
    m = re.exec(fieldPath);
  }
  return out;
}

/**
 * The rules of a schema that do not compile, as the CRD's validation reports
 * them: `<schemaPath>...x-kubernetes-validations[i].rule: Invalid value: ...`.
 */
export function ruleCompileErrors(schema: JSONSchemaProps, path: string): FieldErrorLike[] {
  const errs: FieldErrorLike[] = [];
  compileErrorsAt(schema, path, errs);
  return errs;
}

function compileErrorsAt(schema: JSONSchemaProps, path: string, errs: FieldErrorLike[]): void {
  const rules = (schema['x-kubernetes-validations'] ?? []) as ValidationRule[];
  rules.forEach((rule, i) => {
    const p = indexPath(childPath(path, 'x-kubernetes-validations'), i);
    const r = compile(rule.rule ?? '', env());
    if (!r.ok)
      errs.push(ruleInvalid(childPath(p, 'rule'), rule, `compilation failed: ${r.errors[0]!.message}`));
    if (!rule.messageExpression) return;
    const m = compile(rule.messageExpression, env());
    if (!m.ok) {
      errs.push(
        ruleInvalid(
          childPath(p, 'messageExpression'),
          rule,
          `messageExpression compilation failed: ${m.errors[0]!.message}`,
        ),
      );
    }
  });
  for (const [k, sub] of Object.entries(schema.properties ?? {})) {
    compileErrorsAt(sub, keyPath(childPath(path, 'properties'), k), errs);
  }
  if (schema.items) compileErrorsAt(schema.items, childPath(path, 'items'), errs);
  if (typeof schema.additionalProperties === 'object') {
    compileErrorsAt(schema.additionalProperties, childPath(path, 'additionalProperties'), errs);
  }
}

/**
 * Upstream's bad value here is the whole rule, as Go's %#v prints the
 * internal struct; a set pointer prints as an address there, so a fixed one
 * stands in for it.
 */
function ruleInvalid(field: string, rule: ValidationRule, detail: string): FieldErrorLike {
  const ptr = (type: string, set: boolean) => `(*${type})(${set ? '0xc000010000' : 'nil'})`;
  const value =
    `apiextensions.ValidationRule{Rule:${goQuote(rule.rule ?? '')}, Message:${goQuote(rule.message ?? '')}, ` +
    `MessageExpression:${goQuote(rule.messageExpression ?? '')}, ` +
    `Reason:${ptr('apiextensions.FieldValueErrorReason', rule.reason !== undefined)}, ` +
    `FieldPath:${goQuote(rule.fieldPath ?? '')}, OptionalOldSelf:${ptr('bool', rule.optionalOldSelf !== undefined)}}`;
  return { type: 'FieldValueInvalid', field, message: `Invalid value: ${value}: ${detail}` };
}
