// A CustomResourceDefinition's registry entries: one ResourceType per
// served version, so discovery, OpenAPI, tables, field selectors, the
// status and scale subresources and the generic REST storage serve custom
// resources exactly as they serve built-in kinds. The version's structural
// schema gives pruning (fieldValidation), defaulting and validation.

import type { KubeObject } from '../api/meta.ts';
import type { ColumnType, FieldErrorLike, PrinterColumn, ResourceType } from '../api/registry.ts';
import { validateMeta } from '../api/resources/common.ts';
import { nameColumn } from '../api/resources/printers.ts';
import { cellValue, findFirst, goText } from './jsonpath.ts';
import { applyDefaults, prune } from './pruning.ts';
import { validateValue } from './schema-validation.ts';
import type {
  CustomResourceColumnDefinition,
  CustomResourceDefinition,
  CustomResourceDefinitionVersion,
  JSONSchemaProps,
} from './types.ts';

/**
 * The hook for `x-kubernetes-validations` (CEL) rules: given the version's
 * schema, the object and (on update) the old one, the rules' errors. The
 * CEL engine plugs in here (CRDControllerOptions.rules); without it the
 * rules are not evaluated.
 */
export type ValidationRules = (
  schema: JSONSchemaProps,
  obj: KubeObject,
  old?: KubeObject,
) => FieldErrorLike[];

export interface CustomResourceOptions {
  rules?: ValidationRules;
}

const ageColumn: CustomResourceColumnDefinition = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description:
    'CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata',
  priority: 0,
};

/** The entries to serve for a CRD whose names are accepted: one per served version. */
export function customResourceTypes(
  crd: CustomResourceDefinition,
  opts: CustomResourceOptions = {},
): ResourceType[] {
  const storage = crd.spec.versions.find((v) => v.storage)?.name ?? crd.spec.versions[0]?.name ?? '';
  const multiVersion =
    crd.spec.versions.filter((v) => v.served).length > 1 ||
    (crd.status?.storedVersions ?? []).some((v) => v !== storage);
  return crd.spec.versions
    .filter((v) => v.served)
    .map((v) => versionType(crd, v, storage, multiVersion, opts));
}

function versionType(
  crd: CustomResourceDefinition,
  v: CustomResourceDefinitionVersion,
  storageVersion: string,
  multiVersion: boolean,
  opts: CustomResourceOptions,
): ResourceType {
  const { group, names } = crd.spec;
  const namespaced = crd.spec.scope === 'Namespaced';
  const schema: JSONSchemaProps = v.schema?.openAPIV3Schema ?? {
    type: 'object',
    'x-kubernetes-preserve-unknown-fields': true,
  };
  const columns = v.additionalPrinterColumns?.length ? v.additionalPrinterColumns : [ageColumn];
  const selectable = (v.selectableFields ?? []).map((f) => f.jsonPath);
  const gv = `${group}/${v.name}`;
  const statusEnabled = v.subresources?.status !== undefined;
  const rt: ResourceType = {
    group,
    version: v.name,
    kind: names.kind,
    plural: names.plural,
    singular: names.singular ?? names.kind.toLowerCase(),
    listKind: names.listKind ?? `${names.kind}List`,
    ...(names.shortNames?.length ? { shortNames: names.shortNames } : {}),
    ...(names.categories?.length ? { categories: names.categories } : {}),
    namespaced,
    custom: true,
    generation: true,
    ...(statusEnabled ? { status: true } : {}),
    ...(v.subresources?.scale ? { scale: v.subresources.scale } : {}),
    openAPISchema: schema,
    columns: [
      nameColumn,
      ...columns.map(
        (c): PrinterColumn => ({
          name: c.name,
          type: c.type as ColumnType,
          ...(c.format ? { format: c.format } : {}),
          description: c.description ?? '',
          priority: c.priority ?? 0,
        }),
      ),
    ],
    cells: (obj, now) => columns.map((c) => cellValue(c.type, findFirst(obj, c.jsonPath), now)),
    ...(selectable.length
      ? {
          fields: (obj: KubeObject) =>
            Object.fromEntries(selectable.map((p) => [p.slice(1), fieldText(findFirst(obj, p))])),
        }
      : {}),
    prune: (obj) => prune(schema, obj as unknown as Record<string, unknown>),
    defaults: (obj) => applyDefaults(schema, obj),
    // Upstream's customResourceStrategy.PrepareForCreate: with a status
    // subresource, status is written only through /status.
    ...(statusEnabled ? { prepareCreate: (obj: KubeObject) => void delete obj.status } : {}),
    validate: (obj, old) => [
      ...validateMeta(obj, namespaced, 'subdomain'),
      ...validateValue(schema, withoutMeta(obj), ''),
      ...(opts.rules?.(schema, obj, old) ?? []),
    ],
    ...(multiVersion ? { convert: noneConversion(gv, `${group}/${storageVersion}`) } : {}),
    ...(v.deprecated ? { warning: v.deprecationWarning ?? `${gv} ${names.kind} is deprecated` } : {}),
  };
  return rt;
}

/** ObjectMeta is checked as the kind's metadata, not by the schema (upstream validates it apart). */
function withoutMeta(obj: KubeObject): Record<string, unknown> {
  const { metadata: _m, ...rest } = obj;
  return rest;
}

const fieldText = (v: unknown): string => (v === undefined || v === null ? '' : goText(v));

/** `None` conversion: only apiVersion changes between versions (upstream's nopConverter). */
function noneConversion(gv: string, storageGV: string) {
  return {
    toStorage: (obj: KubeObject) => ({ ...obj, apiVersion: storageGV }),
    fromStorage: (obj: KubeObject) => {
      obj.apiVersion = gv;
      return obj;
    },
  };
}
