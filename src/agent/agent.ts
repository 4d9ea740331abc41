// The node agent: everything a node runs, assembled. Today that is the
// kubelet on a container runtime, cluster DNS and the service proxy
// (kube-proxy); the pod network's routes and ingress join here as they land.
//
// The agent reaches the cluster only through a Clientset, so the same code
// runs inside `skiff server` (in-process transport) and on another machine
// (`skiff agent`, HTTPS with a client certificate; see clientsFromKubeconfig).
//
// Runtimes:
//   cri     containerd through CRI, started and configured by the agent
//           (src/agent/runtime.ts), with the pod network written once the
//           Node has its podCIDR;
//   hollow  no containers at all (src/kubelet/runtime/hollow), for scale
//           tests and machines without containerd. `hollowNodes: N` runs N
//           such nodes, hollow-0 ... hollow-(N-1), in one process, like
//           kubemark's hollow nodes.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { type Clientset, createClientset } from '../client/clientset.ts';
import { createHttpTransport } from '../client/http-transport.ts';
import { clusterDNSIP, DEFAULT_CLUSTER_DOMAIN, startClusterDNS } from '../dns/node.ts';
import { hostResolvConfPath } from '../dns/resolv-conf.ts';
import { createCgroupManager } from '../kubelet/cm/cgroup-manager.ts';
import type { KubeletConfig } from '../kubelet/config.ts';
import { createKubelet, type Kubelet } from '../kubelet/kubelet.ts';
import { defaultNodeIP, defaultNodeName, type MachineInfo } from '../kubelet/node-status.ts';
import { HollowRuntime } from '../kubelet/runtime/hollow/hollow.ts';
import type { Runtime } from '../kubelet/runtime/runtime.ts';
import { sharedSources } from '../kubelet/sources.ts';
import type { VolumeStats } from '../kubelet/volumes/volume-stats.ts';
import { instrumentDnsHandler } from '../metrics/dns.ts';
import { kubeletMetrics, volumeStatsMetrics } from '../metrics/kubelet.ts';
import { componentRegistry } from '../metrics/prometheus.ts';
import { proxyMetrics } from '../metrics/proxy.ts';
import { serveMetricsHttp } from '../metrics/serve.ts';
import type { FlannelBackend } from '../network/node.ts';
import { containerdPaths, PAUSE_IMAGE } from '../node/paths.ts';
import { createLog, type Log } from '../util/log.ts';
import type { NodeRegistryOptions } from './registries.ts';

export type RuntimeKind = 'cri' | 'hollow';

/** kube-proxy's --metrics-bind-address port, and CoreDNS's prometheus plugin's. */
const PROXY_METRICS_PORT = 10249;
const DNS_METRICS_PORT = 9153;

export interface AgentOptions {
  /** The kubelet's clients (the node's identity, system:node:<name>). */
  clients: Clientset;
  /** The service proxy's (system:kube-proxy); the kubelet's when unset. */
  proxyClients?: Clientset;
  /** Cluster DNS's (kube-system/coredns); the kubelet's when unset. */
  dnsClients?: Clientset;
  /** The NetworkPolicy controller's (system:skiff-network-policy); without them a cri node enforces no policy. */
  networkPolicyClients?: Clientset;
  /** The ingress controller's (system:skiff-ingress); without them a cri node runs no ingress. */
  ingressClients?: Clientset;
  /** --disable ingress: no ingress proxy on this node. */
  disableIngress?: boolean;
  /** --ingress-http-port / --ingress-https-port (default 80 and 443). */
  ingressHttpPort?: number;
  ingressHttpsPort?: number;
  dataDir: string;
  /** k3s's --default-local-storage-path: where local-path volumes live on this node (default <data-dir>/storage). */
  defaultLocalStoragePath?: string;
  runtime: RuntimeKind;
  /** Defaults to this machine's hostname, lower-cased (as upstream's kubelet). */
  nodeName?: string;
  nodeIP?: string;
  nodeLabels?: Record<string, string>;
  /** The server's own node: labelled node-role.kubernetes.io/control-plane. */
  controlPlane?: boolean;
  clusterCIDR?: string;
  serviceCIDR?: string;
  /** --container-runtime-endpoint: use this containerd instead of starting one. */
  containerRuntimeEndpoint?: string;
  /** --flannel-backend: the pod network across nodes on a cri node (src/network/node.ts), vxlan by default. */
  flannelBackend?: FlannelBackend;
  /** --flannel-iface: the interface the overlay uses (default: the one holding the node IP). */
  flannelIface?: string;
  /** --node-external-ip: the Node's ExternalIP; with flannelExternalIP, the overlay's public IP. */
  nodeExternalIP?: string;
  /** --flannel-external-ip: peers reach this node at its external IP. */
  flannelExternalIP?: boolean;
  /** The service proxy's backend on a cri node (src/proxy/): nftables (default) or iptables. */
  proxyMode?: 'nftables' | 'iptables';
  /** With the hollow runtime: run this many nodes (hollow-0 ...) instead of one named after the host. */
  hollowNodes?: number;
  /**
   * The cluster CA (PEM): with it, a cri node serves the kubelet API on 10250
   * (logs, exec, attach, port-forward) to the API server's client certificate.
   */
  clusterCA?: string;
  /** --cluster-dns: the cluster DNS address (default: the Service CIDR's tenth address, 10.43.0.10). */
  clusterDNS?: string;
  /** --cluster-domain (default cluster.local). */
  clusterDomain?: string;
  /** A cri node's registries: registries.yaml, and whether the offline mirror stands in for public registries. */
  registry?: NodeRegistryOptions;
  /** --kubelet-arg: the kubelet's upstream flags (src/kubelet/config.ts). */
  kubeletConfig?: KubeletConfig;
  log?: Log;
}

export interface RunningAgent {
  kubelets: Kubelet[];
  stop(): Promise<void>;
}

/** Hollow nodes registering at once (bench/hollow-nodes' raw path uses the same). */
export const HOLLOW_START_CONCURRENCY = 32;

/** What a hollow node says it is: a modest machine, whatever this one is. */
const hollowMachine = (name: string): MachineInfo => ({
  cpu: 4,
  memoryBytes: 16 * 1024 ** 3,
  ephemeralStorageBytes: 100 * 1024 ** 3,
  machineID: name,
  systemUUID: name,
  bootID: name,
  kernelVersion: 'hollow',
  osImage: 'Skiff hollow node',
});

export async function startAgent(opts: AgentOptions): Promise<RunningAgent> {
  const log = opts.log ?? createLog({ component: 'agent' });
  const stops: (() => Promise<void>)[] = [];
  const kubelets: Kubelet[] = [];
  const clusterDNS = opts.clusterDNS ?? clusterDNSIP(opts.serviceCIDR ?? '10.43.0.0/16');
  const clusterDomain = opts.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN;
  const dnsOptions = { clusterDNS: [clusterDNS], clusterDomain, resolvConf: hostResolvConfPath() };

  if (opts.runtime === 'hollow') {
    const names = opts.hollowNodes
      ? Array.from({ length: opts.hollowNodes }, (_, i) => `hollow-${i}`)
      : [opts.nodeName ?? defaultNodeName()];
    // Hollow nodes share one watch of Nodes, pods and Services (sources.ts).
    const shared = opts.hollowNodes ? sharedSources(opts.clients) : undefined;
    if (shared) {
      await shared.start();
      stops.push(async () => shared.stop());
    }
    const startOne = async (name: string, i: number) => {
      let kubelet: Kubelet | undefined;
      const runtime = new HollowRuntime({ podCIDR: () => kubelet?.podCIDR() });
      kubelet = createKubelet({
        clients: opts.clients,
        runtime,
        nodeName: name,
        ...(opts.hollowNodes ? { machine: hollowMachine(name) } : {}),
        ...(opts.nodeIP ? { nodeIP: opts.nodeIP } : {}),
        dataDir: opts.dataDir,
        ...(opts.controlPlane && !opts.hollowNodes ? { controlPlane: true } : {}),
        ...(opts.nodeLabels ? { nodeLabels: opts.nodeLabels } : {}),
        ...(opts.kubeletConfig ? { config: opts.kubeletConfig } : {}),
        ...(shared ? { sources: shared.forNode(name), leasePhase: i / names.length } : {}),
        ...dnsOptions,
        log: log.with({ component: 'kubelet', node: name }),
      });
      await kubelet.start();
      kubelets.push(kubelet);
      const k = kubelet;
      stops.push(async () => {
        await k.stop();
        await runtime.close();
      });
    };
    // Registration is a few requests per node: a few dozen nodes at a time
    // keep the connection pool busy without queueing a thousand at once.
    const queue = names.map((name, i) => [name, i] as const);
    await Promise.all(
      Array.from({ length: Math.min(HOLLOW_START_CONCURRENCY, names.length) }, async () => {
        for (let next = queue.shift(); next !== undefined; next = queue.shift()) await startOne(...next);
      }),
    );
  } else {
    const name = opts.nodeName ?? defaultNodeName();
    // The pod network across nodes (src/network/node.ts): first, so the pods' MTU is its.
    // A node that cannot build it still runs its own pods, so a failure is logged, not fatal.
    const networkLog = log.with({ component: 'network', node: name });
    const network = await (await import('../network/node.ts'))
      .startNodeNetwork({
        clients: opts.clients,
        watchClients: opts.proxyClients ?? opts.clients,
        nodeName: name,
        ...(opts.flannelBackend ? { backend: opts.flannelBackend } : {}),
        ...(opts.flannelIface ? { iface: opts.flannelIface } : {}),
        publicIP: (opts.flannelExternalIP && opts.nodeExternalIP) || (opts.nodeIP ?? defaultNodeIP()),
        clusterCIDR: opts.clusterCIDR ?? '10.42.0.0/16',
        log: networkLog,
      })
      .catch((err: Error) => {
        networkLog.error('the pod network across nodes did not start', {
          error: String(err?.message ?? err),
        });
        return undefined;
      });
    if (network) stops.push(() => network.stop());
    // Loaded only when used: it brings gRPC and containerd management.
    const { startNodeRuntime } = await import('./runtime.ts');
    const node = await startNodeRuntime({
      ...(network ? { podMTU: network.mtu } : {}),
      dataDir: opts.dataDir,
      clusterCIDR: opts.clusterCIDR ?? '10.42.0.0/16',
      serviceCIDR: opts.serviceCIDR ?? '10.43.0.0/16',
      ...(opts.containerRuntimeEndpoint ? { containerRuntimeEndpoint: opts.containerRuntimeEndpoint } : {}),
      ...(opts.registry?.registries ? { registries: opts.registry.registries } : {}),
      ...(opts.registry?.disableDefaultEndpoint ? { disableDefaultRegistryEndpoint: true } : {}),
      ...(opts.registry?.offlineMirror === false ? { offline: false } : {}),
      log,
    });
    const runtime: Runtime = node.runtime;
    // The kubelet's metrics (metrics/kubelet.ts), served by its server.
    const kubeletRegistry = componentRegistry();
    const onStartupPhase = kubeletMetrics(kubeletRegistry, runtime);
    // The kubelet server first: the Node reports the port it got.
    const { startNodeKubeletServer } = await import('../kubelet/server/node.ts');
    // Volume stats come from the kubelet made just below.
    let volumeStatsOf: ((uid: string) => Promise<VolumeStats[]>) | undefined;
    const kubeletServer = opts.clusterCA
      ? await startNodeKubeletServer({
          runtime,
          clients: opts.clients,
          nodeName: name,
          nodeIP: opts.nodeIP ?? defaultNodeIP(),
          dataDir: opts.dataDir,
          clusterCA: opts.clusterCA,
          metrics: kubeletRegistry,
          volumeStats: (uid) => volumeStatsOf?.(uid) ?? Promise.resolve([]),
          log: log.with({ component: 'kubelet-server', node: name }),
        })
      : undefined;
    const kubelet = createKubelet({
      clients: opts.clients,
      runtime,
      ...(opts.kubeletConfig ? { config: opts.kubeletConfig } : {}),
      // Real containers run in the kubepods QoS hierarchy (src/kubelet/cm/).
      cgroups: createCgroupManager(),
      // imagefs: the file system of the containerd the agent runs (unknown for one given by endpoint).
      ...(opts.containerRuntimeEndpoint ? {} : { imagefsPath: containerdPaths(opts.dataDir).root }),
      // The sandbox image containerd is configured with (src/agent/containerd.ts): never garbage collected.
      pinnedImages: [PAUSE_IMAGE],
      nodeName: name,
      nodeIP: opts.nodeIP ?? defaultNodeIP(),
      ...(opts.nodeExternalIP ? { nodeExternalIP: opts.nodeExternalIP } : {}),
      dataDir: opts.dataDir,
      localStoragePath: opts.defaultLocalStoragePath ?? join(opts.dataDir, 'storage'),
      ...(opts.controlPlane ? { controlPlane: true } : {}),
      ...(opts.nodeLabels ? { nodeLabels: opts.nodeLabels } : {}),
      onPodCIDR: (cidr) => {
        network?.setPodCIDR(cidr);
        return node.setPodCIDR(cidr);
      },
      ...(kubeletServer ? { kubeletPort: kubeletServer.port } : {}),
      onStartupPhase,
      ...dnsOptions,
      log: log.with({ component: 'kubelet', node: name }),
    });
    volumeStatsOf = (uid) => kubelet.volumeStats(uid);
    volumeStatsMetrics(kubeletRegistry, () => kubelet.allVolumeStats());
    await kubelet.start();
    kubelets.push(kubelet);
    // Cluster DNS on this node, on the cluster DNS address itself (src/dns/node.ts).
    // Pods still start without it, so a failure is logged, not fatal.
    const dnsLog = log.with({ component: 'dns', node: name });
    const dnsRegistry = componentRegistry();
    const dns = await startClusterDNS({
      clients: opts.dnsClients ?? opts.clients,
      address: clusterDNS,
      clusterDomain,
      ownAddress: true,
      log: dnsLog,
      instrument: (handler) => instrumentDnsHandler(handler, dnsRegistry, 'dns://:53'),
    }).catch((err: Error) => {
      dnsLog.error('cluster DNS did not start', { address: clusterDNS, error: String(err?.message ?? err) });
      return undefined;
    });
    stops.push(async () => {
      await dns?.stop();
    });
    // The service proxy (src/proxy/node.ts). Its rules stay in the kernel
    // when the agent stops, as kube-proxy's do, so Services keep working
    // for the pods that keep running; `skiff agent --cleanup` removes them.
    const { startNodeProxy } = await import('../proxy/node.ts');
    const proxyLog = log.with({ component: 'proxy', node: name });
    const proxyRegistry = componentRegistry();
    const proxy = await startNodeProxy({
      clients: opts.proxyClients ?? opts.clients,
      nodeName: name,
      clusterCIDR: opts.clusterCIDR ?? '10.42.0.0/16',
      serviceCIDR: opts.serviceCIDR ?? '10.43.0.0/16',
      ...(opts.proxyMode ? { mode: opts.proxyMode } : {}),
      log: proxyLog,
      metrics: proxyMetrics(proxyRegistry),
    }).catch((err: Error) => {
      proxyLog.error('the service proxy did not start', { error: String(err?.message ?? err) });
      return undefined;
    });
    stops.push(async () => {
      await proxy?.stop();
    });
    // NetworkPolicy for this node's pods (src/network/policy-controller.ts).
    const netpolLog = log.with({ component: 'network-policy', node: name });
    const { startNodeNetworkPolicy } = await import('../network/policy-controller.ts');
    const netpol = opts.networkPolicyClients
      ? await startNodeNetworkPolicy({
          clients: opts.networkPolicyClients,
          nodeName: name,
          clusterCIDR: opts.clusterCIDR ?? '10.42.0.0/16',
          log: netpolLog,
        }).catch((err: Error) => netpolLog.error('network policy did not start', { error: String(err) }))
      : netpolLog.warn('no network policy credentials: NetworkPolicy is not enforced on this node');
    stops.push(async () => {
      await netpol?.stop();
    });
    // The ingress proxy on this node (src/ingress/node.ts). Pods and Services
    // work without it, so a failure (a port taken) is logged, not fatal.
    const ingressLog = log.with({ component: 'ingress', node: name });
    if (!opts.disableIngress) {
      const ingress = opts.ingressClients
        ? await (await import('../ingress/node.ts'))
            .startNodeIngress({
              clients: opts.ingressClients,
              dataDir: opts.dataDir,
              nodeName: name,
              ...(opts.ingressHttpPort !== undefined ? { httpPort: opts.ingressHttpPort } : {}),
              ...(opts.ingressHttpsPort !== undefined ? { httpsPort: opts.ingressHttpsPort } : {}),
              log: ingressLog,
            })
            .catch((err: Error) => {
              ingressLog.error('the ingress proxy did not start', {
                error: String(err?.message ?? err),
                hint: 'choose free ports with --ingress-http-port and --ingress-https-port, or --disable ingress',
              });
              return undefined;
            })
        : ingressLog.warn('no ingress credentials: this node serves no Ingress');
      stops.push(async () => {
        await ingress?.stop();
      });
    }
    // kube-proxy's and CoreDNS's metrics, on their upstream ports on loopback (docs/metrics.md).
    for (const [component, port, registry] of [
      ['proxy', PROXY_METRICS_PORT, proxyRegistry],
      ['dns', DNS_METRICS_PORT, dnsRegistry],
    ] as const) {
      const endpoint = await serveMetricsHttp({ component, host: '127.0.0.1', port, registry, log });
      if (endpoint) stops.push(() => endpoint.close());
    }
    // Containers outlive the agent: stopping it stops containerd's client, not the pods.
    stops.push(async () => {
      await kubeletServer?.close();
      await kubelet.stop();
      await node.stop();
    });
  }
  log('agent started', { runtime: opts.runtime, nodes: kubelets.map((k) => k.nodeName) });
  return {
    kubelets,
    async stop() {
      await Promise.all(stops.map((s) => s()));
    },
  };
}

export interface KubeconfigCredentials {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** A kubeconfig's current context: its server, CA and client certificate (inline *-data or file paths). */
export function readKubeconfig(path: string, server?: string): KubeconfigCredentials {
  const doc = parseYaml(readFileSync(path, 'utf8')) as {
    'current-context'?: string;
    contexts?: { name: string; context: { cluster: string; user: string } }[];
    clusters?: { name: string; cluster: Record<string, string> }[];
    users?: { name: string; user: Record<string, string> }[];
  };
  const context =
    doc.contexts?.find((c) => c.name === doc['current-context'])?.context ?? doc.contexts?.[0]?.context;
  const cluster =
    doc.clusters?.find((c) => c.name === context?.cluster)?.cluster ?? doc.clusters?.[0]?.cluster ?? {};
  const user = doc.users?.find((u) => u.name === context?.user)?.user ?? doc.users?.[0]?.user ?? {};
  const material = (data: string | undefined, file: string | undefined) =>
    data ? Buffer.from(data, 'base64') : file ? readFileSync(file) : undefined;
  const ca = material(cluster['certificate-authority-data'], cluster['certificate-authority']);
  const cert = material(user['client-certificate-data'], user['client-certificate']);
  const key = material(user['client-key-data'], user['client-key']);
  const url = server ?? cluster.server;
  if (!url) throw new Error(`${path}: no server address`);
  return { server: url, ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
}

/**
 * A Clientset over HTTPS from a kubeconfig (readKubeconfig). `server`
 * overrides the kubeconfig's address (`skiff agent --server`).
 */
export function clientsFromKubeconfig(
  path: string,
  server?: string,
): Clientset & {
  close(): void;
  clusterCA: string | undefined;
  /** Takes the kubeconfig's client certificate again (renewed), for new connections. */
  reloadCertificate(path: string): void;
} {
  const { ca, ...credentials } = readKubeconfig(path, server);
  const transport = createHttpTransport({
    ...credentials,
    ...(ca ? { ca } : {}),
    userAgent: 'skiff-agent/v0',
  });
  return Object.assign(createClientset(transport), {
    close: () => transport.close(),
    clusterCA: ca?.toString('utf8'),
    reloadCertificate(path: string) {
      const fresh = readKubeconfig(path);
      if (fresh.cert && fresh.key) transport.setClientCertificate(fresh.cert, fresh.key);
    },
  });
}
