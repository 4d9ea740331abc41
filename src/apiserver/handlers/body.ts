// A request's object: decoded from its body, its envelope (apiVersion, kind,
// metadata) and JSON types checked against the kind, and its unknown fields
// handled as fieldValidation asks.

import { badRequest } from '../../api/errors.ts';
import { isObject, type KubeObject } from '../../api/meta.ts';
import { groupVersion, type ResourceType } from '../../api/registry.ts';
import { kindMessage } from '../../api/schema/openapi.ts';
import { checkTypes as checkSchemaTypes, TypeMismatch } from '../../api/schema/type-check.ts';
import { unknownFields } from '../../api/schema/unknown-fields.ts';
import { decodeBody, readBody } from '../http.ts';
import type { HandlerContext, RequestScope } from './context.ts';

/** The media types an object body may come in. */
export const OBJECT_TYPES = ['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf'];
export const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json';
/** The media types of a PATCH body. */
export const PATCH_TYPES = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
  'application/apply-patch+yaml',
];

/** The request's body as an object of kind `rt`, kept on the audit record. */
export async function readObject(
  ctx: HandlerContext,
  s: RequestScope,
  rt: ResourceType,
): Promise<KubeObject> {
  const { req } = s;
  const body = decodeBody(await readBody(req), req.headers['content-type'], OBJECT_TYPES);
  const obj = checkObject(body, rt);
  checkTypes(ctx, rt, obj);
  s.audit?.requestObject(obj);
  return obj;
}

/** Validates the envelope of a body: an object of the right apiVersion and kind. */
export function checkObject(body: unknown, rt: ResourceType): KubeObject {
  if (!isObject(body)) throw badRequest('the body of the request must be a JSON or YAML object');
  const obj = body as KubeObject;
  const gv = groupVersion(rt);
  if (obj.apiVersion !== undefined && obj.apiVersion !== gv) {
    throw badRequest(
      `the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${gv})`,
    );
  }
  if (obj.kind !== undefined && obj.kind !== rt.kind) {
    throw badRequest(
      `the kind in the data (${String(obj.kind)}) does not match the expected kind (${rt.kind})`,
    );
  }
  if (obj.metadata === undefined || obj.metadata === null) obj.metadata = {};
  if (!isObject(obj.metadata)) throw badRequest('metadata must be an object');
  // The body was decoded for this request alone: no copy needed.
  return obj;
}

/** 400 for a body whose JSON types do not fit the kind (upstream: Go decoding errors). */
export function checkTypes(ctx: HandlerContext, rt: ResourceType, obj: unknown): void {
  const message = kindMessage(ctx.model, rt);
  if (!message || rt.custom) return;
  try {
    checkSchemaTypes(ctx.model, message, obj, rt.kind);
  } catch (err) {
    if (err instanceof TypeMismatch) {
      throw badRequest(
        `${rt.kind} in version "${rt.version}" cannot be handled as a ${rt.kind}: ${err.message}`,
      );
    }
    throw err;
  }
}

/**
 * fieldValidation (Strict, Warn, Ignore; Warn by default as upstream):
 * unknown fields are removed from built-in kinds in every mode, reported
 * as Warning headers with Warn, and refused with 400 under Strict.
 */
export function checkFields(ctx: HandlerContext, s: RequestScope, rt: ResourceType, obj: unknown): void {
  const mode = s.query.get('fieldValidation') ?? 'Warn';
  if (!['Strict', 'Warn', 'Ignore'].includes(mode)) {
    throw badRequest(
      `fieldValidation: Unsupported value: "${mode}": supported values: "Ignore", "Strict", "Warn"`,
    );
  }
  const unknown = unknownFieldsOf(ctx, rt, obj);
  if (unknown.length === 0 || mode === 'Ignore') return;
  if (mode === 'Strict') {
    throw badRequest(`strict decoding error: ${unknown.map((f) => `unknown field "${f}"`).join(', ')}`);
  }
  for (const f of unknown) s.warn(`unknown field "${f}"`);
}

/**
 * The unknown fields of a request's object, removed from it: by the kind's
 * own pruning (custom resources, by their structural schema) or by the type
 * model (built-in kinds).
 */
function unknownFieldsOf(ctx: HandlerContext, rt: ResourceType, obj: unknown): string[] {
  if (rt.prune) return isObject(obj) ? rt.prune(obj as KubeObject) : [];
  const message = kindMessage(ctx.model, rt);
  if (!message || rt.custom) return [];
  return unknownFields(ctx.model, message, obj, true);
}
