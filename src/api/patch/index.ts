// The three patch formats the apiserver accepts on PATCH, keyed by their
// content types: application/json-patch+json, application/merge-patch+json
// and application/strategic-merge-patch+json.

export { PatchError } from './errors.ts';
export { applyJsonPatch, parseJsonPointer } from './json-patch.ts';
export { createSuffixPatchSchema, kubernetesPatchSchema } from './kubernetes-schema.ts';
export { applyMergePatch, createMergePatch } from './merge-patch.ts';
export {
  applyStrategicMergePatch,
  createStrategicMergePatch,
  type PatchFieldMeta,
  type PatchSchema,
} from './strategic.ts';
