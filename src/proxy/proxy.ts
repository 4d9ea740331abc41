// The service proxy of a node (Skiff's kube-proxy): watches Services and
// EndpointSlices through shared informers, keeps the desired ServicePorts
// (model.ts) and hands a backend (nftables.ts, iptables.ts) only what
// changed since its last sync.
//
// As upstream's proxier (pkg/proxy/nftables/proxier.go, syncProxyRules with
// its ServiceChangeTracker and EndpointsChangeTracker): event handlers only
// mark a Service dirty; a sync loop, at most one run at a time and at least
// minSyncIntervalMs apart (upstream's BoundedFrequencyRunner), recomputes the
// dirty Services' ports from the caches and syncs the backend. The first sync
// is a full one, as is the one after a failure; a failure retries with backoff.

import type { Service } from '../api/types/core-v1.ts';
import type { EndpointSlice } from '../api/types/discovery-v1.ts';
import type { Clientset } from '../client/clientset.ts';
import { createInformerFactory, type InformerFactory } from '../client/informer-factory.ts';
import type { Log } from '../util/log.ts';
import type { ProxyBackend } from './backend.ts';
import { SERVICE_NAME_LABEL, type ServicePort, servicePortsOf } from './model.ts';

export interface ProxyOptions {
  clients: Clientset;
  backend: ProxyBackend;
  /** Decides which endpoints are local (Local traffic policies). */
  nodeName: string;
  /** A shared informer factory; the proxy makes (and starts, stops) its own when none is given. */
  informers?: InformerFactory;
  /** Upstream's --iptables-min-sync-period / nftables minSyncPeriod: batches bursts of changes. */
  minSyncIntervalMs?: number;
  log?: Log;
  /** Told of every sync's duration (kubeproxy_sync_proxy_rules_duration_seconds, metrics/proxy.ts). */
  metrics?: ProxyMetrics;
}

/** What the proxy tells its metrics: each sync's duration, and whether it succeeded. */
export interface ProxyMetrics {
  synced(seconds: number, ok: boolean): void;
}

export interface ServiceProxy {
  /** Resolves after the first full sync succeeded. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The ServicePorts the kernel is programmed with, by key (for tests and the benchmark). */
  readonly ports: ReadonlyMap<string, ServicePort>;
  /** Completed syncs, full and incremental, and failed ones. */
  readonly syncs: { full: number; partial: number; failed: number };
  /** Resolves once every change seen so far is in the kernel, or the sync trying failed. */
  flushed(): Promise<void>;
}

const SERVICE_INDEX = 'service';
const indexByServiceName = (obj: { metadata: { namespace?: string; labels?: Record<string, string> } }) => {
  const name = obj.metadata.labels?.[SERVICE_NAME_LABEL];
  return name ? [`${obj.metadata.namespace}/${name}`] : [];
};

export function createProxy(opts: ProxyOptions): ServiceProxy {
  const ownInformers = !opts.informers;
  const informers = opts.informers ?? createInformerFactory(opts.clients);
  const services = informers.informer('services');
  const slices = informers.informer('endpointSlices');
  slices.indexer.addIndexer(SERVICE_INDEX, indexByServiceName as never);
  const minInterval = opts.minSyncIntervalMs ?? 50;
  const log = opts.log;

  const ports = new Map<string, ServicePort>();
  /** Port keys of each Service, so a Service losing a port removes it. */
  const portsOfService = new Map<string, Set<string>>();
  const dirty = new Set<string>();
  let needFull = true;
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let lastRun = 0;
  let backoffMs = 0;
  let stopped = false;
  let started = false;
  const syncs = { full: 0, partial: 0, failed: 0 };
  let waiters: (() => void)[] = [];
  let firstAttempt: (() => void) | undefined;
  let failed = false;

  const markDirty = (key: string) => {
    dirty.add(key);
    schedule();
  };
  const schedule = (delayMs?: number) => {
    if (stopped || !started || timer || running) return;
    const wait = delayMs ?? Math.max(0, lastRun + minInterval - Date.now());
    timer = setTimeout(() => {
      timer = undefined;
      running = runSync().finally(() => {
        running = undefined;
        firstAttempt?.();
        firstAttempt = undefined;
        if (dirty.size > 0 || needFull) schedule(backoffMs || undefined);
        // Waiters hear of a failure too (they would otherwise wait for the
        // retry); they can tell by syncs and the log.
        if ((dirty.size === 0 && !needFull) || failed) {
          const w = waiters;
          waiters = [];
          for (const f of w) f();
        }
      });
    }, wait);
  };

  /** Recomputes one Service's ports from the caches; answers the port keys that changed. */
  const recompute = (serviceKey: string, changed: Set<string>) => {
    const svc = services.indexer.get(serviceKey) as Service | undefined;
    const next = svc
      ? servicePortsOf(
          svc,
          slices.indexer.byIndex(SERVICE_INDEX, serviceKey) as EndpointSlice[],
          opts.nodeName,
        )
      : [];
    const old = portsOfService.get(serviceKey) ?? new Set<string>();
    const now = new Set<string>();
    for (const sp of next) {
      now.add(sp.key);
      const before = ports.get(sp.key);
      if (JSON.stringify(before) !== JSON.stringify(sp)) {
        ports.set(sp.key, sp);
        changed.add(sp.key);
      }
    }
    for (const k of old) {
      if (!now.has(k)) {
        ports.delete(k);
        changed.add(k);
      }
    }
    if (now.size) portsOfService.set(serviceKey, now);
    else portsOfService.delete(serviceKey);
  };

  const runSync = async () => {
    const keys = [...dirty];
    dirty.clear();
    const changed = new Set<string>();
    for (const k of keys) recompute(k, changed);
    const full = needFull;
    if (!full && changed.size === 0) return;
    const started = performance.now();
    lastRun = Date.now();
    failed = false;
    try {
      await opts.backend.sync(ports, full ? undefined : changed);
      needFull = false;
      backoffMs = 0;
      if (full) syncs.full++;
      else syncs.partial++;
      opts.metrics?.synced((performance.now() - started) / 1000, true);
      log?.('synced proxy rules', {
        mode: opts.backend.mode,
        full,
        changed: full ? ports.size : changed.size,
        ports: ports.size,
        ms: Math.round(performance.now() - started),
      });
    } catch (err) {
      // The kernel may hold part of it: rewrite all next time.
      needFull = true;
      failed = true;
      syncs.failed++;
      opts.metrics?.synced((performance.now() - started) / 1000, false);
      backoffMs = Math.min(Math.max(backoffMs * 2, 500), 30_000);
      log?.error('syncing proxy rules failed', {
        mode: opts.backend.mode,
        error: String(err),
        retryMs: backoffMs,
      });
    }
  };

  const serviceKeyOf = (o: { metadata: { namespace?: string; name?: string } }) =>
    `${o.metadata.namespace}/${o.metadata.name}`;
  services.on({
    add: (s) => markDirty(serviceKeyOf(s)),
    update: (_o, s) => markDirty(serviceKeyOf(s)),
    delete: (s) => markDirty(serviceKeyOf(s)),
  });
  const sliceHandler = (s: EndpointSlice) => {
    for (const k of indexByServiceName(s)) markDirty(k);
  };
  slices.on({
    add: sliceHandler,
    update: (o, s) => {
      sliceHandler(o);
      sliceHandler(s);
    },
    delete: sliceHandler,
  });

  return {
    ports,
    syncs,
    async start() {
      await informers.start();
      // Every Service in the cache, then one full sync before declaring ourselves up.
      for (const s of services.indexer.list()) dirty.add(serviceKeyOf(s));
      started = true;
      // The loop keeps retrying after a failure; start() reports the first attempt.
      await new Promise<void>((resolve) => {
        firstAttempt = resolve;
        schedule(0);
      });
      if (needFull) throw new Error('the first proxy sync failed (retrying); see the log');
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
      if (ownInformers) informers.stop();
    },
    flushed() {
      if (!running && !timer && dirty.size === 0 && !needFull) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
  };
}
