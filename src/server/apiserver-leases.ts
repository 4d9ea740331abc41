// What each API server says about itself to the others, as upstream's:
//
// - An identity Lease, kube-system/apiserver-<id>, labelled
//   apiserver.kubernetes.io/identity=kube-apiserver, renewed every 10 s with
//   a 3600 s duration (pkg/controlplane/controller/apiserverleasegc and
//   k8s.io/apiserver's identity lease). Every server also deletes the
//   identity Leases that have expired, as upstream's apiserver lease GC.
//
// - The `kubernetes` Service's endpoints, by upstream's "lease" endpoint
//   reconciler (pkg/controlplane/reconcilers/lease.go, the default since
//   1.11): each server keeps a key /masterleases/<ip>:<port> in the store,
//   rewritten every 10 s with a 15 s time to live, and rewrites the
//   Endpoints (and EndpointSlice) `kubernetes` to list every server whose
//   key is live. A server that dies drops out within the TTL plus one
//   interval. Upstream stores those keys with an etcd lease TTL; Skiff's
//   Store has no TTLs (SQLite has none), so the value carries its expiry
//   in wall time, which assumes the servers' clocks agree to well within
//   the 15 s (NTP does that). A server that stops cleanly removes its key.
//   Upstream keys on the IP alone, since every server listens on one port;
//   Skiff's keys include the port so several servers can share an address
//   in tests, and the Endpoints then have one subset per port.

import { createHash, randomUUID } from 'node:crypto';
import { ApiError, isApiError } from '../api/errors.ts';
import type { KubeObject } from '../api/meta.ts';
import { rfc3339Micro } from '../api/meta.ts';
import type { Lease } from '../api/types/coordination-v1.ts';
import type { ApiServer } from '../apiserver/apiserver.ts';
import { StorageError, type Store } from '../storage/store.ts';
import type { Log } from '../util/log.ts';

export const IDENTITY_LABEL = 'apiserver.kubernetes.io/identity';
export const IDENTITY_LEASE_DURATION_SECONDS = 3600;
export const IDENTITY_RENEW_MS = 10_000;
/** Upstream's DefaultEndpointReconcilerInterval and the master lease TTL. */
export const ENDPOINT_RECONCILE_MS = 10_000;
export const MASTER_LEASE_TTL_SECONDS = 15;
export const MASTER_LEASES_PREFIX = '/masterleases/';

export interface ApiServerLeasesOptions {
  api: ApiServer;
  /** The raw store: the master leases live outside /registry, as upstream's. */
  store: Store;
  /** The address and port other servers, agents and pods reach this one at. */
  endpointIP: string;
  port: number;
  /** Names this server among its peers (node name and address). */
  serverName: string;
  hostname: string;
  reconcileIntervalMs?: number;
  ttlSeconds?: number;
  now?: () => number;
  log: Log;
}

export interface ApiServerLeases {
  /** This server's identity Lease's name, apiserver-<id>. */
  readonly leaseName: string;
  /** Runs one pass now: renews this server's leases and rewrites the endpoints. */
  reconcile(): Promise<void>;
  /** Removes this server from the endpoints (a clean shutdown), and stops. */
  stop(): Promise<void>;
}

interface MasterLease {
  ip: string;
  port: number;
  /** Wall-clock ms after which the server is taken for dead. */
  expires: number;
}

export async function startApiServerLeases(opts: ApiServerLeasesOptions): Promise<ApiServerLeases> {
  const now = opts.now ?? Date.now;
  const ttl = (opts.ttlSeconds ?? MASTER_LEASE_TTL_SECONDS) * 1000;
  const interval = opts.reconcileIntervalMs ?? ENDPOINT_RECONCILE_MS;
  const id = createHash('sha256').update(opts.serverName).digest('hex').slice(0, 16);
  const leaseName = `apiserver-${id}`;
  const holder = `${leaseName}_${randomUUID()}`;
  const leases = opts.api.storage('coordination.k8s.io', 'v1', 'leases')!;
  const endpoints = opts.api.storage('', 'v1', 'endpoints')!;
  const slices = opts.api.storage('discovery.k8s.io', 'v1', 'endpointslices')!;
  const ownKey = `${MASTER_LEASES_PREFIX}${opts.endpointIP}:${opts.port}`;
  let stopped = false;
  let lastIdentityRenew = Number.NEGATIVE_INFINITY;

  const renewIdentity = async () => {
    const lease: Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: leaseName,
        namespace: 'kube-system',
        labels: { [IDENTITY_LABEL]: 'kube-apiserver', 'kubernetes.io/hostname': opts.hostname },
      },
      spec: {
        holderIdentity: holder,
        leaseDurationSeconds: IDENTITY_LEASE_DURATION_SECONDS,
        renewTime: rfc3339Micro(new Date(now())),
      },
    };
    try {
      const current = (await leases.get('kube-system', leaseName)) as Lease;
      await leases.update('kube-system', leaseName, {
        ...current,
        metadata: { ...current.metadata, labels: { ...current.metadata.labels, ...lease.metadata.labels } },
        spec: { ...current.spec, ...lease.spec },
      } as KubeObject);
    } catch (err) {
      if (!isApiError(err, 'NotFound')) throw err;
      await leases.create('kube-system', lease as KubeObject);
    }
  };

  // The apiserver lease GC: identity Leases whose holder stopped renewing.
  const collectExpiredIdentities = async () => {
    const list = await leases.list('kube-system', { labelSelector: IDENTITY_LABEL });
    for (const l of list.items as Lease[]) {
      const renewed = Date.parse(l.spec?.renewTime ?? '');
      const duration = (l.spec?.leaseDurationSeconds ?? IDENTITY_LEASE_DURATION_SECONDS) * 1000;
      if (l.metadata.name === leaseName || !(renewed + duration < now())) continue;
      try {
        await leases.delete('kube-system', l.metadata.name!, {
          preconditions: { resourceVersion: l.metadata.resourceVersion! },
        });
        opts.log('deleted an expired apiserver identity lease', { lease: l.metadata.name });
      } catch (err) {
        if (!(err instanceof ApiError && (err.code === 404 || err.code === 409))) throw err;
      }
    }
  };

  const writeOwnKey = async () => {
    const value = JSON.stringify({ ip: opts.endpointIP, port: opts.port, expires: now() + ttl });
    const current = await opts.store.get(ownKey);
    try {
      if (current) await opts.store.update(ownKey, value, current.modRevision);
      else await opts.store.create(ownKey, value);
    } catch (err) {
      // Another write of our own key raced this one; the next pass rewrites it.
      if (!(err instanceof StorageError)) throw err;
    }
  };

  /** The live servers; expired keys are deleted (CAS, so a renewal that raced wins). */
  const liveServers = async (): Promise<MasterLease[]> => {
    const { items } = await opts.store.list(MASTER_LEASES_PREFIX);
    const live: MasterLease[] = [];
    for (const kv of items) {
      let m: MasterLease | undefined;
      try {
        m = JSON.parse(kv.value) as MasterLease;
      } catch {}
      if (m && typeof m.ip === 'string' && Number.isInteger(m.port) && m.expires > now()) {
        live.push(m);
        continue;
      }
      try {
        await opts.store.delete(kv.key, kv.modRevision);
        opts.log('removed an expired API server from the kubernetes endpoints', { key: kv.key });
      } catch (err) {
        if (!(err instanceof StorageError)) throw err;
      }
    }
    return live;
  };

  const writeEndpoints = async (servers: MasterLease[]) => {
    const byPort = new Map<number, string[]>();
    for (const s of servers) byPort.set(s.port, [...(byPort.get(s.port) ?? []), s.ip]);
    const ports = [...byPort.keys()].sort((a, b) => a - b);
    const subsets = ports.map((port) => ({
      addresses: [...new Set(byPort.get(port))].sort().map((ip) => ({ ip })),
      ports: [{ name: 'https', port, protocol: 'TCP' }],
    }));
    const current = await endpoints.get('default', 'kubernetes').catch((err: unknown) => {
      if (isApiError(err, 'NotFound')) return undefined;
      throw err;
    });
    if (!current || JSON.stringify(current['subsets'] ?? []) !== JSON.stringify(subsets)) {
      await endpoints.update('default', 'kubernetes', {
        metadata: {
          name: 'kubernetes',
          labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' },
          ...(current?.metadata.resourceVersion ? { resourceVersion: current.metadata.resourceVersion } : {}),
        },
        subsets,
      });
    }
    // The EndpointSlice, as upstream's endpointsadapter writes it: no
    // managed-by label, so the EndpointSlice controller leaves it alone.
    // One slice has one port list, so it carries the first port's servers
    // (every server, when they share a port, as in any real cluster).
    const first = subsets[0];
    const slice = {
      metadata: { name: 'kubernetes', labels: { 'kubernetes.io/service-name': 'kubernetes' } },
      addressType: 'IPv4',
      endpoints: (first?.addresses ?? []).map((a) => ({ addresses: [a.ip], conditions: { ready: true } })),
      ports: first?.ports ?? [],
    };
    const currentSlice = await slices.get('default', 'kubernetes').catch((err: unknown) => {
      if (isApiError(err, 'NotFound')) return undefined;
      throw err;
    });
    if (!currentSlice) {
      await slices.create('default', slice);
    } else if (
      JSON.stringify([currentSlice['endpoints'], currentSlice['ports']]) !==
      JSON.stringify([slice.endpoints, slice.ports])
    ) {
      await slices.update('default', 'kubernetes', {
        ...slice,
        metadata: { ...slice.metadata, resourceVersion: currentSlice.metadata.resourceVersion! },
      });
    }
  };

  const reconcile = async () => {
    if (stopped) return;
    await writeOwnKey();
    await writeEndpointsRetrying(await liveServers());
    if (now() - lastIdentityRenew >= IDENTITY_RENEW_MS - 1) {
      await renewIdentity();
      await collectExpiredIdentities();
      lastIdentityRenew = now();
    }
  };

  // Several servers rewrite the same objects: a conflict means another one
  // just wrote, so read again and compare.
  const writeEndpointsRetrying = async (servers: MasterLease[]) => {
    for (let i = 0; ; i++) {
      try {
        return await writeEndpoints(servers);
      } catch (err) {
        if (i >= 3 || !(err instanceof ApiError && (err.code === 409 || err.code === 404))) throw err;
      }
    }
  };

  await reconcile();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const tick = () => {
    running = reconcile()
      .catch((err: unknown) =>
        opts.log.warn('failed to reconcile the kubernetes endpoints', {
          error: String((err as Error)?.message ?? err),
        }),
      )
      .finally(() => {
        running = undefined;
        if (!stopped) timer = setTimeout(tick, interval);
      });
  };
  timer = setTimeout(tick, interval);

  return {
    leaseName,
    reconcile,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      // Upstream's RemoveEndpoints on shutdown: the others need not wait out
      // the TTL. Bounded: a datastore that is gone must not hold up shutdown.
      const remove = (async () => {
        await running;
        await opts.store.delete(ownKey);
        await writeEndpointsRetrying(await liveServers());
      })();
      remove.catch(() => {}); // reported below, or too late to matter
      try {
        await Promise.race([
          remove,
          new Promise((_, reject) =>
            setTimeout(() => reject(new Error('timed out after 3 s')), 3_000).unref(),
          ),
        ]);
      } catch (err) {
        opts.log.warn('failed to remove this server from the kubernetes endpoints', {
          error: String((err as Error)?.message ?? err),
        });
      }
    },
  };
}
