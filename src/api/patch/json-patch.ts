// RFC 6902 JSON Patch, with the behaviour of evanphx/json-patch, the library
// the Kubernetes apiserver applies application/json-patch+json with:
//
// - negative array indices count from the end, an upstream extension (-1 is
//   the last element; for add it is the end of the array, so it appends);
// - "test" of a missing object member against null succeeds, because
//   upstream cannot tell a missing member from a null one;
// - replace and remove of a missing member are errors, add is not.
//
// The whole patch is validated before any operation runs, so a malformed
// operation late in the list fails the request even if an earlier one would
// have failed too: the caller gets the more useful "bad request" answer.

import { PatchError } from './errors.ts';
import { cloneJson, describe, hasOwn, isObject, type JsonObject, jsonEqual, setOwn } from './json.ts';

export { PatchError } from './errors.ts';

type Operation =
  | { op: 'add' | 'replace' | 'test'; path: string[]; raw: string; value: unknown }
  | { op: 'remove'; path: string[]; raw: string }
  | { op: 'move' | 'copy'; path: string[]; raw: string; from: string[]; rawFrom: string };

/**
 * Applies an RFC 6902 patch (already parsed from JSON) to a document and
 * returns the result. Neither argument is modified, and the result shares
 * no objects with them.
 */
export function applyJsonPatch(doc: unknown, ops: unknown): unknown {
  const parsed = parseOperations(ops);
  // The document is cloned once and then edited in place; the clone is ours.
  let root = cloneJson(doc);
  for (const [i, op] of parsed.entries()) {
    try {
      root = applyOperation(root, op);
    } catch (err) {
      if (err instanceof PatchError)
        throw new PatchError(`operation ${i} (${op.op} ${op.raw}): ${err.message}`);
      throw err;
    }
  }
  return root;
}

/** Decodes a JSON Pointer (RFC 6901) into its reference tokens. */
export function parseJsonPointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new PatchError(`JSON pointer ${describe(pointer)} must start with "/"`);
  return pointer
    .slice(1)
    .split('/')
    .map((token) => {
      if (/~(?![01])/.test(token))
        throw new PatchError(`JSON pointer ${describe(pointer)} has an invalid ~ escape`);
      // ~1 first: "~01" is the literal "~1", not "/".
      return token.replaceAll('~1', '/').replaceAll('~0', '~');
    });
}

function parseOperations(ops: unknown): Operation[] {
  if (!Array.isArray(ops)) throw new PatchError('a JSON patch must be an array of operations');
  return ops.map((raw, i): Operation => {
    if (!isObject(raw)) throw new PatchError(`operation ${i} is not an object`);
    const op = raw['op'];
    const path = pointerField(raw, 'path', i);
    switch (op) {
      case 'add':
      case 'replace':
      case 'test':
        if (!hasOwn(raw, 'value')) throw new PatchError(`operation ${i} (${op}) is missing "value"`);
        return { op, path: parseJsonPointer(path), raw: path, value: raw['value'] };
      case 'remove':
        return { op, path: parseJsonPointer(path), raw: path };
      case 'move':
      case 'copy': {
        const from = pointerField(raw, 'from', i);
        return { op, path: parseJsonPointer(path), raw: path, from: parseJsonPointer(from), rawFrom: from };
      }
      default:
        throw new PatchError(`operation ${i} has unknown op ${describe(op)}`);
    }
  });
}

function pointerField(raw: JsonObject, field: 'path' | 'from', i: number): string {
  const value = raw[field];
  if (typeof value !== 'string') {
    throw new PatchError(
      hasOwn(raw, field)
        ? `operation ${i} has a non-string "${field}"`
        : `operation ${i} is missing "${field}"`,
    );
  }
  return value;
}

function applyOperation(root: unknown, op: Operation): unknown {
  switch (op.op) {
    case 'add':
      return add(root, op.path, cloneJson(op.value));
    case 'remove':
      if (op.path.length === 0) throw new PatchError('cannot remove the whole document');
      remove(root, op.path);
      return root;
    case 'replace': {
      const value = cloneJson(op.value);
      if (op.path.length === 0) return value;
      const { parent, key } = locate(root, op.path);
      if (Array.isArray(parent)) parent[existingIndex(parent, key)] = value;
      else if (hasOwn(parent, key)) setOwn(parent, key, value);
      else throw new PatchError(`member ${describe(key)} does not exist`);
      return root;
    }
    case 'test': {
      const actual = op.path.length === 0 ? root : testTarget(root, op.path);
      if (!jsonEqual(actual, op.value)) throw new PatchError(`test failed: value is ${describe(actual)}`);
      return root;
    }
    case 'move': {
      if (op.from.length === 0) throw new PatchError('cannot move the whole document');
      if (isPrefix(op.from, op.path) && op.from.length < op.path.length) {
        throw new PatchError(`cannot move ${op.rawFrom} into one of its own children`);
      }
      const value = get(root, op.from);
      remove(root, op.from);
      return add(root, op.path, value);
    }
    case 'copy':
      return add(root, op.path, cloneJson(get(root, op.from)));
  }
}

function add(root: unknown, path: string[], value: unknown): unknown {
  if (path.length === 0) return value;
  const { parent, key } = locate(root, path);
  if (Array.isArray(parent)) {
    if (key === '-') {
      parent.push(value);
    } else {
      // One past the end is a valid insertion point, so the range is len+1 wide.
      parent.splice(resolveIndex(key, parent.length + 1), 0, value);
    }
  } else {
    setOwn(parent, key, value);
  }
  return root;
}

function remove(root: unknown, path: string[]): void {
  const { parent, key } = locate(root, path);
  if (Array.isArray(parent)) {
    parent.splice(existingIndex(parent, key), 1);
  } else {
    if (!hasOwn(parent, key)) throw new PatchError(`member ${describe(key)} does not exist`);
    delete parent[key];
  }
}

function get(root: unknown, path: string[]): unknown {
  if (path.length === 0) return root;
  const { parent, key } = locate(root, path);
  if (Array.isArray(parent)) return parent[existingIndex(parent, key)];
  if (!hasOwn(parent, key)) throw new PatchError(`member ${describe(key)} does not exist`);
  return parent[key];
}

function testTarget(root: unknown, path: string[]): unknown {
  const { parent, key } = locate(root, path);
  if (Array.isArray(parent)) return parent[existingIndex(parent, key)];
  // Upstream reads a missing member as null (see the header).
  return hasOwn(parent, key) ? parent[key] : null;
}

/** Walks to the container holding the last token of `path`. */
function locate(root: unknown, path: string[]): { parent: JsonObject | unknown[]; key: string } {
  let node = root;
  for (const token of path.slice(0, -1)) {
    if (Array.isArray(node)) {
      node = node[existingIndex(node, token)];
    } else if (isObject(node)) {
      if (!hasOwn(node, token)) throw new PatchError(`path member ${describe(token)} does not exist`);
      node = node[token];
    } else {
      throw new PatchError(`path member ${describe(token)} is inside a ${describe(node)}, not a container`);
    }
  }
  if (!Array.isArray(node) && !isObject(node)) {
    throw new PatchError(`the parent of ${describe(path.at(-1))} is ${describe(node)}, not a container`);
  }
  return { parent: node, key: path.at(-1)! };
}

function existingIndex(array: unknown[], token: string): number {
  return resolveIndex(token, array.length);
}

/** An index into a range of `size` slots; negative indices count from the end. */
function resolveIndex(token: string, size: number): number {
  if (!/^-?\d+$/.test(token)) throw new PatchError(`${describe(token)} is not an array index`);
  const n = Number(token);
  const index = n < 0 ? n + size : n;
  if (index < 0 || index >= size) throw new PatchError(`array index ${token} is out of range`);
  return index;
}

function isPrefix(prefix: string[], path: string[]): boolean {
  return prefix.length <= path.length && prefix.every((t, i) => t === path[i]);
}
