// RFC 7386 JSON Merge Patch (application/merge-patch+json): objects merge
// member by member, null deletes a member, anything else (arrays included)
// replaces. It is the only patch type Kubernetes accepts for custom
// resources besides JSON Patch and apply.

import { cloneJson, hasOwn, isObject, type JsonObject, jsonEqual, setOwn } from './json.ts';

/**
 * Applies a merge patch (already parsed from JSON) to a document. Neither
 * argument is modified, and the result shares no objects with them.
 */
export function applyMergePatch(doc: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return cloneJson(patch);
  const out: JsonObject = isObject(doc) ? cloneJson(doc) : {};
  mergeInto(out, patch);
  return out;
}

function mergeInto(target: JsonObject, patch: JsonObject): void {
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete target[key];
    } else if (isObject(value)) {
      const current = hasOwn(target, key) ? target[key] : undefined;
      // Merging into a fresh object drops nulls nested in the patch value,
      // as the RFC's recursive definition does.
      const next: JsonObject = isObject(current) ? current : {};
      mergeInto(next, value);
      setOwn(target, key, next);
    } else {
      setOwn(target, key, cloneJson(value));
    }
  }
}

/**
 * Returns a merge patch that turns `original` into `modified`. A merge patch
 * cannot set a member to null (null means delete), so a null in `modified`
 * comes out as a deletion.
 */
export function createMergePatch(original: unknown, modified: unknown): unknown {
  if (!isObject(original) || !isObject(modified)) return cloneJson(modified);
  return diffObjects(original, modified);
}

function diffObjects(original: JsonObject, modified: JsonObject): JsonObject {
  const patch: JsonObject = {};
  for (const key of Object.keys(original)) {
    if (!hasOwn(modified, key)) setOwn(patch, key, null);
  }
  for (const [key, value] of Object.entries(modified)) {
    if (!hasOwn(original, key)) {
      setOwn(patch, key, cloneJson(value));
      continue;
    }
    const before = original[key];
    if (isObject(before) && isObject(value)) {
      const sub = diffObjects(before, value);
      if (Object.keys(sub).length > 0) setOwn(patch, key, sub);
    } else if (!jsonEqual(before, value)) {
      setOwn(patch, key, cloneJson(value));
    }
  }
  return patch;
}
