// Prometheus registries, one per component, as upstream's components each
// have their own (k8s.io/component-base/metrics/legacyregistry). Skiff runs
// several components in one process, so a registry is made per component and
// served on that component's own endpoint (docs/metrics.md says which).
//
// prom-client is the library: it is the Node.js client the Prometheus
// project lists, kept up to date, with the exposition format, histograms
// and the process_* and nodejs_* runtime collectors built in.

import type { OutgoingHttpHeaders } from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';

export type { Registry };

/**
 * A component's registry, with the process_* and nodejs_* runtime metrics
 * (CPU seconds, resident memory, open fds, start time, heap, event-loop lag,
 * GC durations). They describe the whole process, as they would in a
 * component that had it to itself.
 */
export function componentRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** Several registries as one exposition (a process that hosts several components on one endpoint). */
export function mergedRegistry(registries: readonly Registry[]): Registry {
  return Registry.merge([...registries]);
}

/** Prometheus' text exposition format, version 0.0.4. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Writes a registry's metrics as a /metrics response. */
export async function writeMetrics(
  registry: Registry,
  res: { writeHead(code: number, headers: OutgoingHttpHeaders): unknown; end(text: string): unknown },
): Promise<void> {
  const text = await registry.metrics();
  res.writeHead(200, { 'Content-Type': EXPOSITION_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Upstream's buckets for request and storage latencies (apiserver_request_duration_seconds, etcd_request_duration_seconds). */
export const REQUEST_DURATION_BUCKETS = [
  0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60,
];
