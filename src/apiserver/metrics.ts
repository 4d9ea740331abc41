// The API server's Prometheus metrics, with upstream's names, labels and
// buckets (k8s.io/apiserver/pkg/endpoints/metrics, pkg/storage/etcd3/metrics,
// the APF filter's inflight watermarks), served on /metrics to those allowed
// `get` on that path (the system:monitoring ClusterRole, bound to the
// system:monitoring group, as upstream bootstraps it).
//
// Recording a request must stay cheap (the create path is benchmarked:
// bench/api.ts, bench/metrics.ts): the hot series are ../metrics/fast.ts's,
// and each label set's children are kept in a Map here, so a request costs
// a string key, a Map lookup, an increment and a bucket search.

import { Gauge } from 'prom-client';
import type { Registry as ResourceRegistry } from '../api/registry.ts';
import { storageSegment } from '../api/registry.ts';
import { type CounterChild, FastCounter, FastHistogram, type HistogramChild } from '../metrics/fast.ts';
import { componentRegistry, REQUEST_DURATION_BUCKETS, type Registry } from '../metrics/prometheus.ts';
import type { StoreObserver } from '../storage/instrumented.ts';
import type { RequestInfo } from './request-info.ts';

/** What the pipeline tells the metrics of each request (pipeline.ts). */
export interface RequestMetrics {
  /** A request that is not long-running starts (apiserver_current_inflight_requests). */
  started(mutating: boolean): void;
  /** ... and is answered. */
  finished(mutating: boolean): void;
  /** Any request, long-running ones included, once answered. */
  record(info: RequestInfo, request: RequestLabelsInput, code: number, seconds: number): void;
}

/** What of the request, beyond its RequestInfo, the labels need. */
export interface RequestLabelsInput {
  readonly dryRun: string | null;
  readonly contentType: string | undefined;
}

const APPLY_PATCH = 'application/apply-patch+yaml';

/**
 * The verb label, as upstream reports it (CanonicalVerb, cleanVerb): the
 * HTTP method upper-cased, except LIST and WATCH for collection reads, APPLY
 * for server-side apply, and CONNECT for exec, attach and port-forward.
 */
export function reportedVerb(info: RequestInfo, contentType: string | undefined): string {
  switch (info.verb) {
    case 'get':
      return 'GET';
    case 'list':
      return 'LIST';
    case 'watch':
      return 'WATCH';
    case 'create':
      return 'POST';
    case 'update':
      return 'PUT';
    case 'patch':
      return contentType?.startsWith(APPLY_PATCH) ? 'APPLY' : 'PATCH';
    case 'delete':
    case 'deletecollection':
      return 'DELETE';
    case 'connect':
      return 'CONNECT';
    default:
      return info.verb.toUpperCase();
  }
}

/** The scope label, as upstream's CleanScope. */
export function requestScope(info: RequestInfo): string {
  if (info.name !== '' || info.verb === 'create') return 'resource';
  if (info.namespace !== undefined && info.namespace !== '') return 'namespace';
  if (info.isResourceRequest) return 'cluster';
  return '';
}

/** The dry_run label: upstream sorts and joins the request's dryRun values; only All exists. */
const dryRunLabel = (dryRun: string | null): string => (dryRun ? dryRun : '');

export class ApiServerMetrics implements RequestMetrics {
  readonly registry: Registry;
  readonly #requests: FastCounter;
  readonly #durations: FastHistogram;
  readonly #etcd: FastHistogram;
  readonly #counted = new Map<string, CounterChild>();
  readonly #timed = new Map<string, HistogramChild>();
  readonly #etcdTimed = new Map<string, HistogramChild>();
  /** Storage key segment (pods, deployments) → upstream's group-resource string (pods, deployments.apps). */
  readonly #types = new Map<string, string>();
  readonly #inflight = { mutating: 0, readOnly: 0 };
  /** The most in flight since the last scrape, as upstream's watermark reports the last period's maximum. */
  readonly #watermark = { mutating: 0, readOnly: 0 };

  constructor(
    resources: ResourceRegistry,
    objectCounts: () => Promise<Map<string, number>>,
    registry: Registry = componentRegistry(),
  ) {
    this.registry = registry;
    this.#requests = new FastCounter({
      name: 'apiserver_request_total',
      help: 'Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.',
      labelNames: [
        'verb',
        'dry_run',
        'group',
        'version',
        'resource',
        'subresource',
        'scope',
        'component',
        'code',
      ],
      registry,
    });
    this.#durations = new FastHistogram({
      name: 'apiserver_request_duration_seconds',
      help: 'Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.',
      labelNames: ['verb', 'dry_run', 'group', 'version', 'resource', 'subresource', 'scope', 'component'],
      buckets: REQUEST_DURATION_BUCKETS,
      registry,
    });
    this.#etcd = new FastHistogram({
      name: 'etcd_request_duration_seconds',
      help: 'Etcd request latency in seconds for each operation and object type.',
      labelNames: ['operation', 'type'],
      buckets: REQUEST_DURATION_BUCKETS,
      registry,
    });
    const inflight = this.#inflight;
    const watermark = this.#watermark;
    new Gauge({
      name: 'apiserver_current_inflight_requests',
      help: 'Maximal number of currently used inflight request limit of this apiserver per request kind in last second.',
      labelNames: ['request_kind'],
      registers: [registry],
      collect() {
        this.set({ request_kind: 'mutating' }, watermark.mutating);
        this.set({ request_kind: 'readOnly' }, watermark.readOnly);
        watermark.mutating = inflight.mutating;
        watermark.readOnly = inflight.readOnly;
      },
    });
    new Gauge({
      name: 'apiserver_storage_objects',
      help: 'Number of stored objects at the time of last check split by kind.',
      labelNames: ['resource'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const [resource, n] of await objectCounts()) this.set({ resource }, n);
      },
    });
    for (const rt of resources.all()) this.#types.set(storageSegment(rt), groupResource(rt));
    resources.onChange(() => {
      for (const rt of resources.all()) this.#types.set(storageSegment(rt), groupResource(rt));
    });
  }

  started(mutating: boolean): void {
    const kind = mutating ? 'mutating' : 'readOnly';
    const n = ++this.#inflight[kind];
    if (n > this.#watermark[kind]) this.#watermark[kind] = n;
  }

  finished(mutating: boolean): void {
    this.#inflight[mutating ? 'mutating' : 'readOnly']--;
  }

  record(info: RequestInfo, request: RequestLabelsInput, code: number, seconds: number): void {
    const verb = reportedVerb(info, request.contentType);
    const dryRun = dryRunLabel(request.dryRun);
    const scope = requestScope(info);
    // Non-resource requests carry their path as the subresource, as
    // upstream's; paths nothing serves would only add series, so they go
    // without one.
    const subresource = info.isResourceRequest ? info.subresource : code === 404 ? '' : info.path;
    const key = `${verb} ${dryRun} ${info.group} ${info.version} ${info.resource} ${subresource} ${scope}`;
    let timed = this.#timed.get(key);
    if (!timed) {
      timed = this.#durations.child(
        verb,
        dryRun,
        info.group,
        info.version,
        info.resource,
        subresource,
        scope,
        'apiserver',
      );
      this.#timed.set(key, timed);
    }
    timed.observe(seconds);
    const codeKey = `${key} ${code}`;
    let counted = this.#counted.get(codeKey);
    if (!counted) {
      counted = this.#requests.child(
        verb,
        dryRun,
        info.group,
        info.version,
        info.resource,
        subresource,
        scope,
        'apiserver',
        String(code),
      );
      this.#counted.set(codeKey, counted);
    }
    counted.inc();
  }

  /** Times the store's calls (storage/instrumented.ts) as etcd_request_duration_seconds. */
  readonly storeObserver: StoreObserver = (operation, key, seconds) => {
    const segment = storageKeySegment(key);
    const mapKey = `${operation} ${segment}`;
    let timed = this.#etcdTimed.get(mapKey);
    if (!timed) {
      timed = this.#etcd.child(operation, this.#types.get(segment) ?? segment);
      this.#etcdTimed.set(mapKey, timed);
    }
    timed.observe(seconds);
  };
}

/** Upstream's GroupResource.String(): pods, deployments.apps. */
const groupResource = (rt: { group: string; plural: string }): string =>
  rt.group ? `${rt.plural}.${rt.group}` : rt.plural;

const REGISTRY_PREFIX = '/registry/';

/**
 * The resource's part of a storage key: /registry/pods/ns/name → pods. A
 * custom resource's keys have its group first (/registry/example.com/widgets/...),
 * and a group always has a dot.
 */
export function storageKeySegment(key: string): string {
  if (!key.startsWith(REGISTRY_PREFIX)) return '';
  const start = REGISTRY_PREFIX.length;
  let end = key.indexOf('/', start);
  if (end < 0) return key.slice(start);
  if (key.lastIndexOf('.', end) >= start) {
    const next = key.indexOf('/', end + 1);
    end = next < 0 ? key.length : next;
  }
  return key.slice(start, end);
}
