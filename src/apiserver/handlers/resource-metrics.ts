// GET and LIST of metrics.k8s.io/v1beta1 nodes and pods, answered from
// metrics-server's storage (src/metrics/metrics-server.ts) as
// metrics-server's own API does (pkg/api/node.go, pod.go): label selectors
// match the node's or pod's labels, field selectors metadata.name and
// metadata.namespace; an object without samples yet is NotFound.

import { badRequest, methodNotAllowed, notFound } from '../../api/errors.ts';
import { parseFieldSelector } from '../../api/fields.ts';
import { parseSelector } from '../../api/labels.ts';
import type { KubeObject } from '../../api/meta.ts';
import type { ResourceType } from '../../api/registry.ts';
import type { LabelSource, NodeMetrics, PodMetrics } from '../../metrics/metrics-server.ts';
import { writeJSON } from '../http.ts';
import type { HandlerContext, RequestScope } from './context.ts';

export async function resourceMetrics(ctx: HandlerContext, s: RequestScope, rt: ResourceType): Promise<void> {
  const { info, query, res, req } = s;
  const provider = ctx.resourceMetrics;
  if (!provider) throw notFound({ group: rt.group, resource: rt.plural }, info.name);
  const nodes = rt.kind === 'NodeMetrics';
  const gr = { group: rt.group, resource: nodes ? 'nodemetrics' : 'podmetrics' };
  // Labels from this server's own caches of nodes and pods (an object gone from them has no metrics).
  const nodeStorage = ctx.storage('', 'v1', 'nodes')!;
  const podStorage = ctx.storage('', 'v1', 'pods')!;
  await Promise.all([nodeStorage.cache.start(), podStorage.cache.start()]);
  const labelsOf = (o: KubeObject | undefined) => (o ? { ...o.metadata.labels } : undefined);
  const labelSource: LabelSource = {
    node: (name) => labelsOf(nodeStorage.cache.get(nodeStorage.key(undefined, name))),
    pod: (namespace, name) => labelsOf(podStorage.cache.get(podStorage.key(namespace, name))),
  };
  const items: (NodeMetrics | PodMetrics)[] = nodes
    ? provider.nodeMetrics(labelSource)
    : provider.podMetrics(labelSource, info.namespace);
  if (info.verb === 'get') {
    const found = items.find((m) => m.metadata.name === info.name);
    if (!found) throw notFound(gr, nodes ? info.name : `${info.namespace}/${info.name}`);
    return writeJSON(res, 200, found);
  }
  if (info.verb !== 'list') throw methodNotAllowed(req.method ?? '', rt.kind);
  let labels: ReturnType<typeof parseSelector> | undefined;
  let fields: ReturnType<typeof parseFieldSelector> | undefined;
  try {
    const l = query.get('labelSelector');
    if (l) labels = parseSelector(l);
    const f = query.get('fieldSelector');
    if (f) fields = parseFieldSelector(f);
  } catch (err) {
    throw badRequest((err as Error).message);
  }
  const bad = fields?.unsupportedFields(new Set(['metadata.name', 'metadata.namespace'])) ?? [];
  if (bad.length > 0) throw badRequest(`field label not supported: ${bad[0]}`);
  const matching = items.filter(
    (m) =>
      (!labels || labels.matches(m.metadata.labels ?? {})) &&
      (!fields ||
        fields.matches({
          'metadata.name': m.metadata.name ?? '',
          'metadata.namespace': m.metadata.namespace ?? '',
        })),
  );
  writeJSON(res, 200, {
    kind: `${rt.kind}List`,
    apiVersion: `${rt.group}/${rt.version}`,
    metadata: {},
    items: matching,
  });
}
