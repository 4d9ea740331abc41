// The ingress controller of a node (k3s ships Traefik as a DaemonSet-like
// deployment; Skiff runs this in every agent): watches Ingresses,
// IngressClasses, Services, EndpointSlices, TLS Secrets and Nodes through
// informers, builds the model (model.ts), and keeps the node's HAProxy
// equal to it (haproxy-config.ts, haproxy.ts).
//
// A sync is level-triggered over the whole model, batched (at most one per
// debounceMs, one at a time) as the NetworkPolicy controller's. When only
// endpoints moved, it is a few runtime API commands; anything else is a
// config write, a check, and a graceful reload. A config HAProxy refuses is
// never loaded: the last good one keeps serving, and the error is logged
// and retried with backoff.
//
// It also writes status.loadBalancer.ingress of the Ingresses it serves:
// the Ready nodes' addresses (ExternalIP before InternalIP), as k3s's
// servicelb and Traefik do, since every node serves every Ingress. Every
// node's controller computes the same list, so their writes agree.

import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Node, Secret } from '../api/types/core-v1.ts';
import type { Ingress } from '../api/types/networking-v1.ts';
import type { Clientset } from '../client/clientset.ts';
import { createEventRecorder, type EventRecorder } from '../client/events.ts';
import { createInformer } from '../client/informer.ts';
import { createInformerFactory } from '../client/informer-factory.ts';
import { ensureCA, ensureLeaf } from '../pki/pki.ts';
import type { Log } from '../util/log.ts';
import { createHAProxy, type HAProxy } from './haproxy.ts';
import {
  ADMIN_SOCKET,
  assignSlots,
  DEFAULT_CERT,
  fresh,
  type RenderOptions,
  renderConfig,
  runtimeCommands,
  type Slots,
} from './haproxy-config.ts';
import { buildModel, type IngressModel } from './model.ts';

export interface IngressControllerOptions {
  /** system:skiff-ingress: reads what the model needs, writes ingresses/status and events. */
  clients: Clientset;
  /** Config, maps, certificates and the admin socket (the agent's <data-dir>/ingress). */
  dir: string;
  httpPort: number;
  httpsPort: number;
  bindAddress?: string;
  nodeName?: string;
  debounceMs?: number;
  /** Another HAProxy binary (tests). */
  binary?: string;
  log?: Log;
}

export interface IngressController {
  /** Resolves after the first sync (HAProxy started); rejects when HAProxy cannot start. */
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly model: IngressModel | undefined;
  readonly syncs: { ok: number; failed: number; reloads: number; runtimeUpdates: number };
  /** Resolves once every change seen so far is served, or the sync trying it failed. */
  flushed(): Promise<void>;
}

type LBIngress = { ip: string };

/** The Ready nodes' addresses, one per node, sorted (as servicelb's). */
export function nodeAddresses(nodes: readonly Node[]): LBIngress[] {
  const ips = new Set<string>();
  for (const node of nodes) {
    const ready = node.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
    if (!ready || node.metadata.deletionTimestamp) continue;
    const addrs = node.status?.addresses ?? [];
    const ip =
      addrs.find((a) => a.type === 'ExternalIP')?.address ??
      addrs.find((a) => a.type === 'InternalIP')?.address;
    if (ip && /^\d+\.\d+\.\d+\.\d+$/.test(ip)) ips.add(ip);
  }
  return [...ips].sort().map((ip) => ({ ip }));
}

/** The node's self-signed certificate for TLS names no Secret covers (as ingress-nginx's fake certificate). */
function ensureDefaultCertificate(dir: string): string {
  const ca = ensureCA(join(dir, 'default-ca'), 'skiff-ingress-default-ca');
  const leaf = ensureLeaf(ca, join(dir, 'default-ca'), 'default', {
    commonName: 'skiff-ingress-default',
    dnsNames: ['ingress.local'],
    usage: 'server',
  });
  return `${leaf.cert.trim()}\n${leaf.key.trim()}\n`;
}

export function createIngressController(opts: IngressControllerOptions): IngressController {
  const informers = createInformerFactory(opts.clients);
  const ingresses = informers.informer('ingresses');
  const classes = informers.informer('ingressClasses');
  const services = informers.informer('services');
  const slices = informers.informer('endpointSlices');
  const nodes = informers.informer('nodes');
  // Only TLS Secrets: the controller has no business reading the others.
  const secrets = createInformer<Secret>(opts.clients.secrets, { fieldSelector: 'type=kubernetes.io/tls' });
  const recorder: EventRecorder = createEventRecorder(opts.clients, {
    component: 'skiff-ingress',
    ...(opts.nodeName ? { host: opts.nodeName } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  });
  const render: RenderOptions = {
    dir: opts.dir,
    httpPort: opts.httpPort,
    httpsPort: opts.httpsPort,
    ...(opts.bindAddress ? { bindAddress: opts.bindAddress } : {}),
  };
  const configFile = join(opts.dir, 'haproxy.cfg');
  const haproxy: HAProxy = createHAProxy({
    dir: opts.dir,
    configFile,
    adminSocket: join(opts.dir, ADMIN_SOCKET),
    ...(opts.binary ? { binary: opts.binary } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  });
  const debounceMs = opts.debounceMs ?? 20;
  const syncs = { ok: 0, failed: 0, reloads: 0, runtimeUpdates: 0 };
  let model: IngressModel | undefined;
  let applied: { structure: string; slots: Slots } | undefined;
  let haproxyUp = false;
  const reported = new Set<string>();
  let dirty = false;
  let started = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let backoffMs = 0;
  let failed = false;
  let waiters: (() => void)[] = [];
  let firstError: Error | undefined;

  const schedule = (delayMs = debounceMs) => {
    dirty = true;
    if (!started || stopped || timer || running) return;
    timer = setTimeout(() => {
      timer = undefined;
      running = runSync().finally(() => {
        running = undefined;
        if (dirty) schedule(backoffMs || debounceMs);
        if (!dirty || failed) {
          const w = waiters;
          waiters = [];
          for (const f of w) f();
        }
      });
    }, delayMs);
  };

  const writeFiles = (files: Map<string, string>) => {
    mkdirSync(join(opts.dir, 'certs'), { recursive: true, mode: 0o700 });
    const keep = new Set(['certs/default.pem']);
    for (const [name, content] of files) {
      mkdirSync(dirname(join(opts.dir, name)), { recursive: true });
      writeFileSync(join(opts.dir, name), content, { mode: name.startsWith('certs/') ? 0o600 : 0o644 });
      keep.add(name);
    }
    for (const f of readdirSync(join(opts.dir, 'certs')))
      if (!keep.has(`certs/${f}`)) rmSync(join(opts.dir, 'certs', f), { force: true });
  };

  const apply = async (next: IngressModel) => {
    const assigned = assignSlots(next, applied?.slots ?? new Map());
    let slots = assigned.slots;
    let rendered = renderConfig(next, slots, render);
    if (applied && !assigned.reload && rendered.structure === applied.structure) {
      const cmds = runtimeCommands(applied.slots, slots);
      if (cmds.length === 0) return;
      const answer = await haproxy.runtime(cmds);
      // HAProxy answers a refused command with a message, not a status: one
      // it did not take means the running proxy is not what we think, so the
      // sync fails and the next one retries from a reload.
      if (/No such|Unknown command|Require|[Ii]nvalid|[Ee]rror|[Uu]nable/.test(answer)) {
        applied = undefined;
        throw new Error(`HAProxy refused a runtime command: ${answer.trim()}`);
      }
      // The file follows, so a restarted HAProxy starts with the same servers.
      writeFileSync(configFile, rendered.config);
      applied = { structure: rendered.structure, slots };
      syncs.runtimeUpdates++;
      opts.log?.('ingress endpoints updated through the runtime API', {
        commands: cmds.length,
        ...(answer.trim() ? { answer: answer.trim().slice(0, 500) } : {}),
      });
      return;
    }
    // A new worker: its servers have no connections, every slot is free to use.
    slots = fresh(slots);
    rendered = renderConfig(next, slots, render);
    writeFiles(rendered.files);
    // Checked beside the live file, then moved over it: a config HAProxy
    // refuses never becomes the one a restart would load.
    writeFileSync(`${configFile}.next`, rendered.config);
    await haproxy.check(`${configFile}.next`);
    renameSync(`${configFile}.next`, configFile);
    if (!haproxyUp) {
      await haproxy.start();
      haproxyUp = true;
    } else {
      await haproxy.reload();
      syncs.reloads++;
    }
    applied = { structure: rendered.structure, slots };
    opts.log?.('ingress configuration loaded', {
      ingresses: next.ingresses.length,
      routes: next.routes.length,
      backends: next.backends.length,
      certificates: next.certificates.length,
    });
  };

  const reportProblems = (next: IngressModel) => {
    const now = new Set<string>();
    for (const p of next.problems) {
      const key = `${p.ingress}\u0000${p.reason}\u0000${p.message}`;
      now.add(key);
      if (reported.has(key)) continue;
      const [ns, name] = p.ingress.split('/');
      const ing = ingresses.indexer.get(`${ns}/${name}`) as Ingress | undefined;
      if (ing) recorder.event({ ...ing, kind: 'Ingress' }, 'Warning', p.reason, p.message);
      opts.log?.warn('ingress problem', { ingress: p.ingress, reason: p.reason, message: p.message });
    }
    reported.clear();
    for (const k of now) reported.add(k);
  };

  // Status is written apart from the proxy's sync, so a thousand status
  // writes (a first start, a node joining) never hold up a route change;
  // single-flight, rerun when asked again meanwhile.
  let statusRunning: Promise<void> | undefined;
  let statusAgain = false;
  const STATUS_CONCURRENCY = 8;
  const writeStatus = async (next: IngressModel) => {
    const want = nodeAddresses(nodes.indexer.list() as Node[]);
    const wantJSON = JSON.stringify(want);
    const stale = next.ingresses
      .map((key) => ingresses.indexer.get(key) as Ingress | undefined)
      .filter((ing): ing is Ingress => {
        if (!ing) return false;
        const have = (ing.status?.loadBalancer?.ingress ?? []).map((i) => ({ ip: i.ip }));
        return JSON.stringify(have) !== wantJSON;
      });
    await Promise.all(
      Array.from({ length: Math.min(STATUS_CONCURRENCY, stale.length) }, async () => {
        for (let ing = stale.shift(); ing; ing = stale.shift()) {
          const copy: Ingress = structuredClone(ing);
          copy.status = { ...copy.status, loadBalancer: { ingress: want } };
          try {
            await opts.clients.ingresses.updateStatus(copy);
          } catch (err) {
            // A conflict: another node wrote it a moment ago; the watch brings it and the next pass compares again.
            const code = (err as { code?: number }).code;
            if (code !== 409 && code !== 404)
              opts.log?.error('writing Ingress status failed', {
                ingress: `${ing.metadata.namespace}/${ing.metadata.name}`,
                error: String(err),
              });
          }
        }
      }),
    );
  };
  const scheduleStatus = () => {
    if (statusRunning) {
      statusAgain = true;
      return;
    }
    statusRunning = (async () => {
      do {
        statusAgain = false;
        if (model && !stopped) await writeStatus(model);
      } while (statusAgain && !stopped);
    })().finally(() => (statusRunning = undefined));
  };

  const runSync = async () => {
    dirty = false;
    failed = false;
    try {
      const next = buildModel({
        ingresses: ingresses.indexer.list() as Ingress[],
        classes: classes.indexer.list(),
        services: services.indexer.list(),
        endpointSlices: slices.indexer.list(),
        secrets: secrets.indexer.list(),
      });
      await apply(next);
      model = next;
      reportProblems(next);
      scheduleStatus();
      syncs.ok++;
      backoffMs = 0;
    } catch (err) {
      failed = true;
      dirty = true;
      syncs.failed++;
      if (!haproxyUp) firstError ??= err as Error;
      backoffMs = Math.min(Math.max(backoffMs * 2, 500), 30_000);
      opts.log?.error('syncing the ingress proxy failed', { error: String(err), retryMs: backoffMs });
    }
  };

  const changed = () => schedule();
  for (const inf of [ingresses, classes, services, slices, nodes, secrets] as const)
    (inf as typeof ingresses).on({ add: changed, update: changed, delete: changed });

  return {
    get model() {
      return model;
    },
    syncs,
    async start() {
      mkdirSync(join(opts.dir, 'certs'), { recursive: true, mode: 0o700 });
      writeFileSync(join(opts.dir, DEFAULT_CERT), ensureDefaultCertificate(opts.dir), { mode: 0o600 });
      await Promise.all([informers.start(), secrets.start()]);
      started = true;
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        schedule(0);
      });
      if (!haproxyUp && firstError) {
        const err = firstError;
        await this.stop();
        throw err;
      }
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
      await statusRunning;
      informers.stop();
      secrets.stop();
      await recorder.flush();
      await haproxy.stop();
      haproxyUp = false;
      for (const f of waiters) f();
      waiters = [];
    },
    flushed() {
      if (!running && !timer && !dirty) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
  };
}
