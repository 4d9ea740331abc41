// Defaulting and validation of CustomResourceDefinitions themselves, with
// upstream's messages (apiextensions-apiserver
// pkg/apis/apiextensions/v1/defaults.go and .../validation/validation.go).

import type { FieldErrorLike } from '../api/registry.ts';
import { immutableField } from '../api/resources/checks.ts';
import { validateMeta } from '../api/resources/common.ts';
import {
  childPath,
  indexPath,
  invalid,
  isDNS1035Label,
  isDNS1123Subdomain,
  notSupported,
  required,
} from '../api/validation.ts';
import { validateStructural } from './structural.ts';
import {
  type CustomResourceDefinition,
  type CustomResourceDefinitionNames,
  type CustomResourceDefinitionVersion,
  conditionOf,
} from './types.ts';
import { ruleCompileErrors } from './validation-rules.ts';

/** v1 defaults: singular and listKind from kind, None conversion. */
export function defaultCRD(crd: CustomResourceDefinition): void {
  const spec = crd.spec;
  if (!spec || typeof spec !== 'object') return;
  const names = spec.names;
  if (names && typeof names.kind === 'string' && names.kind) {
    names.singular ||= names.kind.toLowerCase();
    names.listKind ||= `${names.kind}List`;
  }
  spec.conversion ??= { strategy: 'None' };
  for (const v of spec.versions ?? []) {
    for (const c of v.additionalPrinterColumns ?? []) c.priority ??= 0;
  }
}

export function validateCRD(crd: CustomResourceDefinition, old?: CustomResourceDefinition): FieldErrorLike[] {
  const errs = [...validateMeta(crd, false, 'subdomain'), ...nameMatchesSpec(crd), ...validateSpec(crd)];
  if (old) errs.push(...validateSpecUpdate(crd, old), ...storedVersionErrors(crd));
  return errs;
}

function nameMatchesSpec(crd: CustomResourceDefinition): FieldErrorLike[] {
  const name = crd.metadata.name;
  if (!name || !crd.spec) return [];
  const want = `${crd.spec.names?.plural}.${crd.spec.group}`;
  return name === want ? [] : [invalid('metadata.name', name, 'must be spec.names.plural+"."+spec.group')];
}

const joined = (errs: string[]) => errs.join(',');

function validateSpec(crd: CustomResourceDefinition): FieldErrorLike[] {
  const spec = crd.spec;
  if (!spec || typeof spec !== 'object') return [required('spec')];
  const errs: FieldErrorLike[] = [];
  if (!spec.group) errs.push(required('spec.group'));
  else if (isDNS1123Subdomain(spec.group).length > 0) {
    errs.push(invalid('spec.group', spec.group, joined(isDNS1123Subdomain(spec.group))));
  } else if (spec.group.split('.').length < 2) {
    errs.push(invalid('spec.group', spec.group, 'should be a domain with at least one dot'));
  }
  if (!spec.scope) errs.push(required('spec.scope'));
  else if (spec.scope !== 'Cluster' && spec.scope !== 'Namespaced') {
    errs.push(notSupported('spec.scope', spec.scope, ['Cluster', 'Namespaced']));
  }
  errs.push(...validateVersions(spec.versions ?? []));
  const names = spec.names ?? ({} as CustomResourceDefinitionNames);
  for (const k of ['plural', 'singular', 'kind', 'listKind'] as const) {
    if (!names[k]) errs.push(required(`spec.names.${k}`));
  }
  errs.push(...validateNames(names, 'spec.names'));
  const strategy = spec.conversion?.strategy;
  if (strategy !== undefined && strategy !== 'None' && strategy !== 'Webhook') {
    errs.push(notSupported('spec.conversion.strategy', strategy, ['None', 'Webhook']));
  }
  if (strategy === 'None' && spec.conversion?.webhook !== undefined) {
    errs.push({
      type: 'FieldValueForbidden',
      field: 'spec.conversion.webhook',
      message: 'Forbidden: should not be set when strategy is not set to Webhook',
    });
  }
  return errs;
}

function validateVersions(versions: CustomResourceDefinitionVersion[]): FieldErrorLike[] {
  const errs: FieldErrorLike[] = [];
  const summary = versions.map((v) => ({ name: v.name, served: v.served, storage: v.storage }));
  if (versions.length === 0) {
    errs.push(required('spec.versions', 'must have exactly one version marked as storage version'));
    return errs;
  }
  const names = new Set<string>();
  let storage = 0;
  versions.forEach((v, i) => {
    const path = indexPath('spec.versions', i);
    if (v.storage) storage++;
    if (names.has(v.name)) errs.push(invalid('spec.versions', summary, 'must contain unique version names'));
    names.add(v.name);
    if (!v.name) errs.push(required(childPath(path, 'name')));
    else if (isDNS1035Label(v.name).length > 0)
      errs.push(invalid(childPath(path, 'name'), v.name, joined(isDNS1035Label(v.name))));
    errs.push(...validateVersion(v, path));
  });
  if (storage !== 1)
    errs.push(invalid('spec.versions', summary, 'must have exactly one version marked as storage version'));
  return errs;
}

const COLUMN_TYPES = ['integer', 'number', 'string', 'boolean', 'date'];
const COLUMN_FORMATS = ['int32', 'int64', 'float', 'double', 'byte', 'date', 'date-time', 'password'];

function validateVersion(v: CustomResourceDefinitionVersion, path: string): FieldErrorLike[] {
  const errs: FieldErrorLike[] = [];
  const schemaPath = childPath(path, 'schema', 'openAPIV3Schema');
  const schema = v.schema?.openAPIV3Schema;
  if (!schema) errs.push(required(schemaPath, 'schemas are required'));
  else errs.push(...validateStructural(schema, schemaPath), ...ruleCompileErrors(schema, schemaPath));
  (v.additionalPrinterColumns ?? []).forEach((c, i) => {
    const p = indexPath(childPath(path, 'additionalPrinterColumns'), i);
    if (!c.name) errs.push(required(childPath(p, 'name')));
    if (!COLUMN_TYPES.includes(c.type)) errs.push(notSupported(childPath(p, 'type'), c.type, COLUMN_TYPES));
    if (c.format && !COLUMN_FORMATS.includes(c.format))
      errs.push(notSupported(childPath(p, 'format'), c.format, COLUMN_FORMATS));
    if (!c.jsonPath) errs.push(required(childPath(p, 'JSONPath')));
    if ((c.priority ?? 0) < 0)
      errs.push(invalid(childPath(p, 'priority'), c.priority, 'priority must be non-negative'));
  });
  const scale = v.subresources?.scale;
  if (scale) {
    const p = childPath(path, 'subresources', 'scale');
    if (!scale.specReplicasPath) errs.push(required(childPath(p, 'specReplicasPath')));
    else if (!scale.specReplicasPath.startsWith('.spec.')) {
      errs.push(
        invalid(
          childPath(p, 'specReplicasPath'),
          scale.specReplicasPath,
          'should be a json path under .spec',
        ),
      );
    }
    if (!scale.statusReplicasPath) errs.push(required(childPath(p, 'statusReplicasPath')));
    else if (!scale.statusReplicasPath.startsWith('.status.')) {
      errs.push(
        invalid(
          childPath(p, 'statusReplicasPath'),
          scale.statusReplicasPath,
          'should be a json path under .status',
        ),
      );
    }
    if (scale.labelSelectorPath && !/^\.(spec|status)\./.test(scale.labelSelectorPath)) {
      errs.push(
        invalid(
          childPath(p, 'labelSelectorPath'),
          scale.labelSelectorPath,
          'should be a json path under either .spec or .status',
        ),
      );
    }
  }
  (v.selectableFields ?? []).forEach((f, i) => {
    const p = childPath(indexPath(childPath(path, 'selectableFields'), i), 'jsonPath');
    if (!f.jsonPath) errs.push(required(p));
    else if (f.jsonPath === '.metadata.name' || f.jsonPath === '.metadata.namespace') {
      errs.push(invalid(p, f.jsonPath, 'may not be metadata.name or metadata.namespace'));
    }
  });
  return errs;
}

function validateNames(names: CustomResourceDefinitionNames, path: string): FieldErrorLike[] {
  const errs: FieldErrorLike[] = [];
  const dns = (value: string | undefined, field: string, prefix = '') => {
    if (!value) return;
    const msgs = isDNS1035Label(prefix ? value.toLowerCase() : value);
    if (msgs.length > 0) errs.push(invalid(childPath(path, field), value, prefix + joined(msgs)));
  };
  dns(names.plural, 'plural');
  dns(names.singular, 'singular');
  dns(names.kind, 'kind', 'may have mixed case, but should otherwise match: ');
  dns(names.listKind, 'listKind', 'may have mixed case, but should otherwise match: ');
  (names.shortNames ?? []).forEach((s, i) => {
    const msgs = isDNS1035Label(s);
    if (msgs.length > 0) errs.push(invalid(indexPath(childPath(path, 'shortNames'), i), s, joined(msgs)));
  });
  if (names.kind && names.kind === names.listKind) {
    errs.push(invalid(childPath(path, 'listKind'), names.listKind, 'kind and listKind may not be the same'));
  }
  (names.categories ?? []).forEach((c, i) => {
    const msgs = isDNS1035Label(c);
    if (msgs.length > 0) errs.push(invalid(indexPath(childPath(path, 'categories'), i), c, joined(msgs)));
  });
  return errs;
}

function validateSpecUpdate(crd: CustomResourceDefinition, old: CustomResourceDefinition): FieldErrorLike[] {
  const errs: FieldErrorLike[] = [];
  if (conditionOf(old, 'Established')?.status === 'True') {
    errs.push(...immutableField(crd.spec?.scope, old.spec?.scope, 'spec.scope'));
    errs.push(...immutableField(crd.spec?.names?.kind, old.spec?.names?.kind, 'spec.names.kind'));
  }
  errs.push(...immutableField(crd.spec?.group, old.spec?.group, 'spec.group'));
  errs.push(...immutableField(crd.spec?.names?.plural, old.spec?.names?.plural, 'spec.names.plural'));
  return errs;
}

/** Every stored version must still be listed in spec.versions (storage migration comes first). */
function storedVersionErrors(crd: CustomResourceDefinition): FieldErrorLike[] {
  const listed = new Set((crd.spec?.versions ?? []).map((v) => v.name));
  const errs: FieldErrorLike[] = [];
  (crd.status?.storedVersions ?? []).forEach((v, i) => {
    if (!listed.has(v))
      errs.push(invalid(indexPath('status.storedVersions', i), v, 'must appear in spec.versions'));
  });
  return errs;
}
