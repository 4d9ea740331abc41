// Small building blocks shared by the kind-specific validators: tolerant
// accessors (validation runs on whatever JSON a client sent or a patch
// produced, so nothing here may throw), upstream's field error builders,
// and the apimachinery rules that several API groups reuse (label
// selectors, int-or-percent, config keys, quantities).

import { selectorFromLabelSelector } from '../labels.ts';
import { formatQuantity, parseQuantity, type Quantity } from '../quantity.ts';
import type { FieldErrorLike } from '../registry.ts';
import {
  childPath,
  DNS1123SubdomainMaxLength,
  forbidden,
  formatBadValue,
  indexPath,
  invalid,
  isDNS1123Label,
  isDNS1123Subdomain,
  isQualifiedName,
  isValidLabelValue,
  isValidPercent,
  maxLenError,
  regexError,
  required,
  validateLabels,
} from '../validation.ts';

export type Obj = Record<string, unknown>;
export type Errs = FieldErrorLike[];

// ---- tolerant accessors ----

export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
export const obj = (v: unknown): Obj => (isObj(v) ? v : {});
export const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
/** A list of objects, keeping indexes stable (non-objects read as empty objects). */
export const objs = (v: unknown): Obj[] => list(v).map(obj);
/** A string field as Go sees it: missing is "". */
export const str = (v: unknown): string => (typeof v === 'string' ? v : '');
export const num = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;
/** Set in the Go sense of a non-nil pointer. */
export const isSet = (v: unknown): boolean => v !== undefined && v !== null;
export const strings = (v: unknown): string[] => list(v).map(str);

/** parent[key] as an object, created when missing (for defaulting). */
export function child(parent: Obj, key: string): Obj {
  const v = parent[key];
  if (isObj(v)) return v;
  const created: Obj = {};
  parent[key] = created;
  return created;
}

// ---- field paths ----

export const at = childPath;
export const idx = indexPath;

// ---- error builders beyond validation.ts ----

/** field.NotFound: "Not found: <value>". */
export function notFound(field: string, value: unknown, detail = ''): FieldErrorLike {
  return {
    type: 'FieldValueNotFound',
    field,
    message: `Not found: ${formatBadValue(value)}${detail ? `: ${detail}` : ''}`,
  };
}

/**
 * field.Invalid for a value upstream prints through its String() method
 * (IntOrString, for one), so it appears without quotes.
 */
export function invalidShown(field: string, shown: string, detail: string): FieldErrorLike {
  return { type: 'FieldValueInvalid', field, message: `Invalid value: ${shown}: ${detail}` };
}

export const isNegativeErrorMsg = 'must be greater than or equal to 0';
export const fieldImmutableErrorMsg = 'field is immutable';

/** apimachinery ValidateNonnegativeField; silent when the field is unset. */
export function nonNegative(field: string, v: unknown): Errs {
  const n = num(v);
  return n !== undefined && n < 0 ? [invalid(field, n, isNegativeErrorMsg)] : [];
}

/** apimachinery ValidateImmutableField. */
export function immutableField(now: unknown, before: unknown, field: string): Errs {
  return semanticEqual(now, before) ? [] : [invalid(field, now ?? null, fieldImmutableErrorMsg)];
}

export function msgs(field: string, value: unknown, messages: readonly string[]): Errs {
  return messages.map((m) => invalid(field, value, m));
}

export const dns1123Label = (value: string, field: string): Errs => msgs(field, value, isDNS1123Label(value));
export const dns1123Subdomain = (value: string, field: string): Errs =>
  msgs(field, value, isDNS1123Subdomain(value));
/** unversioned ValidateLabelName. */
export const labelName = (value: string, field: string): Errs => msgs(field, value, isQualifiedName(value));
export const qualifiedName = labelName;

/** A nil-tolerant label map check (unversioned ValidateLabels). */
export function labels(v: unknown, field: string): Errs {
  const m: Record<string, string> = {};
  for (const [k, val] of Object.entries(obj(v))) m[k] = str(val);
  return validateLabels(m, field);
}

// ---- label selectors (unversioned ValidateLabelSelector) ----

export function labelSelector(sel: unknown, field: string): Errs {
  if (!isObj(sel)) return [];
  const errs: Errs = labels(sel.matchLabels, at(field, 'matchLabels'));
  objs(sel.matchExpressions).forEach((req, i) => {
    const p = idx(at(field, 'matchExpressions'), i);
    const values = strings(req.values);
    const op = str(req.operator);
    switch (op) {
      case 'In':
      case 'NotIn':
        if (values.length === 0)
          errs.push(required(at(p, 'values'), "must be specified when `operator` is 'In' or 'NotIn'"));
        break;
      case 'Exists':
      case 'DoesNotExist':
        if (values.length > 0)
          errs.push(
            forbidden(at(p, 'values'), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
          );
        break;
      default:
        errs.push(invalid(at(p, 'operator'), op, 'not a valid selector operator'));
    }
    errs.push(...labelName(str(req.key), at(p, 'key')));
    values.forEach((v, j) => {
      errs.push(...msgs(idx(at(p, 'values'), j), v, isValidLabelValue(v)));
    });
  });
  return errs;
}

export const selectorIsEmpty = (sel: unknown): boolean =>
  Object.keys(obj(obj(sel).matchLabels)).length + list(obj(sel).matchExpressions).length === 0;

/** Whether sel selects these labels; undefined when sel cannot be converted to a selector. */
export function selectorMatches(sel: unknown, lbls: unknown): boolean | undefined {
  const s = obj(sel);
  const labelsMap: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(lbls))) labelsMap[k] = str(v);
  try {
    return selectorFromLabelSelector({
      matchLabels: Object.fromEntries(Object.entries(obj(s.matchLabels)).map(([k, v]) => [k, str(v)])),
      matchExpressions: objs(s.matchExpressions).map((e) => ({
        key: str(e.key),
        operator: str(e.operator),
        values: strings(e.values),
      })),
    }).matches(labelsMap);
  } catch {
    return undefined;
  }
}

// ---- int-or-percent (apps validation, reused by policy) ----

/** How upstream prints an IntOrString bad value: its String(), unquoted. */
export const intOrStringShown = (v: unknown): string => (typeof v === 'string' ? v : String(num(v) ?? 0));

function percentValue(v: unknown): number | undefined {
  if (typeof v !== 'string' || isValidPercent(v).length > 0) return undefined;
  return Number(v.slice(0, -1));
}

/** getIntOrPercentValue: a percent's number, else IntOrString.IntValue (a string's Atoi, 0 if none). */
export function intOrPercentValue(v: unknown): number {
  const p = percentValue(v);
  if (p !== undefined) return p;
  if (typeof v === 'string') return /^[+-]?[0-9]+$/.test(v) ? Number(v) : 0;
  return num(v) ?? 0;
}

/** apps ValidatePositiveIntOrPercent (despite the name: non-negative). */
export function positiveIntOrPercent(v: unknown, field: string): Errs {
  if (typeof v === 'string') return isValidPercent(v).map((m) => invalidShown(field, v, m));
  if (typeof v === 'number') return nonNegative(field, v);
  return [];
}

export function notMoreThan100Percent(v: unknown, field: string): Errs {
  const p = percentValue(v);
  if (p === undefined || p <= 100) return [];
  return [invalidShown(field, intOrStringShown(v), 'must not be greater than 100%')];
}

// ---- string formats ----

const configMapKeyFmt = '[-._a-zA-Z0-9]+';
const configMapKeyRegexp = new RegExp(`^${configMapKeyFmt}$`);

function hasChDirPrefix(value: string): string[] {
  if (value === '.') return ["must not be '.'"];
  if (value === '..') return ["must not be '..'"];
  if (value.startsWith('..')) return ["must not start with '..'"];
  return [];
}

/** util/validation IsConfigMapKey. */
export function isConfigMapKey(value: string): string[] {
  const errs: string[] = [];
  if (Buffer.byteLength(value) > DNS1123SubdomainMaxLength) errs.push(maxLenError(DNS1123SubdomainMaxLength));
  if (!configMapKeyRegexp.test(value)) {
    errs.push(
      regexError(
        "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
        configMapKeyFmt,
        'key.name',
        'KEY_NAME',
        'key-name',
      ),
    );
  }
  errs.push(...hasChDirPrefix(value));
  return errs;
}

/**
 * util/validation IsRelaxedEnvVarName: RelaxedEnvironmentVariableValidation
 * is on by default since 1.32, the version Skiff reports.
 */
export function isRelaxedEnvVarName(value: string): string[] {
  if (value.length === 0) return ['environment variable name must be non-empty'];
  for (const ch of value) {
    const cp = ch.codePointAt(0) as number;
    if (cp < 0x20 || cp > 0x7e || ch === '=') {
      return [
        "a valid environment variable name must consist only of printable ASCII characters other than '='",
      ];
    }
  }
  return [];
}

const dns1123SubdomainFmt = '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*';
const wildcardFmt = `\\*\\.${dns1123SubdomainFmt}`;
const wildcardRegexp = new RegExp(`^${wildcardFmt}$`);

/** util/validation IsWildcardDNS1123Subdomain. */
export function isWildcardDNS1123Subdomain(value: string): string[] {
  const errs: string[] = [];
  if (Buffer.byteLength(value) > DNS1123SubdomainMaxLength) errs.push(maxLenError(DNS1123SubdomainMaxLength));
  if (!wildcardRegexp.test(value)) {
    errs.push(
      regexError(
        "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character",
        wildcardFmt,
        '*.example.com',
      ),
    );
  }
  return errs;
}

// ---- quantities ----

export const quantityFormatError =
  "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/** A quantity field (string or number in JSON); undefined when it does not parse. */
export function quantity(v: unknown): Quantity | undefined {
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  try {
    return parseQuantity(String(v));
  } catch {
    return undefined;
  }
}

/** Quantity.String(), as upstream prints quantities in messages. */
export const qstr = formatQuantity;

// ---- equality ----

// Missing, null, [] and {} all decode to a nil or empty Go slice or map,
// which upstream's semantic equality does not tell apart.
const emptyish = (v: unknown): boolean =>
  v === undefined ||
  v === null ||
  (Array.isArray(v) && v.length === 0) ||
  (isObj(v) && Object.keys(v).length === 0);

/** Deep equality of JSON values, ignoring key order (upstream's semantic DeepEqual, minus quantities). */
export function semanticEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (emptyish(a) && emptyish(b)) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => semanticEqual(v, b[i]));
  }
  const ao = a as Obj;
  const bo = b as Obj;
  const keys = new Set([...Object.keys(ao), ...Object.keys(bo)]);
  for (const k of keys) if (!semanticEqual(ao[k], bo[k])) return false;
  return true;
}
