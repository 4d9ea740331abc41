// Writes of a whole object: create (POST) and update (PUT), and what every
// write shares: the write options (dryRun, field manager, the request's
// admission chain) and Service address allocation. PATCH and apply are
// patch.ts.

import { badRequest } from '../../api/errors.ts';
import { update as trackUpdate } from '../../api/managedfields/index.ts';
import { type KubeObject, rfc3339 } from '../../api/meta.ts';
import { kubernetesPatchSchema } from '../../api/patch/index.ts';
import { groupVersion, type ResourceType } from '../../api/registry.ts';
import { kindMessage } from '../../api/schema/openapi.ts';
import {
  ephemeralContainersResetFields,
  ephemeralContainersStrategy,
  isEphemeralContainers,
} from '../ephemeral.ts';
import type { ResourceStorage, WriteOptions } from '../rest.ts';
import { validateWriteOptions } from '../write-options.ts';
import { bindPod } from './binding.ts';
import { checkFields, readObject } from './body.ts';
import type { HandlerContext, RequestScope, ResourceHandler } from './context.ts';
import { isDryRun } from './query.ts';
import { respondObject } from './read.ts';

/** POST of an object (a Binding to the bindings resource binds its pod). */
export const create: ResourceHandler = async (ctx, s, rt, storage, ns) => {
  validateWriteOptions('CreateOptions', s.query);
  const body = await readObject(ctx, s, rt);
  if (rt.group === '' && rt.plural === 'bindings') {
    const pods = ctx.storage('', 'v1', 'pods')!;
    return bindPod(s, pods, ns, body.metadata.name ?? '', body, '');
  }
  checkFields(ctx, s, rt, body);
  let encoded: string | undefined;
  const created = await createObject(ctx, storage, rt, ns, body, {
    ...writeOptions(ctx, s, rt, undefined),
    encoded: (json) => {
      encoded = json;
    },
    // readObject decoded the body for this request alone.
    owned: true,
  });
  return respondObject(ctx, s, 201, rt, created, encoded);
};

/** PUT of an object: 201 when it created one. */
export const update: ResourceHandler = async (ctx, s, rt, storage, ns) => {
  validateWriteOptions('UpdateOptions', s.query);
  const body = await readObject(ctx, s, rt);
  checkFields(ctx, s, rt, body);
  const result = await updateObject(ctx, storage, ns, s.info.name, body, writeOptions(ctx, s, rt, undefined));
  return respondObject(ctx, s, result.created ? 201 : 200, rt, result.object);
};

/** Stores a new object; a Service's ClusterIPs and NodePorts are allocated for it first. */
export async function createObject(
  ctx: HandlerContext,
  storage: ResourceStorage,
  rt: ResourceType,
  ns: string | undefined,
  body: KubeObject,
  opts: WriteOptions,
): Promise<KubeObject> {
  if (rt.group === '' && rt.plural === 'services') {
    const release = ctx.allocator.allocate(body, undefined);
    try {
      return await storage.create(ns, body, opts);
    } finally {
      release();
    }
  }
  return storage.create(ns, body, opts);
}

/** Replaces an object (creating it where the kind allows); a Service's addresses follow its spec. */
export async function updateObject(
  ctx: HandlerContext,
  storage: ResourceStorage,
  ns: string | undefined,
  name: string,
  body: KubeObject,
  opts: WriteOptions,
) {
  const subresource = opts.subresource;
  if (storage.rt.group === '' && storage.rt.plural === 'services' && !subresource) {
    const current = await storage.get(ns, name).catch(() => undefined);
    const release = ctx.allocator.allocate(body, current);
    try {
      return await storage.update(ns, name, body, opts);
    } finally {
      release();
    }
  }
  return storage.update(ns, name, body, opts);
}

/**
 * Runs a write with ClusterIP/NodePort allocation for Services: each
 * attempt of a retried update allocates against the current object, and
 * every reservation is released once the write is done.
 */
export async function withServiceIPs<T>(
  ctx: HandlerContext,
  rt: ResourceType,
  subresource: string | undefined,
  write: (allocate: (next: KubeObject, current: KubeObject | undefined) => KubeObject) => Promise<T>,
): Promise<T> {
  if (!(rt.group === '' && rt.plural === 'services') || subresource) return write((next) => next);
  const releases: Array<() => void> = [];
  try {
    return await write((next, current) => {
      releases.push(ctx.allocator.allocate(next, current));
      return next;
    });
  } finally {
    for (const release of releases) release();
  }
}

/**
 * Which message a kind's fields are typed by, and which fields a write
 * through this endpoint does not own: status for the main resource of a
 * kind with a status subresource, everything but status through /status,
 * everything but spec.ephemeralContainers through pods/ephemeralcontainers.
 */

export function fieldScope(ctx: HandlerContext, rt: ResourceType, subresource: string | undefined) {
  const rootMessage = kindMessage(ctx.model, rt);
  const resetFields = subresource === 'status' ? [['spec']] : rt.status && !subresource ? [['status']] : [];
  return {
    ...(rootMessage ? { rootMessage } : {}),
    model: ctx.model,
    patchSchema: kubernetesPatchSchema,
    resetFields: isEphemeralContainers(rt, subresource)
      ? ephemeralContainersResetFields(ctx.model)
      : (rt.updateStrategies?.[subresource ?? '']?.resetFields ?? resetFields),
    ...(subresource ? { subresource } : {}),
  };
}

/**
 * dryRun plus field-ownership tracking for a create, update or patch. The
 * manager is the fieldManager parameter or, as upstream, the client's
 * User-Agent up to its first '/'.
 */
export function writeOptions(
  ctx: HandlerContext,
  s: RequestScope,
  rt: ResourceType,
  subresource: string | undefined,
): WriteOptions {
  const { req, query } = s;
  const manager =
    query.get('fieldManager') ?? (req.headers['user-agent'] ?? 'unknown').split('/')[0]!.slice(0, 128);
  if (manager.length > 128) throw badRequest('fieldManager: Too long: may not be more than 128 bytes');
  const scope = fieldScope(ctx, rt, subresource);
  const dryRun = isDryRun(query);
  return {
    dryRun,
    admission: s.admission.hooks(rt, subresource, dryRun),
    ...(subresource ? { subresource } : {}),
    ...(isEphemeralContainers(rt, subresource) ? { strategy: ephemeralContainersStrategy } : {}),
    ...(subresource && rt.updateStrategies?.[subresource]
      ? { strategy: rt.updateStrategies[subresource] }
      : {}),
    user: s.user,
    trackFields: (live, next) => {
      const managedFields = trackUpdate({
        live,
        updated: next,
        manager,
        apiVersion: groupVersion(rt),
        now: rfc3339(new Date()),
        ...scope,
      });
      if (managedFields.length > 0) next.metadata.managedFields = managedFields;
      else delete next.metadata.managedFields;
    },
  };
}
