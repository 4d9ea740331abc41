// Non-resource paths: /version, /healthz, /livez and /readyz, /metrics,
// OpenAPI v2 and v3, discovery (/api, /apis, each group and version), and /.

import { createHash } from 'node:crypto';
import { ApiError } from '../../api/errors.ts';
import { kubernetesPatchSchema } from '../../api/patch/index.ts';
import { openAPIV2Document, openAPIV3Document, openAPIV3Index } from '../../api/schema/openapi.ts';
import {
  OPENAPI_V2_PROTOBUF_CONTENT_TYPE,
  openAPIV2ProtobufFor,
  prefersOpenAPIV2Protobuf,
} from '../../api/schema/openapi-v2-proto.ts';
import { writeMetrics } from '../../metrics/prometheus.ts';
import {
  aggregatedContentType,
  aggregatedDiscovery,
  aggregatedVersion,
  apiGroup,
  apiGroupList,
  apiResourceList,
  apiVersions,
} from '../discovery.ts';
import { writeJSON } from '../http.ts';
import { serveProfile } from '../profiling.ts';
import type { HandlerContext, RequestScope } from './context.ts';

/** The paths that are not resources: version, health, OpenAPI, discovery, and the root's list. */
export async function nonResource(ctx: HandlerContext, s: RequestScope, path: string): Promise<void> {
  const { res, info } = s;
  const accept = s.req.headers.accept;
  if (path === '/version') return writeJSON(res, 200, ctx.version);
  if (['/healthz', '/livez', '/readyz'].includes(path)) {
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('ok');
    return;
  }
  if (path === '/metrics' && ctx.metrics) return writeMetrics(ctx.metrics, res);
  if (ctx.profiling && path.startsWith('/debug/pprof/') && (await serveProfile(path, s.query, res))) return;
  if (path === '/openapi/v2') {
    const doc = openapiDoc(ctx, 'v2', () => openAPIV2Document(openapiOptions(ctx)))!;
    // client-go (kubectl apply, diff, explain) asks for the gnostic
    // protobuf form and cannot read JSON.
    if (prefersOpenAPIV2Protobuf(accept)) {
      const pb = openAPIV2ProtobufFor(doc);
      res.writeHead(200, {
        'Content-Type': OPENAPI_V2_PROTOBUF_CONTENT_TYPE,
        ETag: `"${pb.hash}"`,
        Vary: 'Accept',
      });
      res.end(pb.body);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', ETag: `"${doc.hash}"`, Vary: 'Accept' });
    res.end(doc.body);
    return;
  }
  if (path === '/openapi/v3') {
    const index = openAPIV3Index(ctx.registry, (gv) => {
      const [prefix, ...rest] = gv.split('/');
      const [group, version] = prefix === 'api' ? ['', rest[0] ?? ''] : [rest[0] ?? '', rest[1] ?? ''];
      return openapiDoc(ctx, gv, () => openAPIV3Document(openapiOptions(ctx), group, version))?.hash ?? '';
    });
    return writeJSON(res, 200, index);
  }
  if (path.startsWith('/openapi/v3/')) {
    const gv = path.slice('/openapi/v3/'.length);
    const [prefix, ...rest] = gv.split('/');
    const [group, version] =
      prefix === 'api' && rest.length === 1
        ? ['', rest[0]!]
        : prefix === 'apis' && rest.length === 2
          ? [rest[0]!, rest[1]!]
          : ['', ''];
    const doc = version
      ? openapiDoc(ctx, gv, () => openAPIV3Document(openapiOptions(ctx), group, version))
      : undefined;
    if (!doc) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    res.writeHead(200, {
      'Content-Type': 'application/json',
      ETag: `"${doc.hash}"`,
      'Cache-Control': 'public, immutable',
    });
    res.end(doc.body);
    return;
  }
  if (path === '/api' || path === '/apis') {
    const agg = aggregatedVersion(accept);
    if (agg) {
      return writeJSON(
        res,
        200,
        aggregatedDiscovery(ctx.registry, path === '/api', agg),
        aggregatedContentType(agg),
      );
    }
    return writeJSON(res, 200, path === '/api' ? apiVersions(ctx.advertise) : apiGroupList(ctx.registry));
  }
  if (info.prefix === 'api' && info.version === 'v1' && path === '/api/v1') {
    return writeJSON(res, 200, apiResourceList(ctx.registry, '', 'v1'));
  }
  if (info.prefix === 'apis' && info.group) {
    const group = ctx.registry.groups().find((g) => g.group === info.group);
    if (group && !info.version) return writeJSON(res, 200, apiGroup(group));
    if (group?.versions.includes(info.version)) {
      return writeJSON(res, 200, apiResourceList(ctx.registry, info.group, info.version));
    }
  }
  if (path === '/') {
    return writeJSON(res, 200, {
      paths: [
        '/api',
        '/api/v1',
        '/apis',
        ...ctx.registry
          .groups()
          .flatMap((g) => g.versions.map((v) => `/apis/${g.group}/${v}`))
          .filter((p) => !p.startsWith('/apis//')),
        '/healthz',
        '/livez',
        ...(ctx.metrics ? ['/metrics'] : []),
        '/readyz',
        '/version',
      ],
    });
  }
  throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
}

// OpenAPI documents are built once per registry change and served with a
// content hash, so clients can cache them (kubectl keys its cache by hash).
function openapiDoc(
  ctx: HandlerContext,
  key: string,
  build: () => unknown,
): { body: string; hash: string } | undefined {
  let doc = ctx.openapi.get(key);
  if (!doc) {
    const value = build();
    if (value === undefined) return undefined;
    const body = JSON.stringify(value);
    doc = { body, hash: createHash('sha512').update(body).digest('hex').slice(0, 128).toUpperCase() };
    ctx.openapi.set(key, doc);
  }
  return doc;
}

function openapiOptions(ctx: HandlerContext) {
  return {
    model: ctx.model,
    registry: ctx.registry,
    patchSchema: kubernetesPatchSchema,
    version: ctx.version.gitVersion,
  };
}
