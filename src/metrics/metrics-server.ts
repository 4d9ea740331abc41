// metrics-server, inside `skiff server` (k3s ships it as a Deployment; Skiff
// runs the same loop in process and the API server serves its
// metrics.k8s.io/v1beta1 natively, apiserver/handlers/resource-metrics.ts).
//
// Every --metric-resolution (15 s, as upstream's default) it scrapes each
// Node's kubelet at /metrics/resource over HTTPS, as the user
// system:metrics-server with its own client certificate: the kubelet lets it
// in through a SubjectAccessReview for nodes/metrics, which the
// system:metrics-server ClusterRole grants. It keeps the last two samples
// of every node and container and answers with the rate between them, as
// upstream's storage does: CPU is the change of the cumulative counter
// over the time between the two samples' own timestamps (the `window`),
// memory the last working set. A pod is listed only once every one of its
// containers has two samples, so the HPA never sees half a pod.
//
// Nodes are read through an informer (list/watch as system:metrics-server)
// for each node's kubelet address. The labels selectors match come from the
// API server's own caches when it answers (handlers/resource-metrics.ts):
// an informer of every pod here would cost the API server a watch event
// per pod write for nothing.

import { Agent, request } from 'node:https';
import type { KubeObject } from '../api/meta.ts';
import { canonicalQuantityString, newQuantity, newScaledQuantity } from '../api/quantity.ts';
import type { Node } from '../api/types/core-v1.ts';
import type { Clientset } from '../client/clientset.ts';
import { createInformer, type Informer } from '../client/informer.ts';
import type { Log } from '../util/log.ts';

export const METRICS_SERVER_USER = 'system:metrics-server';
/** Upstream's default --metric-resolution. */
export const DEFAULT_METRIC_RESOLUTION_MS = 15_000;
/** Kubelets scraped at once (a thousand hollow nodes do not open a thousand connections). */
const SCRAPE_CONCURRENCY = 64;
const DEFAULT_KUBELET_PORT = 10250;

export interface ContainerUsage {
  name: string;
  usage: { cpu: string; memory: string };
}

export interface NodeMetrics extends KubeObject {
  timestamp: string;
  window: string;
  usage: { cpu: string; memory: string };
}

export interface PodMetrics extends KubeObject {
  timestamp: string;
  window: string;
  containers: ContainerUsage[];
}

/**
 * What the API server's metrics.k8s.io handler reads. The labels (and
 * whether a node or pod still exists) come from the API server's own
 * caches, so metrics-server needs no informer of every pod.
 */
export interface ResourceMetricsProvider {
  nodeMetrics(labels: LabelSource): NodeMetrics[];
  /** Every namespace's when namespace is undefined. */
  podMetrics(labels: LabelSource, namespace?: string): PodMetrics[];
}

/** One sample of a cumulative counter or a gauge: value at t (ms since the epoch). */
interface Point {
  t: number;
  v: number;
}

interface ContainerSample {
  cpu?: Point;
  memory?: Point;
  /** container_start_time_seconds: a restarted container's counter starts over. */
  start?: number;
}

/** One scrape of one kubelet. */
export interface NodeScrape {
  cpu?: Point;
  memory?: Point;
  /** By `namespace/pod`, then container name. */
  pods: Map<string, Map<string, ContainerSample>>;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?\s*$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Reads the kubelet's /metrics/resource (samples carry their timestamps). */
export function parseResourceMetrics(text: string, scrapedAt: number): NodeScrape {
  const scrape: NodeScrape = { pods: new Map() };
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) continue;
    const name = m[1]!;
    const v = Number(m[3]);
    const t = m[4] ? Number(m[4]) : scrapedAt;
    if (!Number.isFinite(v)) continue;
    if (name === 'node_cpu_usage_seconds_total') scrape.cpu = { t, v };
    else if (name === 'node_memory_working_set_bytes') scrape.memory = { t, v };
    else if (name.startsWith('container_')) {
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(["\\])/g, '$1');
      const { namespace, pod, container } = labels;
      if (!namespace || !pod || !container) continue;
      const key = `${namespace}/${pod}`;
      const containers = scrape.pods.get(key) ?? new Map<string, ContainerSample>();
      scrape.pods.set(key, containers);
      const c = containers.get(container) ?? {};
      containers.set(container, c);
      if (name === 'container_cpu_usage_seconds_total') c.cpu = { t, v };
      else if (name === 'container_memory_working_set_bytes') c.memory = { t, v };
      else if (name === 'container_start_time_seconds') c.start = v;
    }
  }
  return scrape;
}

/** A CPU rate in cores between two samples of a cumulative counter, or undefined (reset, no time passed). */
function rate(
  prev: Point | undefined,
  last: Point | undefined,
): { cores: number; windowMs: number } | undefined {
  if (!prev || !last || last.t <= prev.t || last.v < prev.v) return undefined;
  return { cores: (last.v - prev.v) / ((last.t - prev.t) / 1000), windowMs: last.t - prev.t };
}

/** CPU in nanocores and memory in bytes, as metrics-server writes them ("12345n", "1024Ki"). */
const cpuQuantity = (cores: number) =>
  canonicalQuantityString(newScaledQuantity(Math.round(cores * 1e9), -9));
const memoryQuantity = (bytes: number) => canonicalQuantityString(newQuantity(Math.round(bytes), 'BinarySI'));
/** A Go duration as metrics-server's window reads: "15.002s". */
const duration = (ms: number) => `${Number((ms / 1000).toFixed(3))}s`;
const time = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The labels of a node or pod; undefined when it no longer exists (its metrics are not served). */
export interface LabelSource {
  node(name: string): Record<string, string> | undefined;
  pod(namespace: string, name: string): Record<string, string> | undefined;
}

/** The last two scrapes of every node, and what they make as NodeMetrics and PodMetrics. */
export class MetricsStorage implements ResourceMetricsProvider {
  readonly #scrapes = new Map<string, { prev?: NodeScrape; last: NodeScrape }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  store(node: string, scrape: NodeScrape): void {
    const had = this.#scrapes.get(node);
    this.#scrapes.set(node, { ...(had ? { prev: had.last } : {}), last: scrape });
  }

  /** Drops nodes that are gone (or no longer answer). */
  retain(nodes: Set<string>): void {
    for (const name of this.#scrapes.keys()) if (!nodes.has(name)) this.#scrapes.delete(name);
  }

  nodeMetrics(labelsOf: LabelSource): NodeMetrics[] {
    const out: NodeMetrics[] = [];
    const created = time(this.#now());
    for (const [name, { prev, last }] of this.#scrapes) {
      const labels = labelsOf.node(name);
      const cpu = rate(prev?.cpu, last.cpu);
      if (!labels || !cpu || !last.memory) continue;
      out.push({
        kind: 'NodeMetrics',
        apiVersion: 'metrics.k8s.io/v1beta1',
        metadata: { name, creationTimestamp: created, labels },
        timestamp: time(last.cpu!.t),
        window: duration(cpu.windowMs),
        usage: { cpu: cpuQuantity(cpu.cores), memory: memoryQuantity(last.memory.v) },
      });
    }
    return out.sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : 1));
  }

  podMetrics(labelsOf: LabelSource, namespace?: string): PodMetrics[] {
    const out: PodMetrics[] = [];
    const created = time(this.#now());
    for (const { prev, last } of this.#scrapes.values()) {
      for (const [key, containers] of last.pods) {
        const slash = key.indexOf('/');
        const ns = key.slice(0, slash);
        const name = key.slice(slash + 1);
        if (namespace !== undefined && ns !== namespace) continue;
        const labels = labelsOf.pod(ns, name);
        if (!labels) continue;
        const before = prev?.pods.get(key);
        const usages: ContainerUsage[] = [];
        let timestamp = 0;
        let windowMs = 0;
        for (const [container, c] of containers) {
          const p = before?.get(container);
          // A container that restarted between the samples has no rate yet.
          const r = p && p.start === c.start ? rate(p.cpu, c.cpu) : undefined;
          if (!r || !c.memory) break;
          timestamp = Math.max(timestamp, c.cpu!.t);
          windowMs = Math.max(windowMs, r.windowMs);
          usages.push({
            name: container,
            usage: { cpu: cpuQuantity(r.cores), memory: memoryQuantity(c.memory.v) },
          });
        }
        if (usages.length !== containers.size || usages.length === 0) continue;
        out.push({
          kind: 'PodMetrics',
          apiVersion: 'metrics.k8s.io/v1beta1',
          metadata: { name, namespace: ns, creationTimestamp: created, labels },
          timestamp: time(timestamp),
          window: duration(windowMs),
          containers: usages.sort((a, b) => (a.name < b.name ? -1 : 1)),
        });
      }
    }
    return out.sort((a, b) =>
      a.metadata.namespace === b.metadata.namespace
        ? a.metadata.name! < b.metadata.name!
          ? -1
          : 1
        : a.metadata.namespace! < b.metadata.namespace!
          ? -1
          : 1,
    );
  }
}

/** https://<address>:<port> of a node's kubelet, as the API server's node proxy finds it. */
export function kubeletAddress(node: Node): { host: string; port: number } | undefined {
  const addresses = node.status?.addresses ?? [];
  const host = ['InternalIP', 'Hostname', 'ExternalIP']
    .map((type) => addresses.find((a) => a.type === type)?.address)
    .find((a) => a);
  if (!host) return undefined;
  return { host, port: node.status?.daemonEndpoints?.kubeletEndpoint?.Port || DEFAULT_KUBELET_PORT };
}

export interface MetricsServerOptions {
  /** As system:metrics-server: list/watch of nodes. */
  clients: Clientset;
  /** The client certificate shown to kubelets (CN system:metrics-server). */
  tls: { cert: string; key: string };
  storage: MetricsStorage;
  /** --metric-resolution (default 15 s). */
  resolutionMs?: number;
  log: Log;
}

export interface RunningMetricsServer {
  /** One round of scrapes now (tests, the benchmark); resolves when every node answered or failed. */
  scrape(): Promise<void>;
  stop(): Promise<void>;
}

export async function startMetricsServer(opts: MetricsServerOptions): Promise<RunningMetricsServer> {
  const resolutionMs = opts.resolutionMs ?? DEFAULT_METRIC_RESOLUTION_MS;
  const { log, storage } = opts;
  const nodes: Informer<Node> = createInformer(opts.clients.nodes);
  await nodes.start();
  // The kubelets' serving certificates are their own (not the cluster CA's),
  // so they are not verified, as the API server's node proxy does not.
  const agent = new Agent({
    cert: opts.tls.cert,
    key: opts.tls.key,
    rejectUnauthorized: false,
    keepAlive: true,
    maxSockets: SCRAPE_CONCURRENCY,
  });
  const timeoutMs = Math.max(1000, Math.min(10_000, resolutionMs * 0.9));
  /** Nodes whose last scrape failed, so a failure is logged once, not every round. */
  const failing = new Set<string>();

  const scrapeNode = (node: Node) =>
    new Promise<NodeScrape>((resolve, reject) => {
      const address = kubeletAddress(node);
      if (!address) return reject(new Error('the node has no address'));
      const req = request(
        {
          host: address.host,
          port: address.port,
          path: '/metrics/resource',
          agent,
          timeout: timeoutMs,
          headers: { Accept: 'text/plain' },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode !== 200)
              return reject(new Error(`kubelet answered ${res.statusCode}: ${body.trim().slice(0, 200)}`));
            resolve(parseResourceMetrics(body, Date.now()));
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end();
    });

  async function scrape(): Promise<void> {
    // A Node without an address has no kubelet to ask (registered by hand, or not yet reporting).
    const all = nodes.indexer.list().filter((n) => kubeletAddress(n) !== undefined);
    const queue = [...all];
    const answered = new Set<string>();
    await Promise.all(
      Array.from({ length: Math.min(SCRAPE_CONCURRENCY, queue.length) }, async () => {
        for (let node = queue.shift(); node; node = queue.shift()) {
          const name = node.metadata.name ?? '';
          try {
            storage.store(name, await scrapeNode(node));
            answered.add(name);
            if (failing.delete(name)) log('scraping the node works again', { node: name });
          } catch (err) {
            if (!failing.has(name))
              log.warn('failed to scrape the node; its metrics are unavailable until it answers', {
                node: name,
                error: String((err as Error)?.message ?? err),
              });
            failing.add(name);
          }
        }
      }),
    );
    storage.retain(answered);
  }

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const tick = () => {
    running = scrape()
      .catch((err: unknown) => log.warn('a metrics scrape round failed', { error: String(err) }))
      .finally(() => {
        running = undefined;
        if (!stopped) timer = setTimeout(tick, resolutionMs);
      });
  };
  tick();
  log('metrics-server scraping kubelets', { resolution: duration(resolutionMs) });
  return {
    scrape,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      nodes.stop();
      agent.destroy();
    },
  };
}
