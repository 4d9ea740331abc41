// metrics.k8s.io/v1beta1: NodeMetrics and PodMetrics, the resource metrics
// `kubectl top` and the HPA read. Never stored: the API server answers get
// and list from metrics-server's samples (src/metrics/metrics-server.ts,
// served by apiserver/handlers/resource-metrics.ts). Registered only when
// the server runs metrics-server, so discovery lists the group exactly
// when it answers, as an aggregated APIService would.

import type { ResourceType } from '../registry.ts';

export const METRICS_GROUP = 'metrics.k8s.io';

export const metricsResources: ResourceType[] = [
  {
    group: METRICS_GROUP,
    version: 'v1beta1',
    kind: 'NodeMetrics',
    plural: 'nodes',
    singular: '',
    namespaced: false,
    verbs: ['get', 'list'],
  },
  {
    group: METRICS_GROUP,
    version: 'v1beta1',
    kind: 'PodMetrics',
    plural: 'pods',
    singular: '',
    namespaced: true,
    verbs: ['get', 'list'],
  },
];
