// Cluster DNS as every node agent runs it (see docs/architecture-notes.md for
// why on every node rather than once in the server).
//
// The agent answers on the cluster DNS address itself (kubelet --cluster-dns,
// 10.43.0.10 by default: the Service CIDR's tenth address, as k3s), which it
// puts on a dummy interface of its own (or on lo, where the kernel has no
// dummy driver), as NodeLocal DNSCache does with the kube-dns address: a pod's query to 10.43.0.10:53 is delivered on its own
// node without any DNAT, so DNS works before (and without) the service
// proxy. The kube-dns Service in kube-system (src/server/server.ts) has that
// same address as its one endpoint, so a proxy that does translate it
// translates it to itself, which every node also answers.
//
// The records come from informer caches of Services, EndpointSlices and
// Namespaces; Pods are not watched (pod records are CoreDNS's `pods
// insecure`, and pod hostnames come through EndpointSlices).

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Namespace, Service } from '../api/types/core-v1.ts';
import type { EndpointSlice } from '../api/types/discovery-v1.ts';
import type { Clientset } from '../client/clientset.ts';
import { createInformer, type Informer, indexByNamespace } from '../client/informer.ts';
import type { Log } from '../util/log.ts';
import { createForwarder, type Forwarder, type Upstream } from './forward.ts';
import { hostResolvConfPath, readResolvConf } from './resolv-conf.ts';
import { createDnsHandler, type DnsHandler, type DnsListener, listenDns } from './server.ts';
import { type ClusterState, type ClusterZone, createClusterZone } from './zone.ts';

const run = promisify(execFile);

/** The dummy interface holding the cluster DNS address on each node. */
export const DNS_INTERFACE = 'skiff-dns';
export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';
const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** The cluster DNS address of a Service CIDR: its tenth address (k3s's default, 10.43.0.10). */
export function clusterDNSIP(serviceCIDR: string): string {
  const [addr = ''] = serviceCIDR.split('/');
  const o = addr.split('.').map(Number);
  if (o.length !== 4 || o.some((x) => !(x >= 0 && x <= 255))) {
    throw new Error(`the cluster DNS address needs an IPv4 service CIDR, not ${serviceCIDR}`);
  }
  const n = ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) + 10;
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
}

/** The cluster's state as the DNS reads it: three informers, and a callback on every change. */
export interface InformerClusterState extends ClusterState {
  start(): Promise<void>;
  stop(): void;
  onChange(fn: () => void): void;
}

export function informerClusterState(clients: Clientset): InformerClusterState {
  const byService = (o: { metadata: EndpointSlice['metadata'] }) => {
    const svc = o.metadata.labels?.[SERVICE_NAME_LABEL];
    return svc ? [`${o.metadata.namespace}/${svc}`] : [];
  };
  const services: Informer<Service> = createInformer(clients.services, {
    indexers: { namespace: indexByNamespace },
  });
  const slices: Informer<EndpointSlice> = createInformer(clients.endpointSlices, {
    indexers: { service: byService },
  });
  const namespaces: Informer<Namespace> = createInformer(clients.namespaces, { indexers: {} });
  return {
    service: (ns, name) => services.indexer.get(`${ns}/${name}`),
    endpointSlices: (ns, name) => slices.indexer.byIndex('service', `${ns}/${name}`),
    namespace: (name) => namespaces.indexer.get(name),
    services: () => services.indexer.list(),
    allEndpointSlices: () => slices.indexer.list(),
    async start() {
      await Promise.all([services.start(), slices.start(), namespaces.start()]);
    },
    stop() {
      services.stop();
      slices.stop();
      namespaces.stop();
    },
    onChange(fn) {
      for (const inf of [services, slices, namespaces] as Informer<never>[]) {
        inf.on({ add: fn, update: fn, delete: fn });
      }
    },
  };
}

/**
 * Puts `ip` on the node's DNS dummy interface (made if missing), so the
 * node owns the cluster DNS address. Kernels without the dummy driver (some
 * VMs' minimal kernels) get it on the loopback device instead, as a /32 that
 * the node accepts from its pods all the same. Idempotent; needs root.
 * Returns the device used.
 */
export async function ensureDNSAddress(ip: string): Promise<string> {
  let dev = DNS_INTERFACE;
  await run('ip', ['link', 'add', DNS_INTERFACE, 'type', 'dummy']).catch((err: { stderr?: string }) => {
    if (/File exists/.test(err.stderr ?? '')) return;
    if (/Unknown device type|not supported/i.test(err.stderr ?? '')) dev = 'lo';
    else throw err;
  });
  await run('ip', ['addr', 'replace', `${ip}/32`, 'dev', dev]);
  await run('ip', ['link', 'set', dev, 'up']);
  return dev;
}

/** Removes the cluster DNS address and the dummy interface (`skiff agent --cleanup`); missing ones are fine. */
export async function cleanupDNSAddress(ip: string): Promise<void> {
  await run('ip', ['link', 'delete', DNS_INTERFACE]).catch(() => undefined);
  await run('ip', ['addr', 'del', `${ip}/32`, 'dev', 'lo']).catch(() => undefined);
}

/** The node's upstream resolvers: its resolv.conf's name servers, on port 53, minus the cluster DNS itself. */
export function upstreamsFromResolvConf(path: string, exclude: string[] = []): Upstream[] {
  return readResolvConf(path)
    .nameservers.filter((ip) => !exclude.includes(ip))
    .map((host) => ({ host, port: 53 }));
}

export interface ClusterDNSOptions {
  clients: Clientset;
  /** The address to answer on (the cluster DNS IP in the agent; 127.0.0.1 in tests). */
  address: string;
  /** Default 53; 0 for an ephemeral port (tests). */
  port?: number;
  clusterDomain?: string;
  /** Default: the node's resolv.conf's name servers (hostResolvConfPath). */
  upstreams?: Upstream[];
  forwardTimeoutMs?: number;
  /** Put `address` on the dummy interface first (the agent; not tests on loopback). */
  ownAddress?: boolean;
  log?: Log;
  /** Wraps the query handler: the agent counts and times queries with it (metrics/dns.ts). */
  instrument?: (handler: DnsHandler) => DnsHandler;
}

export interface ClusterDNS {
  readonly address: string;
  readonly port: number;
  readonly zone: ClusterZone;
  readonly handler: DnsHandler;
  stop(): Promise<void>;
}

export async function startClusterDNS(opts: ClusterDNSOptions): Promise<ClusterDNS> {
  if (opts.ownAddress) await ensureDNSAddress(opts.address);
  const state = informerClusterState(opts.clients);
  const zone = createClusterZone(state, {
    clusterDomain: opts.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN,
    dnsIP: opts.address,
  });
  state.onChange(() => zone.changed());
  const upstreams = opts.upstreams ?? upstreamsFromResolvConf(hostResolvConfPath(), [opts.address]);
  const forwarder: Forwarder = createForwarder({
    upstreams,
    ...(opts.forwardTimeoutMs ? { timeoutMs: opts.forwardTimeoutMs } : {}),
  });
  const plain = createDnsHandler({ zone, forwarder, ...(opts.log ? { log: opts.log } : {}) });
  const handler = opts.instrument ? opts.instrument(plain) : plain;
  await state.start();
  let listener: DnsListener;
  try {
    listener = await listenDns(handler, {
      address: opts.address,
      port: opts.port ?? 53,
      ...(opts.log ? { log: opts.log } : {}),
    });
  } catch (err) {
    state.stop();
    forwarder.close();
    throw err;
  }
  opts.log?.('cluster DNS serving', {
    address: listener.address,
    port: listener.port,
    upstreams: upstreams.map((u) => u.host),
  });
  return {
    address: listener.address,
    port: listener.port,
    zone,
    handler,
    async stop() {
      await listener.close();
      state.stop();
      forwarder.close();
    },
  };
}
