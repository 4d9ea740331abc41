// Is a CRD's openAPIV3Schema structural? (apiextensions-apiserver
// pkg/apiserver/schema/validation.go, and the spec rules of
// apis/apiextensions/validation). A structural schema says the type of
// every field it specifies, keeps properties and additionalProperties
// apart, and uses allOf/anyOf/oneOf/not for value validation only, so
// pruning, defaulting and OpenAPI can be derived from it. A non-structural
// schema is refused with upstream's messages.

import type { FieldErrorLike } from '../api/registry.ts';
import { childPath, forbidden, invalid, keyPath, notSupported, required } from '../api/validation.ts';
import { validateValue } from './schema-validation.ts';
import { isSchemaObject, type JSONSchemaProps } from './types.ts';

const TYPES = ['array', 'boolean', 'integer', 'number', 'object', 'string'];

/** Where a schema sits: the root, an object field, array items, or inside a logic junctor. */
type Place = 'root' | 'field' | 'items' | 'junctor';

export function validateStructural(schema: JSONSchemaProps, path: string): FieldErrorLike[] {
  const errs: FieldErrorLike[] = [];
  node(schema, path, 'root', '', errs);
  errs.push(...metadataErrors(schema, path));
  return errs;
}

function node(
  s: JSONSchemaProps,
  path: string,
  place: Place,
  dataPath: string,
  errs: FieldErrorLike[],
): void {
  const intOrString = s['x-kubernetes-int-or-string'] === true;
  const preserve = s['x-kubernetes-preserve-unknown-fields'] === true;
  if (place === 'junctor') junctorErrors(s, path, errs);
  else typeErrors(s, path, place, intOrString, preserve, errs);
  if (s.$ref !== undefined) errs.push(forbidden(childPath(path, '$ref'), '$ref is not supported'));
  if (s.uniqueItems === true) {
    errs.push(
      forbidden(
        childPath(path, 'uniqueItems'),
        'uniqueItems cannot be set to true since the runtime complexity becomes quadratic',
      ),
    );
  }
  if (s['x-kubernetes-preserve-unknown-fields'] === false) {
    errs.push(
      invalid(childPath(path, 'x-kubernetes-preserve-unknown-fields'), false, 'must be true or undefined'),
    );
  }
  if (
    s.properties &&
    Object.keys(s.properties).length > 0 &&
    s.additionalProperties !== undefined &&
    s.additionalProperties !== true
  ) {
    errs.push(
      forbidden(
        childPath(path, 'additionalProperties'),
        'additionalProperties and properties are mutual exclusive',
      ),
    );
  }
  embeddedErrors(s, path, preserve, errs);
  listTypeErrors(s, path, errs);
  if (s.default !== undefined && place !== 'junctor') {
    errs.push(
      ...validateValue(s, s.default, dataPath || '<root>').map((e) => ({
        ...e,
        field: childPath(path, 'default'),
      })),
    );
  }
  for (const [name, child] of Object.entries(s.properties ?? {})) {
    node(
      child,
      childPath(keyPath(childPath(path, 'properties'), name)),
      place === 'junctor' ? 'junctor' : 'field',
      childPath(dataPath, name),
      errs,
    );
  }
  if (isSchemaObject(s.additionalProperties)) {
    node(
      s.additionalProperties,
      childPath(path, 'additionalProperties'),
      place === 'junctor' ? 'junctor' : 'field',
      dataPath,
      errs,
    );
  }
  if (s.items)
    node(s.items, childPath(path, 'items'), place === 'junctor' ? 'junctor' : 'items', dataPath, errs);
  for (const j of ['allOf', 'anyOf', 'oneOf'] as const) {
    for (const [i, sub] of (s[j] ?? []).entries()) {
      // int-or-string may say so in the shape OpenAPI generators emit: anyOf: [{type: integer}, {type: string}].
      if (intOrString && isIntOrStringAlternative(sub)) continue;
      node(sub, `${childPath(path, j)}[${i}]`, 'junctor', dataPath, errs);
    }
  }
  if (s.not) node(s.not, childPath(path, 'not'), 'junctor', dataPath, errs);
}

const isIntOrStringAlternative = (s: JSONSchemaProps): boolean =>
  Object.keys(s).length === 1 && (s.type === 'integer' || s.type === 'string');

function typeErrors(
  s: JSONSchemaProps,
  path: string,
  place: Place,
  intOrString: boolean,
  preserve: boolean,
  errs: FieldErrorLike[],
): void {
  const typePath = childPath(path, 'type');
  if (intOrString) {
    if (s.type) errs.push(invalid(typePath, s.type, 'must be empty if x-kubernetes-int-or-string is true'));
    return;
  }
  if (!s.type) {
    if (place === 'root') errs.push(required(typePath, 'must not be empty at the root'));
    else if (!preserve) {
      errs.push(
        required(
          typePath,
          place === 'items'
            ? 'must not be empty for specified array items'
            : 'must not be empty for specified object fields',
        ),
      );
    }
    return;
  }
  if (!TYPES.includes(s.type)) {
    errs.push(notSupported(typePath, s.type, TYPES));
    return;
  }
  if (place === 'root' && s.type !== 'object')
    errs.push(invalid(typePath, s.type, 'must be object at the root'));
  if (s.type === 'array' && !s.items) errs.push(required(childPath(path, 'items'), 'must be specified'));
}

// Inside allOf/anyOf/oneOf/not only value validations are allowed.
const notInJunctors = [
  'type',
  'default',
  'nullable',
  'description',
  'additionalProperties',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-embedded-resource',
  'x-kubernetes-int-or-string',
] as const;

function junctorErrors(s: JSONSchemaProps, path: string, errs: FieldErrorLike[]): void {
  for (const k of notInJunctors) {
    if (s[k] !== undefined) errs.push(forbidden(childPath(path, k), 'must be empty to be structural'));
  }
}

function embeddedErrors(s: JSONSchemaProps, path: string, preserve: boolean, errs: FieldErrorLike[]): void {
  if (s['x-kubernetes-embedded-resource'] !== true) return;
  if (s.type && s.type !== 'object') {
    errs.push(
      invalid(childPath(path, 'type'), s.type, 'must be object if x-kubernetes-embedded-resource is true'),
    );
  }
  if (!preserve && Object.keys(s.properties ?? {}).length === 0) {
    errs.push(
      required(
        childPath(path, 'properties'),
        'must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields',
      ),
    );
  }
}

function listTypeErrors(s: JSONSchemaProps, path: string, errs: FieldErrorLike[]): void {
  const listType = s['x-kubernetes-list-type'];
  const keys = s['x-kubernetes-list-map-keys'];
  if (listType !== undefined) {
    if (!['atomic', 'map', 'set'].includes(listType)) {
      errs.push(notSupported(childPath(path, 'x-kubernetes-list-type'), listType, ['atomic', 'map', 'set']));
    } else if (s.type !== 'array') {
      errs.push(
        invalid(childPath(path, 'x-kubernetes-list-type'), listType, 'must only be used if type is array'),
      );
    }
  }
  if (listType === 'map' && (!keys || keys.length === 0)) {
    errs.push(
      required(
        childPath(path, 'x-kubernetes-list-map-keys'),
        'must not be empty if x-kubernetes-list-type is map',
      ),
    );
  }
  if (keys && keys.length > 0 && listType !== 'map') {
    errs.push(
      forbidden(childPath(path, 'x-kubernetes-list-map-keys'), 'requires x-kubernetes-list-type: map'),
    );
  }
  if (listType === 'map' && keys) {
    const itemProps = s.items?.properties ?? {};
    for (const [i, k] of keys.entries()) {
      if (!itemProps[k]) {
        errs.push(
          invalid(
            `${childPath(path, 'x-kubernetes-list-map-keys')}[${i}]`,
            k,
            'entries must all be names of item properties',
          ),
        );
      }
    }
  }
  const mapType = s['x-kubernetes-map-type'];
  if (mapType !== undefined && !['atomic', 'granular'].includes(mapType)) {
    errs.push(notSupported(childPath(path, 'x-kubernetes-map-type'), mapType, ['atomic', 'granular']));
  }
}

/**
 * At the root, metadata may only restrict name and generateName (as
 * strings): the rest of ObjectMeta is the API server's.
 */
function metadataErrors(root: JSONSchemaProps, path: string): FieldErrorLike[] {
  const meta = root.properties?.metadata;
  if (!meta) return [];
  const metaPath = keyPath(childPath(path, 'properties'), 'metadata');
  const { type, properties, ...rest } = meta;
  const extraProps = Object.keys(properties ?? {}).filter((k) => k !== 'name' && k !== 'generateName');
  const onlyStrings = Object.values(properties ?? {}).every((p) =>
    Object.keys(p).every((k) =>
      ['type', 'pattern', 'maxLength', 'minLength', 'enum', 'description', 'format'].includes(k),
    ),
  );
  if (
    (type !== undefined && type !== 'object') ||
    Object.keys(rest).some((k) => k !== 'description') ||
    extraProps.length > 0 ||
    !onlyStrings
  ) {
    return [
      forbidden(
        metaPath,
        'must not specify anything other than name and generateName, but metadata is implicitly specified',
      ),
    ];
  }
  return [];
}
