// OpenAPI v2 and v3 documents derived from the registry and the type model.
//
// kubectl reads them for `explain`, for client-side apply (patch strategies
// and merge keys come from x-kubernetes-patch-* extensions), and to learn
// whether PATCH takes fieldValidation and dryRun (it looks for the query
// parameters on the PATCH operation tagged with the kind's GVK).
//
// Field descriptions are not in the protobuf descriptors, so `explain` shows
// types and structure without upstream's prose.

import type { PatchSchema } from '../patch/index.ts';
import { groupVersion, type Registry, type ResourceType } from '../registry.ts';
import { definitionName, type ModelField, protoPackage, SPECIAL_MESSAGES, type TypeModel } from './model.ts';

type Schema = Record<string, unknown>;
type Flavor = 'v2' | 'v3';

const refPrefix = (flavor: Flavor) => (flavor === 'v3' ? '#/components/schemas/' : '#/definitions/');

function scalarSchema(type: string): Schema {
  switch (type) {
    case 'string':
      return { type: 'string' };
    case 'bytes':
      return { type: 'string', format: 'byte' };
    case 'bool':
      return { type: 'boolean' };
    case 'int32':
    case 'uint32':
      return { type: 'integer', format: 'int32' };
    case 'int64':
    case 'uint64':
      return { type: 'integer', format: 'int64' };
    default:
      return { type: 'number', format: 'double' };
  }
}

function specialSchema(kind: string): Schema {
  switch (kind) {
    case 'time':
      return { type: 'string', format: 'date-time' };
    case 'microtime':
      return { type: 'string', format: 'date-time' };
    case 'quantity':
      return { type: 'string' };
    case 'int-or-string':
      return { type: 'string', format: 'int-or-string' };
    case 'duration':
      return { type: 'string' };
    case 'string-list':
      return { type: 'array', items: { type: 'string' } };
    default:
      return { type: 'object' };
  }
}

export interface OpenAPIOptions {
  model: TypeModel;
  registry: Registry;
  patchSchema: PatchSchema;
  version: string;
}

/** The root message of a kind, if the model has it. */
export function kindMessage(
  model: TypeModel,
  rt: { group: string; version: string; kind: string },
): string | undefined {
  const name = `${protoPackage(rt.group, rt.version)}.${rt.kind}`;
  return model.message(name) ? name : undefined;
}

/**
 * Definitions for the given root messages and everything they reference, with
 * patch metadata placed on properties by walking from each root (so that a
 * Container inside a PodSpec gets the same extensions everywhere).
 */
function definitions(
  opts: OpenAPIOptions,
  roots: Array<{ message: string; gvk?: { group: string; version: string; kind: string }[] }>,
  flavor: Flavor,
): Record<string, Schema> {
  const { model, patchSchema } = opts;
  const defs: Record<string, Schema> = {};
  const ref = (name: string): Schema => ({ $ref: `${refPrefix(flavor)}${definitionName(name)}` });
  const wrapRef = (name: string): Schema => (flavor === 'v3' ? { allOf: [ref(name)] } : ref(name));
  const fieldSchema = (f: ModelField): Schema => {
    const schemaOfValue = (type: string, message: string | undefined): Schema => {
      if (type !== 'message' || !message) return scalarSchema(type);
      add(message);
      return wrapRef(message);
    };
    if (f.map) return { type: 'object', additionalProperties: schemaOfValue(f.map.type, f.map.message) };
    const item = schemaOfValue(f.type, f.message);
    return f.repeated ? { type: 'array', items: item } : item;
  };
  const add = (name: string): void => {
    const defName = definitionName(name);
    if (defs[defName]) return;
    const special = SPECIAL_MESSAGES[name];
    if (special) {
      defs[defName] = specialSchema(special);
      return;
    }
    const message = model.message(name);
    if (!message) {
      defs[defName] = { type: 'object' };
      return;
    }
    const schema: Schema = { type: 'object', properties: {} };
    defs[defName] = schema;
    const props = schema.properties as Record<string, Schema>;
    for (const f of message.fields) props[f.name] = fieldSchema(f);
  };
  for (const root of roots) {
    add(root.message);
    const def = defs[definitionName(root.message)]!;
    const props = def.properties as Record<string, Schema> | undefined;
    if (props && root.gvk) {
      props.apiVersion = {
        type: 'string',
        description: 'APIVersion defines the versioned schema of this representation of an object.',
      };
      props.kind = {
        type: 'string',
        description: 'Kind is a string value representing the REST resource this object represents.',
      };
      def['x-kubernetes-group-version-kind'] = root.gvk;
    }
  }
  // Patch metadata, walking from every root through the message graph.
  const seen = new Set<string>();
  const annotate = (name: string, path: string[]): void => {
    const key = `${name}@${path.join('.')}`;
    if (seen.has(key) || path.length > 12) return;
    seen.add(key);
    const message = model.message(name);
    const def = defs[definitionName(name)];
    if (!message || !def || SPECIAL_MESSAGES[name]) return;
    const props = def.properties as Record<string, Schema>;
    for (const f of message.fields) {
      const fieldPath = [...path, f.name];
      const meta = patchSchema.fieldMeta(fieldPath);
      const prop = props[f.name];
      if (meta && prop) {
        if (meta.strategy) prop['x-kubernetes-patch-strategy'] = meta.strategy;
        if (meta.mergeKey) {
          prop['x-kubernetes-patch-merge-key'] = meta.mergeKey;
          if (f.repeated) {
            prop['x-kubernetes-list-type'] = 'map';
            prop['x-kubernetes-list-map-keys'] = [meta.mergeKey];
          }
        } else if (f.repeated && meta.strategy?.includes('merge')) prop['x-kubernetes-list-type'] = 'set';
      }
      const next = f.map ? f.map.message : f.message;
      if (next) annotate(next, fieldPath);
    }
  };
  for (const root of roots) annotate(root.message, []);
  return defs;
}

const queryParam = (name: string, type = 'string') => ({
  name,
  in: 'query',
  schema: { type },
  uniqueItems: true,
});

function operations(rt: ResourceType, flavor: Flavor) {
  const gvk = { group: rt.group, version: rt.version, kind: rt.kind };
  const body = (rt2: ResourceType) => `${refPrefix(flavor)}${kindDefinitionName(rt2)}`;
  const op = (action: string, params: string[], extra: Schema = {}) => {
    const parameters = params.map((p) =>
      flavor === 'v3' ? queryParam(p) : { name: p, in: 'query', type: 'string', uniqueItems: true },
    );
    return {
      operationId: `${action}${rt.kind}`,
      parameters,
      responses: {
        '200': {
          description: 'OK',
          ...(flavor === 'v3'
            ? { content: { 'application/json': { schema: { $ref: body(rt) } } } }
            : { schema: { $ref: body(rt) } }),
        },
      },
      'x-kubernetes-action': action,
      'x-kubernetes-group-version-kind': gvk,
      ...extra,
    };
  };
  const base = rt.group ? `/apis/${rt.group}/${rt.version}` : `/api/${rt.version}`;
  const collection = rt.namespaced ? `${base}/namespaces/{namespace}/${rt.plural}` : `${base}/${rt.plural}`;
  const item = `${collection}/{name}`;
  const writeParams = ['dryRun', 'fieldManager', 'fieldValidation', 'pretty'];
  const paths: Record<string, Schema> = {
    [collection]: {
      get: op('list', [
        'labelSelector',
        'fieldSelector',
        'limit',
        'continue',
        'resourceVersion',
        'resourceVersionMatch',
        'watch',
        'timeoutSeconds',
      ]),
      post: op('post', writeParams),
      delete: op('deletecollection', [
        'dryRun',
        'gracePeriodSeconds',
        'propagationPolicy',
        'labelSelector',
        'fieldSelector',
      ]),
    },
    [item]: {
      get: op('get', ['pretty']),
      put: op('put', writeParams),
      patch: op('patch', [...writeParams, 'force']),
      delete: op('delete', ['dryRun', 'gracePeriodSeconds', 'propagationPolicy']),
    },
  };
  if (rt.status) {
    paths[`${item}/status`] = {
      get: op('get', []),
      put: op('put', writeParams),
      patch: op('patch', [...writeParams, 'force']),
    };
  }
  return paths;
}

/** GET /openapi/v3: the index of per-group-version documents. */
export function openAPIV3Index(registry: Registry, hash: (gv: string) => string) {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const g of registry.groups()) {
    for (const v of g.versions) {
      const p = g.group ? `apis/${g.group}/${v}` : `api/${v}`;
      paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash(p)}` };
    }
  }
  return { paths };
}

/** GET /openapi/v3/api/v1 or /openapi/v3/apis/<group>/<version>. */
export function openAPIV3Document(opts: OpenAPIOptions, group: string, version: string): Schema | undefined {
  const types = opts.registry.inGroupVersion(group, version);
  if (types.length === 0) return undefined;
  const roots = rootsFor(opts, types);
  const paths: Schema = {};
  for (const rt of types) if (hasSchema(opts, rt)) Object.assign(paths, operations(rt, 'v3'));
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: opts.version },
    paths,
    components: { schemas: withSchemaKinds(definitions(opts, roots, 'v3'), types, 'v3') },
  };
}

/** GET /openapi/v2: one Swagger 2.0 document for everything. */
export function openAPIV2Document(opts: OpenAPIOptions): Schema {
  const types = opts.registry.all();
  const paths: Schema = {};
  for (const rt of types) if (hasSchema(opts, rt)) Object.assign(paths, operations(rt, 'v2'));
  return {
    swagger: '2.0',
    info: { title: 'Kubernetes', version: opts.version },
    paths,
    definitions: withSchemaKinds(definitions(opts, rootsFor(opts, types), 'v2'), types, 'v2'),
  };
}

function rootsFor(opts: OpenAPIOptions, types: ResourceType[]) {
  const roots: Array<{ message: string; gvk?: { group: string; version: string; kind: string }[] }> = [];
  // Kinds with their own schema refer to ObjectMeta and ListMeta.
  if (types.some((rt) => rt.openAPISchema)) {
    roots.push({ message: OBJECT_META }, { message: LIST_META });
  }
  for (const rt of types) {
    const message = kindMessage(opts.model, rt);
    if (!message) continue;
    roots.push({ message, gvk: [{ group: rt.group, version: rt.version, kind: rt.kind }] });
    const list = `${message}List`;
    if (opts.model.message(list)) {
      roots.push({
        message: list,
        gvk: [{ group: rt.group, version: rt.version, kind: rt.listKind ?? `${rt.kind}List` }],
      });
    }
  }
  return roots;
}

const OBJECT_META = 'k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta';
const LIST_META = 'k8s.io.apimachinery.pkg.apis.meta.v1.ListMeta';

const hasSchema = (opts: OpenAPIOptions, rt: ResourceType): boolean =>
  rt.openAPISchema !== undefined || kindMessage(opts.model, rt) !== undefined;

/**
 * A kind's definition name: its message's, or for a custom resource
 * upstream's reversed group, version and kind (com.example.stable.v1.CronTab).
 */
export function kindDefinitionName(rt: ResourceType): string {
  if (rt.custom) return `${rt.group.split('.').reverse().join('.')}.${rt.version}.${rt.kind}`;
  return definitionName(`${protoPackage(rt.group, rt.version)}.${rt.kind}`).replace(
    'apiextensions_apiserver',
    'apiextensions-apiserver',
  );
}

/**
 * The definitions of kinds that bring their own schema (custom resources,
 * CRDs): the schema with apiVersion, kind and metadata, and its List.
 */
function withSchemaKinds(
  defs: Record<string, Schema>,
  types: ResourceType[],
  flavor: Flavor,
): Record<string, Schema> {
  const ref = (name: string): Schema => ({ $ref: `${refPrefix(flavor)}${definitionName(name)}` });
  const wrap = (name: string): Schema => (flavor === 'v3' ? { allOf: [ref(name)] } : ref(name));
  for (const rt of types) {
    if (!rt.openAPISchema) continue;
    const name = kindDefinitionName(rt);
    const schema = forFlavor(rt.openAPISchema, flavor) as Schema;
    const typeMeta = {
      apiVersion: {
        type: 'string',
        description: 'APIVersion defines the versioned schema of this representation of an object.',
      },
      kind: {
        type: 'string',
        description: 'Kind is a string value representing the REST resource this object represents.',
      },
    };
    defs[name] = {
      ...schema,
      type: 'object',
      properties: { ...typeMeta, ...((schema.properties as Schema) ?? {}), metadata: wrap(OBJECT_META) },
      'x-kubernetes-group-version-kind': [{ group: rt.group, version: rt.version, kind: rt.kind }],
    };
    defs[`${name}List`] = {
      type: 'object',
      required: ['items'],
      properties: {
        ...typeMeta,
        items: { type: 'array', items: ref(name) },
        metadata: wrap(LIST_META),
      },
      'x-kubernetes-group-version-kind': [
        { group: rt.group, version: rt.version, kind: rt.listKind ?? `${rt.kind}List` },
      ],
    };
  }
  return defs;
}

/**
 * Swagger 2.0 has no `nullable` and no logic junctors in kubectl's reading:
 * upstream drops them (and defaults) from the v2 document, which only
 * describes structure.
 */
function forFlavor(schema: unknown, flavor: Flavor): unknown {
  if (Array.isArray(schema)) return schema.map((s) => forFlavor(s, flavor));
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Schema = {};
  for (const [k, v] of Object.entries(schema)) {
    if (
      flavor === 'v2' &&
      ['nullable', 'allOf', 'anyOf', 'oneOf', 'not', 'default', 'x-kubernetes-validations'].includes(k)
    )
      continue;
    if (k === 'properties' && v && typeof v === 'object') {
      out[k] = Object.fromEntries(Object.entries(v).map(([name, p]) => [name, forFlavor(p, flavor)]));
    } else if (k === 'items' || k === 'additionalProperties' || k === 'not') out[k] = forFlavor(v, flavor);
    else if (k === 'allOf' || k === 'anyOf' || k === 'oneOf') out[k] = forFlavor(v, flavor);
    else out[k] = v;
  }
  return out;
}

export { groupVersion };
