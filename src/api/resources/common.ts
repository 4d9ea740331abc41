// Shared pieces of the resource definitions: the standard columns, the
// ObjectMeta validation every kind runs, and a builder that fills defaults.

import type { KubeObject } from '../meta.ts';
import type { FieldErrorLike, PrinterColumn, ResourceType } from '../registry.ts';
import {
  isDNS1035Label,
  isDNS1123Label,
  isDNS1123Subdomain,
  validateAnnotations,
  validateLabels,
} from '../validation.ts';
import { age, ageColumn, nameColumn } from './printers.ts';

export type NameRule = 'subdomain' | 'label' | 'dns1035' | 'path';

const nameRules: Record<NameRule, (v: string) => string[]> = {
  subdomain: isDNS1123Subdomain,
  label: isDNS1123Label,
  dns1035: isDNS1035Label,
  // RBAC and a few others only forbid what cannot appear in a URL path segment.
  path: (v) => {
    if (v === '.' || v === '..') return [`may not be '${v}'`];
    const bad = ['/', '%'].filter((c) => v.includes(c));
    return bad.map((c) => `may not contain '${c}'`);
  },
};

const quote = (v: unknown) => JSON.stringify(v);

/** ObjectMeta checks shared by every kind (upstream ValidateObjectMeta). */
export function validateMeta(obj: KubeObject, namespaced: boolean, rule: NameRule): FieldErrorLike[] {
  const errs: FieldErrorLike[] = [];
  const meta = obj.metadata;
  if (!meta.name) {
    errs.push({
      type: 'FieldValueRequired',
      field: 'metadata.name',
      message: 'Required value: name or generateName is required',
    });
  } else {
    for (const msg of nameRules[rule](meta.name)) {
      errs.push({
        type: 'FieldValueInvalid',
        field: 'metadata.name',
        message: `Invalid value: ${quote(meta.name)}: ${msg}`,
      });
    }
  }
  if (namespaced) {
    if (!meta.namespace) {
      errs.push({ type: 'FieldValueRequired', field: 'metadata.namespace', message: 'Required value' });
    } else {
      for (const msg of isDNS1123Label(meta.namespace)) {
        errs.push({
          type: 'FieldValueInvalid',
          field: 'metadata.namespace',
          message: `Invalid value: ${quote(meta.namespace)}: ${msg}`,
        });
      }
    }
  } else if (meta.namespace) {
    errs.push({
      type: 'FieldValueForbidden',
      field: 'metadata.namespace',
      message: 'Forbidden: not allowed on this type',
    });
  }
  for (const e of [
    ...validateLabels(meta.labels, 'metadata.labels'),
    ...validateAnnotations(meta.annotations, 'metadata.annotations'),
  ]) {
    errs.push({ type: e.type, field: e.field, message: bodyOf(e) });
  }
  return errs;
}

// validation.ts errors carry a message without the type prefix; causes
// carry "Invalid value: ...: detail", as upstream's ErrorBody.
function bodyOf(e: { type: string; message: string; badValue?: unknown }): string {
  const prefix = {
    FieldValueRequired: 'Required value',
    FieldValueInvalid: 'Invalid value',
    FieldValueDuplicate: 'Duplicate value',
    FieldValueNotSupported: 'Unsupported value',
    FieldValueForbidden: 'Forbidden',
    FieldValueTooLong: 'Too long',
    FieldValueTooMany: 'Too many',
  }[e.type];
  if (!prefix || e.message.startsWith(prefix)) return e.message;
  if (e.badValue !== undefined && e.type === 'FieldValueInvalid')
    return `${prefix}: ${quote(e.badValue)}: ${e.message}`;
  return `${prefix}: ${e.message}`;
}

export interface KindSpec extends Omit<ResourceType, 'columns' | 'cells' | 'validate'> {
  nameRule?: NameRule;
  /** Columns between NAME and AGE (or after AGE with `ageLast: false`). */
  columns?: PrinterColumn[];
  cells?: (obj: KubeObject, now: Date) => unknown[];
  /** Where the AGE column sits among `columns` (default: after all priority-0 columns). */
  ageIndex?: number;
  /** Kind-specific validation, after ObjectMeta's. */
  validateSpec?: (obj: KubeObject, old?: KubeObject) => FieldErrorLike[];
  /** Set for kinds whose table has no AGE column. */
  noAge?: boolean;
  /** Set for kinds whose table has no leading NAME column. */
  noName?: boolean;
}

/** Builds a ResourceType with NAME first, AGE where upstream puts it, and ObjectMeta validation. */
export function kind(spec: KindSpec): ResourceType {
  const { nameRule = 'subdomain', columns = [], cells, ageIndex, validateSpec, noAge, noName, ...rt } = spec;
  const ageAt = ageIndex ?? columns.filter((c) => c.priority === 0).length;
  const lead = noName ? [] : [nameColumn];
  const allColumns = noAge
    ? [...lead, ...columns]
    : [...lead, ...columns.slice(0, ageAt), ageColumn, ...columns.slice(ageAt)];
  return {
    ...rt,
    ...(noName ? { namelessTable: true } : {}),
    columns: allColumns,
    cells: (obj, now) => {
      const c = cells ? cells(obj, now) : [];
      return noAge ? c : [...c.slice(0, ageAt), age(obj.metadata.creationTimestamp, now), ...c.slice(ageAt)];
    },
    validate: (obj, old) => [
      ...validateMeta(obj, rt.namespaced, nameRule),
      ...(validateSpec?.(obj, old) ?? []),
    ],
  };
}
