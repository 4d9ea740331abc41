// Reads: get and list of a resource, and how an object is written back
// (as itself, or as a Table for kubectl). Watch is watch.ts.

import type { KubeObject } from '../../api/meta.ts';
import type { ResourceType } from '../../api/registry.ts';
import { writeJSON } from '../http.ts';
import { toTable, wantsTable } from '../tables.ts';
import type { HandlerContext, RequestScope, ResourceHandler } from './context.ts';
import { includeObject, listQuery } from './query.ts';

export const getObject: ResourceHandler = async (ctx, s, rt, storage, ns) => {
  const obj = await storage.get(ns, s.info.name, s.query.get('resourceVersion') ?? undefined);
  return respondObject(ctx, s, 200, rt, obj);
};

export const listObjects: ResourceHandler = async (ctx, s, rt, storage, ns) => {
  const { res, query } = s;
  const list = await storage.list(ns, listQuery(query));
  if (wantsTable(s.req.headers.accept)) {
    return writeJSON(
      res,
      200,
      toTable(rt, list.items, list.metadata, { include: includeObject(query), now: ctx.now() }),
    );
  }
  return writeJSON(res, 200, list);
};

/**
 * One object as the response: the object itself, or a Table of it when the
 * client asks for one (kubectl get). `encoded`, when given, is the object's
 * JSON already made by the registry.
 */
export async function respondObject(
  ctx: HandlerContext,
  s: RequestScope,
  code: number,
  rt: ResourceType,
  obj: KubeObject,
  encoded?: string,
): Promise<void> {
  const { res, query } = s;
  if (wantsTable(s.req.headers.accept)) {
    return writeJSON(
      res,
      code,
      toTable(
        rt,
        [obj],
        { resourceVersion: obj.metadata.resourceVersion ?? '' },
        { include: includeObject(query), now: ctx.now() },
      ),
    );
  }
  writeJSON(res, code, obj, undefined, encoded);
}
