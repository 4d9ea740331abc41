// DELETE of an object (a namespace is only marked, as upstream) and of a
// collection.

import { badRequest, conflict, forbidden, successStatus } from '../../api/errors.ts';
import { isObject } from '../../api/meta.ts';
import type { ResourceType } from '../../api/registry.ts';
import { decodeBody, readBody, writeJSON } from '../http.ts';
import { isTrue } from '../request-info.ts';
import type { DeleteOptions, ResourceStorage } from '../rest.ts';
import { validateDeleteOptions } from '../write-options.ts';
import { OBJECT_TYPES } from './body.ts';
import type { RequestScope, ResourceHandler } from './context.ts';
import { listQuery } from './query.ts';
import { respondObject } from './read.ts';

export const deleteObject: ResourceHandler = async (ctx, s, rt, storage, ns) => {
  const { res, info } = s;
  const opts = await deleteOptions(s, rt);
  const result = await deleteOne(storage, ns, info.name, opts);
  if (result.deleted && !returnsObjectOnDelete(rt)) {
    return writeJSON(
      res,
      200,
      successStatus({
        name: info.name,
        group: rt.group,
        kind: rt.plural,
        uid: result.object.metadata.uid ?? '',
      }),
    );
  }
  return respondObject(ctx, s, result.deleted ? 200 : 202, rt, result.object);
};

export const deleteCollection: ResourceHandler = async (_ctx, s, rt, storage, ns) => {
  const opts = await deleteOptions(s, rt);
  const list = await storage.deleteCollection(ns, listQuery(s.query), opts);
  return writeJSON(s.res, 200, list);
};

// Upstream returns the deleted object (not a Status) for kinds whose delete
// strategy says so; kubectl accepts both.
function returnsObjectOnDelete(rt: ResourceType): boolean {
  return rt.group === '' && (rt.plural === 'pods' || rt.plural === 'namespaces');
}

async function deleteOne(
  storage: ResourceStorage,
  ns: string | undefined,
  name: string,
  opts: DeleteOptions,
) {
  if (storage.rt.group === '' && storage.rt.plural === 'namespaces')
    return deleteNamespace(storage, name, opts);
  return storage.delete(ns, name, opts);
}

// As upstream's namespace REST Delete (pkg/registry/core/namespace/storage):
// the first DELETE only marks the namespace (deletionTimestamp, phase
// Terminating), even without spec.finalizers, so its content is always
// removed first. The namespace controller empties it and removes the
// "kubernetes" finalizer through /finalize, which completes the deletion;
// a DELETE of a marked namespace whose spec.finalizers are empty deletes it.
async function deleteNamespace(storage: ResourceStorage, name: string, opts: DeleteOptions) {
  if (['default', 'kube-system', 'kube-public'].includes(name)) {
    throw forbidden(`namespaces "${name}" is forbidden: this namespace may not be deleted`);
  }
  const current = await storage.get(undefined, name);
  const specFinalizers = ((current.spec ?? {}) as { finalizers?: string[] }).finalizers ?? [];
  if (current.metadata.deletionTimestamp) {
    if (specFinalizers.length === 0) return storage.delete(undefined, name, opts);
    return { object: current, deleted: false };
  }
  if (opts.admission) {
    await opts.admission.admit('DELETE', undefined, current);
    await opts.admission.validate('DELETE', undefined, current);
  }
  const uid = opts.preconditions?.uid;
  if (uid && uid !== current.metadata.uid) {
    throw conflict(
      { group: '', resource: 'namespaces' },
      name,
      `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${current.metadata.uid}`,
    );
  }
  const rv = opts.preconditions?.resourceVersion;
  const result = await storage.guaranteedUpdate(
    undefined,
    name,
    (ns) => {
      ns.status = { ...(ns.status as object), phase: 'Terminating' };
      // The propagation policy becomes the orphan / foregroundDeletion
      // finalizer the garbage collector acts on, as for other objects.
      const finalizers = new Set(ns.metadata.finalizers ?? []);
      const policy = opts.propagationPolicy ?? (opts.orphanDependents ? 'Orphan' : undefined);
      if (policy === 'Orphan') {
        finalizers.add('orphan');
        finalizers.delete('foregroundDeletion');
      } else if (policy === 'Foreground') {
        finalizers.add('foregroundDeletion');
        finalizers.delete('orphan');
      }
      if (finalizers.size > 0) ns.metadata.finalizers = [...finalizers];
      else delete ns.metadata.finalizers;
      return ns;
    },
    {
      subresource: 'status',
      markDeleted: true,
      ...(opts.dryRun ? { dryRun: true } : {}),
      ...(rv ? { resourceVersion: rv } : {}),
    },
  );
  return { object: result.object, deleted: false };
}

/** DeleteOptions from the body and the query, as upstream merges them, with the request's admission chain. */
async function deleteOptions(s: RequestScope, rt: ResourceType): Promise<DeleteOptions> {
  const { req, query } = s;
  const opts: DeleteOptions = {};
  const raw = await readBody(req);
  if (raw.length > 0 && raw.toString().trim() !== '') {
    const body = decodeBody(raw, req.headers['content-type'] ?? 'application/json', OBJECT_TYPES);
    if (isObject(body)) Object.assign(opts, body);
  }
  const grace = query.get('gracePeriodSeconds');
  if (grace !== null) opts.gracePeriodSeconds = Number(grace);
  const policy = query.get('propagationPolicy');
  if (policy) opts.propagationPolicy = policy as DeleteOptions['propagationPolicy'];
  if (query.get('orphanDependents') !== null) opts.orphanDependents = isTrue(query.get('orphanDependents'));
  const bodyDryRun = (opts as { dryRun?: unknown }).dryRun;
  const dryRun = [...query.getAll('dryRun'), ...(Array.isArray(bodyDryRun) ? bodyDryRun : [])];
  validateDeleteOptions({ ...opts, dryRun });
  opts.dryRun = dryRun.length > 0;
  if (opts.gracePeriodSeconds !== undefined && !Number.isFinite(opts.gracePeriodSeconds)) {
    throw badRequest(`invalid gracePeriodSeconds: ${grace}`);
  }
  // Negative values will be treated as the value `1s` on the delete path (rest.BeforeDelete).
  if (opts.gracePeriodSeconds !== undefined && opts.gracePeriodSeconds < 0) opts.gracePeriodSeconds = 1;
  // Only what the client sent may be in the body; the chain is ours.
  delete opts.admission;
  opts.admission = s.admission.hooks(rt, undefined, opts.dryRun);
  return opts;
}
