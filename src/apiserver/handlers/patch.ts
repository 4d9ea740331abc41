// PATCH: the four patch types, and server-side apply through the field
// manager (api/managedfields).

import { ApiError, badRequest } from '../../api/errors.ts';
import { apply as applyFields } from '../../api/managedfields/index.ts';
import { isObject, type KubeObject, rfc3339 } from '../../api/meta.ts';
import {
  applyJsonPatch,
  applyMergePatch,
  applyStrategicMergePatch,
  kubernetesPatchSchema,
  PatchError,
} from '../../api/patch/index.ts';
import { groupVersion, type ResourceType } from '../../api/registry.ts';
import { decodeBody, mediaType, readBody } from '../http.ts';
import { isTrue } from '../request-info.ts';
import type { ResourceStorage } from '../rest.ts';
import { validateWriteOptions } from '../write-options.ts';
import { checkFields, checkObject, checkTypes, PATCH_TYPES, STRATEGIC_MERGE_PATCH } from './body.ts';
import type { HandlerContext, RequestScope } from './context.ts';
import { createObject, fieldScope, withServiceIPs, writeOptions } from './write.ts';

/**
 * A PATCH of an object (or of its status or ephemeralcontainers): JSON
 * patch, merge patch, strategic merge patch, or server-side apply, each
 * applied to the current object on every attempt of the update.
 */
export async function patchObject(
  ctx: HandlerContext,
  s: RequestScope,
  storage: ResourceStorage,
  rt: ResourceType,
  ns: string | undefined,
  name: string,
  subresource: string | undefined,
) {
  const { req, query } = s;
  const type = mediaType(req.headers['content-type']);
  // Custom resources have no strategic merge metadata: upstream refuses the type for them.
  const accepted = rt.custom ? PATCH_TYPES.filter((t) => t !== STRATEGIC_MERGE_PATCH) : PATCH_TYPES;
  if (!accepted.includes(type)) {
    throw new ApiError(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`,
    );
  }
  validateWriteOptions('PatchOptions', query, type);
  const raw = await readBody(req);
  const patch = decodeBody(raw, type.endsWith('yaml') ? 'application/yaml' : 'application/json', [
    'application/json',
    'application/yaml',
  ]);
  const opts = writeOptions(ctx, s, rt, subresource);
  if (type === 'application/apply-patch+yaml') {
    // Server-side apply: the field manager merges the applied
    // configuration into the live object, removes what this manager
    // stopped applying, and refuses to take fields other managers own
    // (409) unless force=true.
    const manager = query.get('fieldManager');
    if (!manager) {
      throw badRequest('PATCH, application/apply-patch+yaml: fieldManager is required for apply requests');
    }
    const force = isTrue(query.get('force'));
    const applied = checkObject(patch, rt);
    checkTypes(ctx, rt, applied);
    checkFields(ctx, s, rt, applied);
    if (applied.metadata.name && applied.metadata.name !== name) {
      throw badRequest(
        `the name of the object (${applied.metadata.name}) does not match the name on the URL (${name})`,
      );
    }
    const named = { ...applied, metadata: { ...applied.metadata, name } };
    const applyTo = (live: KubeObject | undefined): KubeObject =>
      applyFields({
        live,
        applied: named,
        manager,
        force,
        apiVersion: groupVersion(rt),
        now: rfc3339(new Date()),
        ...fieldScope(ctx, rt, subresource),
      }).object as KubeObject;
    const { trackFields: _untracked, ...applyOpts } = opts;
    const exists = await storage.get(ns, name).then(
      () => true,
      (err) => {
        if (err instanceof ApiError && err.code === 404) return false;
        throw err;
      },
    );
    if (!exists && !subresource) {
      const object = await createObject(ctx, storage, rt, ns, applyTo(undefined), applyOpts);
      return { object, created: true };
    }
    return withServiceIPs(ctx, rt, subresource, (allocate) =>
      storage.guaranteedUpdate(ns, name, (current) => allocate(applyTo(current), current), applyOpts),
    );
  }
  const precondition =
    isObject(patch) && isObject(patch.metadata)
      ? (patch.metadata.resourceVersion as string | undefined)
      : undefined;
  return withServiceIPs(ctx, rt, subresource, (allocate) =>
    storage.guaranteedUpdate(
      ns,
      name,
      (current) => {
        let next: unknown;
        try {
          if (type === 'application/json-patch+json') next = applyJsonPatch(current, patch);
          else if (type === 'application/merge-patch+json') next = applyMergePatch(current, patch);
          else next = strategic(current, patch, rt);
        } catch (err) {
          if (err instanceof PatchError) {
            throw new ApiError(422, 'Invalid', err.message);
          }
          if (err instanceof ApiError) throw err;
          throw badRequest(String((err as Error).message));
        }
        if (!isObject(next) || !isObject(next.metadata)) throw badRequest('the patch removed metadata');
        checkTypes(ctx, rt, next);
        checkFields(ctx, s, rt, next);
        return allocate(next as KubeObject, current);
      },
      { ...opts, ...(precondition ? { resourceVersion: precondition } : {}) },
    ),
  );
}

function strategic(current: KubeObject, patch: unknown, _rt: ResourceType): KubeObject {
  try {
    return applyStrategicMergePatch(current, patch, kubernetesPatchSchema) as KubeObject;
  } catch (err) {
    if (err instanceof PatchError) throw new ApiError(422, 'Invalid', err.message);
    throw err;
  }
}
