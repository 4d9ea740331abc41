// Routing: which handler serves a request, from its RequestInfo
// (request-info.ts) and the resource registry. Each handler reads or writes
// through the resource's REST storage (rest.ts): the registry strategy over
// the store, with the request's admission chain on every write.

import { ApiError, methodNotAllowed, methodNotRouted } from '../../api/errors.ts';
import { isReview } from '../../api/resources/auth.ts';
import { METRICS_GROUP } from '../../api/resources/metrics.ts';
import { isRoutedMethod } from '../request-info.ts';
import type { HandlerContext, RequestScope } from './context.ts';
import { deleteCollection, deleteObject } from './delete.ts';
import { nonResource } from './non-resource.ts';
import { patchObject } from './patch.ts';
import { checkAcceptable } from './query.ts';
import { getObject, listObjects, respondObject } from './read.ts';
import { resourceMetrics } from './resource-metrics.ts';
import { review } from './reviews.ts';
import { subresource } from './subresources.ts';
import { watch } from './watch.ts';
import { create, update } from './write.ts';

/**
 * Serves an authorized request: a non-resource path, or a resource's verb
 * or subresource, each in its handler. Paths and verbs no resource serves
 * are 404 and 405, as upstream's mux.
 */
export async function route(ctx: HandlerContext, s: RequestScope): Promise<void> {
  const { req, info } = s;
  const path = info.path.replace(/\/+$/, '') || '/';
  const accept = req.headers.accept;
  if (!info.isResourceRequest) {
    if (!isRoutedMethod(info, req.method ?? 'GET')) throw methodNotRouted();
    return nonResource(ctx, s, path);
  }
  const rt = ctx.registry.get(info.group, info.version, info.resource);
  if (!rt) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
  if (rt.namespaced && info.namespace === undefined && info.name !== '' && info.resource !== 'namespaces') {
    throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
  }
  if (!rt.namespaced && info.namespace !== undefined) {
    throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
  }
  if (!isRoutedMethod(info, req.method ?? 'GET')) throw methodNotRouted();
  // A kind that serves only some verbs has no route for the others.
  if (rt.verbs && !info.subresource && !rt.verbs.includes(info.verb)) throw methodNotRouted();
  if (rt.warning) s.warn(rt.warning);
  if (rt.terminating && info.verb === 'create') {
    throw new ApiError(
      405,
      'MethodNotAllowed',
      'create not allowed while custom resource definition is terminating',
    );
  }
  if (isReview(rt)) return review(ctx, s, rt);
  if (rt.group === METRICS_GROUP && !rt.custom) return resourceMetrics(ctx, s, rt);
  const storage = ctx.storage(info.group, info.version, info.resource)!;
  // A proxied response is the backend's: no content negotiation for it.
  if (!/^proxy(\/|$)/.test(info.subresource)) checkAcceptable(accept);

  if (info.subresource) return subresource(ctx, s, rt, storage);

  const ns = rt.namespaced ? info.namespace : undefined;
  switch (info.verb) {
    case 'get':
      return getObject(ctx, s, rt, storage, ns);
    case 'list':
      return listObjects(ctx, s, rt, storage, ns);
    case 'watch':
      return watch(ctx, s, rt, storage, ns);
    case 'create':
      return create(ctx, s, rt, storage, ns);
    case 'update':
      return update(ctx, s, rt, storage, ns);
    case 'patch': {
      const result = await patchObject(ctx, s, storage, rt, ns, info.name, undefined);
      return respondObject(ctx, s, result.created ? 201 : 200, rt, result.object);
    }
    case 'delete':
      return deleteObject(ctx, s, rt, storage, ns);
    case 'deletecollection':
      return deleteCollection(ctx, s, rt, storage, ns);
    default:
      throw methodNotAllowed(req.method ?? '', rt.kind);
  }
}
