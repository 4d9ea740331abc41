// JSON type checking against the type model, standing in for upstream's
// decoding into Go structs: a string where PodSpec belongs, or 1e308 where
// an int32 belongs, is a 400 before any defaulting or validation code sees
// the object. Explicit nulls decode to Go zero values, which JSON then
// omits, so they are removed here.

import { fieldNamed, type ScalarType, SPECIAL_MESSAGES, type TypeModel } from './model.ts';

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const jsonType = (v: unknown): string =>
  v === null
    ? 'null'
    : Array.isArray(v)
      ? 'array'
      : typeof v === 'object'
        ? 'object'
        : typeof v === 'boolean'
          ? 'bool'
          : typeof v;

const goScalar: Record<ScalarType, string> = {
  string: 'string',
  int32: 'int32',
  int64: 'int64',
  uint32: 'uint32',
  uint64: 'uint64',
  bool: 'bool',
  bytes: '[]uint8',
  double: 'float64',
  float: 'float32',
};

function scalarOk(type: ScalarType, v: unknown): boolean {
  switch (type) {
    case 'string':
      return typeof v === 'string';
    case 'bool':
      return typeof v === 'boolean';
    case 'bytes':
      return typeof v === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(v);
    case 'double':
    case 'float':
      return typeof v === 'number' && Number.isFinite(v);
    case 'int32':
      return Number.isInteger(v) && (v as number) >= -(2 ** 31) && (v as number) < 2 ** 31;
    case 'uint32':
      return Number.isInteger(v) && (v as number) >= 0 && (v as number) < 2 ** 32;
    default:
      return Number.isSafeInteger(v);
  }
}

function specialOk(kind: string, v: unknown): boolean {
  switch (kind) {
    case 'time':
    case 'microtime':
      return typeof v === 'string' && (v === '' || !Number.isNaN(Date.parse(v)));
    case 'quantity':
      return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
    case 'int-or-string':
      return typeof v === 'string' || Number.isSafeInteger(v);
    case 'duration':
      return typeof v === 'string';
    case 'fields':
      return isPlainObject(v);
    case 'string-list':
      return Array.isArray(v) && v.every((s) => typeof s === 'string');
    default:
      return true; // RawExtension: any JSON
  }
}

export class TypeMismatch extends Error {
  readonly path: string;
  constructor(path: string, value: unknown, goType: string) {
    const shown = typeof value === 'number' ? `number ${value}` : jsonType(value);
    super(`json: cannot unmarshal ${shown} into Go struct field ${path} of type ${goType}`);
    this.path = path;
  }
}

const shortName = (proto: string) => {
  const parts = proto.split('.');
  return `${parts.at(-2)}.${parts.at(-1)}`;
};

/** Throws TypeMismatch at the first value of the wrong JSON type; removes nulls in place. */
export function checkTypes(model: TypeModel, messageName: string, value: unknown, root: string): void {
  walk(model, messageName, value, root, true);
}

function walk(model: TypeModel, name: string, value: unknown, path: string, top: boolean): void {
  const special = SPECIAL_MESSAGES[name];
  if (special) {
    if (!specialOk(special, value)) throw new TypeMismatch(path, value, shortName(name));
    return;
  }
  if (!isPlainObject(value)) throw new TypeMismatch(path, value, shortName(name));
  const message = model.message(name);
  if (!message) return;
  for (const [key, child] of Object.entries(value)) {
    if (top && (key === 'apiVersion' || key === 'kind')) {
      if (typeof child !== 'string') throw new TypeMismatch(`${path}.${key}`, child, 'string');
      continue;
    }
    const field = fieldNamed(message, key);
    if (!field) continue; // unknown fields are fieldValidation's business
    const here = `${path}.${key}`;
    if (child === null) {
      delete value[key];
      continue;
    }
    // Empty maps and lists serialize to nothing in upstream's Go types
    // (omitempty), so `annotations: {}` after removing the last key is gone.
    if (
      (field.map && isPlainObject(child) && Object.keys(child).length === 0) ||
      (field.repeated && Array.isArray(child) && child.length === 0)
    ) {
      delete value[key];
      continue;
    }
    if (field.map) {
      if (!isPlainObject(child)) throw new TypeMismatch(here, child, `map[string]${field.map.type}`);
      for (const [k, v] of Object.entries(child)) {
        if (v === null) {
          // Go decodes a null map value to the value type's zero value.
          child[k] = zeroValue(field.map.type);
          continue;
        }
        checkOne(model, field.map.type, field.map.message, v, `${here}.${k}`);
      }
    } else if (field.repeated) {
      if (!Array.isArray(child))
        throw new TypeMismatch(here, child, `[]${field.message ? shortName(field.message) : field.type}`);
      for (const item of child) {
        if (item === null)
          throw new TypeMismatch(here, item, field.message ? shortName(field.message) : field.type);
        checkOne(model, field.type, field.message, item, here);
      }
    } else checkOne(model, field.type, field.message, child, here);
  }
}

function checkOne(model: TypeModel, type: string, msg: string | undefined, v: unknown, at: string): void {
  if (type === 'message' && msg) walk(model, msg, v, at, false);
  else if (!scalarOk(type as ScalarType, v))
    throw new TypeMismatch(at, v, goScalar[type as ScalarType] ?? type);
}

function zeroValue(type: string): unknown {
  if (type === 'message') return {};
  if (type === 'string' || type === 'bytes') return '';
  if (type === 'bool') return false;
  return 0;
}
