// Subresources: status and ephemeralcontainers (the whole object, of which
// a write changes only its part), scale, a namespace's finalize, a pod's
// binding and eviction, a ServiceAccount's token (TokenRequest), and what
// goes on to a kubelet or a pod (log, proxy).

import { ApiError, badRequest, successStatus } from '../../api/errors.ts';
import { isObject, type KubeObject } from '../../api/meta.ts';
import type { ResourceType } from '../../api/registry.ts';
import { isEphemeralContainers } from '../ephemeral.ts';
import { evictPod } from '../eviction.ts';
import { decodeBody, readBody, writeJSON } from '../http.ts';
import { STREAMING_SUBRESOURCES } from '../kubelet-proxy.ts';
import { proxyPath } from '../proxy.ts';
import type { ResourceStorage } from '../rest.ts';
import { answerTokenRequest } from '../token-request.ts';
import { validateWriteOptions } from '../write-options.ts';
import { bindPod } from './binding.ts';
import { OBJECT_TYPES, readObject } from './body.ts';
import type { HandlerContext, RequestScope } from './context.ts';
import { patchObject } from './patch.ts';
import { isDryRun } from './query.ts';
import { respondObject } from './read.ts';
import { serveScale } from './scale.ts';
import { updateObject, writeOptions } from './write.ts';

export async function subresource(
  ctx: HandlerContext,
  s: RequestScope,
  rt: ResourceType,
  storage: ResourceStorage,
): Promise<void> {
  const { req, res, info, query } = s;
  const ns = rt.namespaced ? info.namespace : undefined;
  const sub = info.subresource;
  // Both answer and take the whole object; what a write may change is the subresource's (rest.ts, ephemeral.ts).
  if ((sub === 'status' && rt.status) || isEphemeralContainers(rt, sub) || rt.updateStrategies?.[sub]) {
    if (info.verb === 'get') return respondObject(ctx, s, 200, rt, await storage.get(ns, info.name));
    if (info.verb === 'update') {
      validateWriteOptions('UpdateOptions', query);
      const body = await readObject(ctx, s, rt);
      const r = await updateObject(ctx, storage, ns, info.name, body, writeOptions(ctx, s, rt, sub));
      return respondObject(ctx, s, 200, rt, r.object);
    }
    if (info.verb === 'patch') {
      const r = await patchObject(ctx, s, storage, rt, ns, info.name, sub);
      return respondObject(ctx, s, 200, rt, r.object);
    }
  }
  if (sub === 'scale' && rt.scale) return serveScale(s, rt, storage);
  if (sub === 'finalize' && rt.kind === 'Namespace' && info.verb === 'update') {
    const body = await readObject(ctx, s, rt);
    const finalizers = ((body.spec ?? {}) as { finalizers?: string[] }).finalizers ?? [];
    const r = await storage.guaranteedUpdate(
      undefined,
      info.name,
      (ns) => {
        ns.spec = { ...(ns.spec as object), finalizers };
        return ns;
      },
      {
        dryRun: isDryRun(query),
        subresource: 'finalize',
        admission: s.admission.hooks(rt, 'finalize', isDryRun(query)),
      },
    );
    return respondObject(ctx, s, 200, rt, r.object);
  }
  if (sub === 'binding' && rt.kind === 'Pod' && info.verb === 'create') {
    validateWriteOptions('CreateOptions', query);
    const body = await readObject(ctx, s, { ...rt, kind: 'Binding', group: '', version: 'v1' });
    return bindPod(s, storage, ns, info.name, body, 'binding');
  }
  if (
    sub === 'token' &&
    rt.kind === 'ServiceAccount' &&
    rt.group === '' &&
    info.verb === 'create' &&
    ctx.tokens
  ) {
    validateWriteOptions('CreateOptions', query);
    const body = await readObject(ctx, s, {
      ...rt,
      kind: 'TokenRequest',
      group: 'authentication.k8s.io',
      version: 'v1',
    });
    await s.admission.admitObject({
      operation: 'CREATE',
      group: 'authentication.k8s.io',
      version: 'v1',
      kind: 'TokenRequest',
      resource: 'serviceaccounts',
      subresource: 'token',
      namespace: ns ?? '',
      name: info.name,
      object: body,
      dryRun: isDryRun(query),
    });
    const answer = await answerTokenRequest(
      {
        ...ctx.tokens,
        get: (resource, namespace, name) =>
          ctx.storage('', 'v1', resource)!.get(resource === 'nodes' ? undefined : namespace, name),
        now: ctx.now,
      },
      ns ?? '',
      info.name,
      body,
    );
    return writeJSON(res, 201, answer);
  }
  if (sub === 'eviction' && rt.kind === 'Pod' && info.verb === 'create') {
    validateWriteOptions('CreateOptions', query);
    const body = decodeBody(await readBody(req), req.headers['content-type'], OBJECT_TYPES);
    await s.admission.admitObject({
      operation: 'CREATE',
      group: 'policy',
      version: 'v1',
      kind: 'Eviction',
      resource: 'pods',
      subresource: 'eviction',
      namespace: ns ?? '',
      name: info.name,
      ...(isObject(body) && isObject(body.metadata) ? { object: body as KubeObject } : {}),
      dryRun: isDryRun(query),
    });
    await evictPod(
      { pods: storage, pdbs: ctx.storage('policy', 'v1', 'poddisruptionbudgets')!, now: ctx.now },
      ns ?? '',
      info.name,
      body,
      isDryRun(query),
    );
    return writeJSON(res, 201, successStatus());
  }
  if (rt.kind === 'Pod' && sub === 'log' && info.verb === 'get') {
    return ctx.kubelet.podLog(res, ns ?? '', info.name, query);
  }
  // Streams arrive as upgrades (server.ts hands those to ApiServer.upgrade).
  if (rt.kind === 'Pod' && STREAMING_SUBRESOURCES.has(sub)) throw badRequest('Upgrade request required');
  if ((rt.kind === 'Pod' || rt.kind === 'Service') && rt.group === '' && /^proxy(\/|$)/.test(sub)) {
    const { base, path } = proxyPath(req.url ?? '', rt.plural, info.name);
    const serve = rt.kind === 'Pod' ? ctx.proxy.pod : ctx.proxy.service;
    return serve(req, res, ns ?? '', info.name, base, path, query);
  }
  if (rt.kind === 'Node' && rt.group === '' && /^proxy(\/|$)/.test(sub)) {
    return ctx.kubelet.nodeProxy(req, res, info.name, sub.replace(/^proxy\/?/, ''), query);
  }
  throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
}
