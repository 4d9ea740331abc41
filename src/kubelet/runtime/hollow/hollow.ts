// The hollow runtime: CRI's RuntimeService and ImageService with no
// containers behind them, like kwok's fake nodes or kubemark's hollow
// kubelet. It lets one process host many nodes for scale tests, and lets the
// kubelet's logic be tested without containerd.
//
// What it pretends:
//   - A sandbox gets an IP from the node's podCIDR (the first host address
//     is left for the bridge, as host-local does), released when it stops.
//   - A container "runs" from StartContainer until it is stopped, unless its
//     command line (command + args, joined by spaces) says otherwise. The
//     rules, read the way a shell would run the usual test commands:
//       `exit N`          it exits with code N (at start, or after a sleep);
//       `sleep S`         it exits after S seconds (code 0 unless `exit N`
//                         follows); `sleep infinity` never exits;
//       `true` / `false`  as the first word: exits 0 / 1 at once;
//       `trap '' TERM`    it ignores SIGTERM, so StopContainer only ends it
//                         with SIGKILL once the timeout is over (exit 137).
//     Otherwise SIGTERM ends it at once with exit code 143, as a process
//     that does not handle the signal would.
//   - Images are "pulled" instantly; the image id is a digest of the name.
//     A pull from a registry under the reserved `.invalid` domain (RFC 2606),
//     e.g. `registry.invalid/app:1`, fails, for tests of ErrImagePull.
//   - ExecSync follows the same rules (output is empty). Streaming (exec,
//     attach, port-forward) has nothing to connect to and is refused.
//   - Stats (ListContainerStats, ListPodSandboxStats) are believable made-up
//     numbers, for scale tests of the Summary API and the metrics pipeline:
//     each running container uses a steady 1 to 50 millicores (capped by its
//     CPU limit) and 4 to 64 MiB of working set, both fixed by a hash of its
//     id, so successive samples give a steady rate.
//
// Time comes from an injected clock, so tests drive sleeps and grace periods
// without waiting.

import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { deepCopy } from '../../../api/meta.ts';
import type { Clock } from '../../../client/workqueue.ts';
import { realClock } from '../../../client/workqueue.ts';
import {
  type Container,
  type ContainerConfig,
  type ContainerState,
  type ContainerStats,
  type ContainerStatus,
  type ExecSyncResult,
  type Image,
  type ImageSpec,
  type PodSandbox,
  type PodSandboxConfig,
  type PodSandboxState,
  type PodSandboxStats,
  type PodSandboxStatus,
  type Runtime,
  RuntimeError,
} from '../runtime.ts';

export interface HollowRuntimeOptions {
  /** The node's podCIDR, read at every RunPodSandbox (the kubelet learns it from its Node). */
  podCIDR?: () => string | undefined;
  /** Wall-clock time for the timestamps the runtime reports. */
  now?: () => Date;
  /** Timers for `sleep` and for the SIGKILL after a stop timeout. */
  clock?: Clock;
  /** Images present from the start (like a node's preloaded images). */
  images?: string[];
}

/** Used when the node has no podCIDR yet (no IPAM controller): containerd's default CNI range. */
export const FALLBACK_POD_CIDR = '10.88.0.0/16';

/** What a hollow container's command line makes it do. */
export interface HollowBehaviour {
  /** Seconds until it exits by itself; undefined: it runs until stopped. */
  exitAfterSeconds?: number;
  exitCode: number;
  ignoresSIGTERM: boolean;
}

export function hollowBehaviour(commandLine: string[]): HollowBehaviour {
  const line = commandLine.join(' ');
  const words = line.trim().split(/\s+/);
  const ignoresSIGTERM = /\btrap\s+(''|"")\s+(SIG)?TERM\b/.test(line);
  const exit = /\bexit\s+(\d+)\b/.exec(line);
  const sleep = /\bsleep\s+(infinity|\d+(?:\.\d+)?)\b/.exec(line);
  const exitCode = exit ? Number(exit[1]) : 0;
  if (sleep && (!exit || sleep.index < exit.index)) {
    if (sleep[1] === 'infinity') return { exitCode, ignoresSIGTERM };
    return { exitAfterSeconds: Number(sleep[1]), exitCode, ignoresSIGTERM };
  }
  if (exit) return { exitAfterSeconds: 0, exitCode, ignoresSIGTERM };
  const first = words[0]?.replace(/^.*\//, '');
  if (first === 'true') return { exitAfterSeconds: 0, exitCode: 0, ignoresSIGTERM };
  if (first === 'false') return { exitAfterSeconds: 0, exitCode: 1, ignoresSIGTERM };
  return { exitCode: 0, ignoresSIGTERM };
}

interface SandboxRecord {
  id: string;
  config: PodSandboxConfig;
  state: PodSandboxState;
  createdAt: bigint;
  ip: string | undefined;
}

interface ContainerRecord {
  id: string;
  podSandboxId: string;
  config: ContainerConfig;
  imageRef: string;
  state: ContainerState;
  createdAt: bigint;
  startedAt: bigint;
  finishedAt: bigint;
  exitCode: number;
  reason: string;
  behaviour: HollowBehaviour;
  /** The sandbox's log directory: logPath is relative to it. */
  logDirectory: string;
  /** The pending self-exit or SIGKILL timer. */
  timer?: unknown;
  killAt?: number;
  /** Resolves every StopContainer call waiting for this container to exit. */
  exited: Array<() => void>;
}

const newId = () => randomBytes(32).toString('hex');

/** Docker's reference normalisation: `busybox` is `docker.io/library/busybox:latest`. */
export function normalizeImage(image: string): string {
  let name = image;
  const first = name.split('/')[0] ?? '';
  const hasRegistry =
    name.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasRegistry) name = `docker.io/${name.includes('/') ? '' : 'library/'}${name}`;
  const lastPart = name.slice(name.lastIndexOf('/') + 1);
  if (!lastPart.includes(':') && !name.includes('@')) name += ':latest';
  return name;
}

/**
 * Records by each of their labels, so a list with a label selector (the
 * kubelet asks for one pod's sandboxes and containers by its uid label on
 * every sync) looks at that pod's records, not at every record on the node.
 */
class LabelIndex<T extends { config: { labels?: Record<string, string> } }> {
  readonly #by = new Map<string, Set<T>>();

  add(r: T): void {
    for (const [k, v] of Object.entries(r.config.labels ?? {})) {
      const key = `${k}\0${v}`;
      const set = this.#by.get(key) ?? new Set<T>();
      this.#by.set(key, set);
      set.add(r);
    }
  }

  remove(r: T): void {
    for (const [k, v] of Object.entries(r.config.labels ?? {})) {
      const key = `${k}\0${v}`;
      const set = this.#by.get(key);
      set?.delete(r);
      if (set?.size === 0) this.#by.delete(key);
    }
  }

  /** The records that can match `selector` (a superset), or undefined for "all of them". */
  candidates(selector: Record<string, string> | undefined): Iterable<T> | undefined {
    let best: Set<T> | undefined;
    for (const [k, v] of Object.entries(selector ?? {})) {
      const set = this.#by.get(`${k}\0${v}`);
      if (!set) return [];
      if (!best || set.size < best.size) best = set;
    }
    return best;
  }
}

export class HollowRuntime implements Runtime {
  readonly kind = 'hollow';
  readonly #sandboxes = new Map<string, SandboxRecord>();
  readonly #containers = new Map<string, ContainerRecord>();
  readonly #sandboxLabels = new LabelIndex<SandboxRecord>();
  readonly #containerLabels = new LabelIndex<ContainerRecord>();
  /** sandbox id → its containers. */
  readonly #containersOf = new Map<string, Set<ContainerRecord>>();
  readonly #images = new Map<string, Image>();
  readonly #ipsInUse = new Set<string>();
  readonly #podCIDR: () => string | undefined;
  readonly #now: () => Date;
  readonly #clock: Clock;

  constructor(opts: HollowRuntimeOptions = {}) {
    this.#podCIDR = opts.podCIDR ?? (() => undefined);
    this.#now = opts.now ?? (() => new Date());
    this.#clock = opts.clock ?? realClock;
    for (const image of opts.images ?? []) this.#store(normalizeImage(image));
  }

  #nanos(): bigint {
    return BigInt(this.#now().getTime()) * 1_000_000n;
  }

  async version() {
    return { runtimeName: 'hollow', runtimeVersion: '0.1.0', runtimeApiVersion: 'v1' };
  }

  // ---- sandboxes ----

  async runPodSandbox(config: PodSandboxConfig): Promise<string> {
    const id = newId();
    const hostNetwork = config.linux?.securityContext?.namespaceOptions?.network === 'NODE';
    const record: SandboxRecord = {
      id,
      config: deepCopy(config),
      state: 'SANDBOX_READY',
      createdAt: this.#nanos(),
      ip: hostNetwork ? undefined : this.#allocateIP(),
    };
    this.#sandboxes.set(id, record);
    this.#sandboxLabels.add(record);
    return id;
  }

  #allocateIP(): string {
    const cidr = this.#podCIDR() || FALLBACK_POD_CIDR;
    const [addr = '', bits = '32'] = cidr.split('/');
    const base = addr.split('.').reduce((n, o) => n * 256 + Number(o), 0);
    const size = 2 ** (32 - Number(bits));
    // .0 is the network, .1 the bridge's gateway, the last the broadcast.
    for (let i = 2; i < size - 1; i++) {
      const n = base + i;
      const ip = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
      if (!this.#ipsInUse.has(ip)) {
        this.#ipsInUse.add(ip);
        return ip;
      }
    }
    throw new RuntimeError('ResourceExhausted', `no free IP address left in ${cidr}`);
  }

  #sandbox(id: string): SandboxRecord {
    const s = this.#sandboxes.get(id);
    if (!s) throw new RuntimeError('NotFound', `an error occurred when try to find sandbox: not found ${id}`);
    return s;
  }

  async stopPodSandbox(podSandboxId: string): Promise<void> {
    const s = this.#sandboxes.get(podSandboxId);
    if (!s) return; // CRI: stopping a missing sandbox is not an error
    for (const c of this.#containersOf.get(podSandboxId) ?? []) {
      if (c.state === 'CONTAINER_RUNNING') this.#exit(c, 137);
    }
    s.state = 'SANDBOX_NOTREADY';
    if (s.ip) this.#ipsInUse.delete(s.ip);
    s.ip = undefined;
  }

  async removePodSandbox(podSandboxId: string): Promise<void> {
    const s = this.#sandboxes.get(podSandboxId);
    if (!s) return;
    await this.stopPodSandbox(podSandboxId);
    for (const c of [...(this.#containersOf.get(podSandboxId) ?? [])]) await this.removeContainer(c.id);
    this.#sandboxes.delete(podSandboxId);
    this.#sandboxLabels.remove(s);
    this.#containersOf.delete(podSandboxId);
  }

  #sandboxView(s: SandboxRecord): PodSandbox {
    return {
      id: s.id,
      metadata: { ...s.config.metadata },
      state: s.state,
      createdAt: s.createdAt,
      labels: { ...s.config.labels },
      annotations: { ...s.config.annotations },
    };
  }

  async podSandboxStatus(podSandboxId: string): Promise<PodSandboxStatus> {
    const s = this.#sandbox(podSandboxId);
    return {
      ...this.#sandboxView(s),
      ...(s.ip ? { network: { ip: s.ip } } : {}),
      linux: { namespaces: { options: { ...s.config.linux?.securityContext?.namespaceOptions } } },
    };
  }

  async listPodSandbox(filter: { state?: PodSandboxState; labelSelector?: Record<string, string> } = {}) {
    return [...(this.#sandboxLabels.candidates(filter.labelSelector) ?? this.#sandboxes.values())]
      .filter(
        (s) => (!filter.state || s.state === filter.state) && matches(s.config.labels, filter.labelSelector),
      )
      .map((s) => this.#sandboxView(s));
  }

  // ---- containers ----

  async createContainer(podSandboxId: string, config: ContainerConfig): Promise<string> {
    const s = this.#sandbox(podSandboxId);
    if (s.state !== 'SANDBOX_READY') {
      throw new RuntimeError('Unknown', `sandbox container "${podSandboxId}" is not running`);
    }
    const id = newId();
    const record: ContainerRecord = {
      id,
      podSandboxId,
      config: deepCopy(config),
      imageRef: imageId(normalizeImage(config.image.image)),
      state: 'CONTAINER_CREATED',
      createdAt: this.#nanos(),
      startedAt: 0n,
      finishedAt: 0n,
      exitCode: 0,
      reason: '',
      behaviour: hollowBehaviour([...(config.command ?? []), ...(config.args ?? [])]),
      logDirectory: s.config.logDirectory ?? '',
      exited: [],
    };
    this.#containers.set(id, record);
    this.#containerLabels.add(record);
    const siblings = this.#containersOf.get(podSandboxId) ?? new Set<ContainerRecord>();
    this.#containersOf.set(podSandboxId, siblings);
    siblings.add(record);
    return id;
  }

  #container(id: string): ContainerRecord {
    const c = this.#containers.get(id);
    if (!c)
      throw new RuntimeError('NotFound', `an error occurred when try to find container "${id}": not found`);
    return c;
  }

  async startContainer(containerId: string): Promise<void> {
    const c = this.#container(containerId);
    if (c.state !== 'CONTAINER_CREATED') {
      throw new RuntimeError('Unknown', `container ${containerId} is not in created state: ${c.state}`);
    }
    c.state = 'CONTAINER_RUNNING';
    c.startedAt = this.#nanos();
    const after = c.behaviour.exitAfterSeconds;
    if (after === 0) this.#exit(c, c.behaviour.exitCode);
    else if (after !== undefined) {
      c.timer = this.#clock.setTimeout(() => this.#exit(c, c.behaviour.exitCode), after * 1000);
      // A pretend process must not keep the real one alive.
      (c.timer as { unref?: () => void }).unref?.();
    }
  }

  #exit(c: ContainerRecord, exitCode: number): void {
    if (c.state !== 'CONTAINER_RUNNING') return;
    if (c.timer !== undefined) this.#clock.clearTimeout(c.timer);
    c.timer = undefined;
    c.state = 'CONTAINER_EXITED';
    c.finishedAt = this.#nanos();
    c.exitCode = exitCode;
    c.reason = exitCode === 0 ? 'Completed' : 'Error';
    for (const resolve of c.exited.splice(0)) resolve();
  }

  async stopContainer(containerId: string, timeoutSeconds: number): Promise<void> {
    const c = this.#containers.get(containerId);
    if (c?.state !== 'CONTAINER_RUNNING') return;
    if (!c.behaviour.ignoresSIGTERM || timeoutSeconds <= 0) {
      this.#exit(c, c.behaviour.ignoresSIGTERM ? 137 : 143);
      return;
    }
    const done = new Promise<void>((resolve) => c.exited.push(resolve));
    // A second stop with a shorter timeout brings the SIGKILL forward.
    const killAt = this.#clock.now() + timeoutSeconds * 1000;
    if (c.killAt === undefined || killAt < c.killAt) {
      if (c.timer !== undefined) this.#clock.clearTimeout(c.timer);
      c.killAt = killAt;
      c.timer = this.#clock.setTimeout(() => this.#exit(c, 137), timeoutSeconds * 1000);
    }
    await done;
  }

  /** Hollow containers write no logs: only the container must exist (and run, as containerd asks). */
  async reopenContainerLog(containerId: string): Promise<void> {
    const c = this.#containers.get(containerId);
    if (!c)
      throw new RuntimeError(
        'NotFound',
        `an error occurred when try to find container "${containerId}": not found`,
      );
    if (c.state !== 'CONTAINER_RUNNING') throw new RuntimeError('Unknown', `container is not running`);
  }

  async removeContainer(containerId: string): Promise<void> {
    const c = this.#containers.get(containerId);
    if (!c) return;
    this.#exit(c, 137);
    this.#containers.delete(containerId);
    this.#containerLabels.remove(c);
    this.#containersOf.get(c.podSandboxId)?.delete(c);
  }

  #containerView(c: ContainerRecord): Container {
    return {
      id: c.id,
      podSandboxId: c.podSandboxId,
      metadata: { ...c.config.metadata },
      // As containerd, the image by its full reference (busybox → docker.io/library/busybox:latest).
      image: { image: normalizeImage(c.config.image.image) },
      imageRef: c.imageRef,
      state: c.state,
      createdAt: c.createdAt,
      labels: { ...c.config.labels },
      annotations: { ...c.config.annotations },
    };
  }

  async listContainers(
    filter: { podSandboxId?: string; state?: ContainerState; labelSelector?: Record<string, string> } = {},
  ): Promise<Container[]> {
    const candidates = filter.podSandboxId
      ? (this.#containersOf.get(filter.podSandboxId) ?? [])
      : (this.#containerLabels.candidates(filter.labelSelector) ?? this.#containers.values());
    return [...candidates]
      .filter(
        (c) =>
          (!filter.podSandboxId || c.podSandboxId === filter.podSandboxId) &&
          (!filter.state || c.state === filter.state) &&
          matches(c.config.labels, filter.labelSelector),
      )
      .map((c) => this.#containerView(c));
  }

  async containerStatus(containerId: string): Promise<ContainerStatus> {
    const c = this.#container(containerId);
    const { podSandboxId: _, ...view } = this.#containerView(c);
    return {
      ...view,
      startedAt: c.startedAt,
      finishedAt: c.finishedAt,
      exitCode: c.exitCode,
      reason: c.reason,
      message: '',
      mounts: structuredClone(c.config.mounts ?? []),
      logPath: c.config.logPath ? join(c.logDirectory, c.config.logPath) : '',
    };
  }

  // ---- stats ----

  /** A running container's made-up usage, steady per container (see the header). */
  #containerStats(c: ContainerRecord, nowNs: number): ContainerStats {
    const h = createHash('sha256').update(c.id).digest();
    const limit = c.config.linux?.resources;
    const limitMillicores =
      limit?.cpuQuota && limit.cpuPeriod ? (limit.cpuQuota / limit.cpuPeriod) * 1000 : Infinity;
    const millicores = Math.min(1 + (h.readUInt16BE(0) % 50), limitMillicores);
    const workingSet = (4 + (h.readUInt16BE(2) % 61)) * 1024 * 1024;
    const runningNs = Math.max(0, nowNs - Number(c.startedAt));
    return {
      attributes: {
        id: c.id,
        metadata: { ...c.config.metadata },
        labels: { ...c.config.labels },
        annotations: { ...c.config.annotations },
      },
      cpu: {
        timestamp: nowNs,
        usageCoreNanoSeconds: Math.round((runningNs * millicores) / 1000),
        usageNanoCores: Math.round(millicores * 1_000_000),
      },
      memory: {
        timestamp: nowNs,
        workingSetBytes: workingSet,
        usageBytes: workingSet + 1024 * 1024,
        rssBytes: Math.round(workingSet * 0.75),
        pageFaults: 0,
        majorPageFaults: 0,
      },
      writableLayer: { timestamp: nowNs, usedBytes: 4096, inodesUsed: 1 },
    };
  }

  async listContainerStats(
    filter: { id?: string; podSandboxId?: string; labelSelector?: Record<string, string> } = {},
  ): Promise<ContainerStats[]> {
    const nowNs = Number(this.#nanos());
    const candidates = filter.id
      ? [this.#containers.get(filter.id)].filter((c) => c !== undefined)
      : filter.podSandboxId
        ? (this.#containersOf.get(filter.podSandboxId) ?? [])
        : (this.#containerLabels.candidates(filter.labelSelector) ?? this.#containers.values());
    return [...candidates]
      .filter(
        (c) =>
          c.state === 'CONTAINER_RUNNING' &&
          (!filter.podSandboxId || c.podSandboxId === filter.podSandboxId) &&
          matches(c.config.labels, filter.labelSelector),
      )
      .map((c) => this.#containerStats(c, nowNs));
  }

  async listPodSandboxStats(
    filter: { id?: string; labelSelector?: Record<string, string> } = {},
  ): Promise<PodSandboxStats[]> {
    const nowNs = Number(this.#nanos());
    const out: PodSandboxStats[] = [];
    for (const s of this.#sandboxLabels.candidates(filter.labelSelector) ?? this.#sandboxes.values()) {
      if (s.state !== 'SANDBOX_READY' || (filter.id && s.id !== filter.id)) continue;
      if (!matches(s.config.labels, filter.labelSelector)) continue;
      const containers = [...(this.#containersOf.get(s.id) ?? [])]
        .filter((c) => c.state === 'CONTAINER_RUNNING')
        .map((c) => this.#containerStats(c, nowNs));
      const sum = (f: (c: ContainerStats) => number | undefined) =>
        containers.reduce((n, c) => n + (f(c) ?? 0), 0);
      // Bytes on the pod's interface grow with its age, as a quiet pod's would.
      const ageS = Math.max(0, (nowNs - Number(s.createdAt)) / 1e9);
      const eth0 = {
        name: 'eth0',
        rxBytes: Math.round(ageS * 200),
        rxErrors: 0,
        txBytes: Math.round(ageS * 150),
        txErrors: 0,
      };
      out.push({
        attributes: {
          id: s.id,
          metadata: { ...s.config.metadata },
          labels: { ...s.config.labels },
          annotations: { ...s.config.annotations },
        },
        linux: {
          cpu: {
            timestamp: nowNs,
            usageCoreNanoSeconds: sum((c) => c.cpu?.usageCoreNanoSeconds),
            usageNanoCores: sum((c) => c.cpu?.usageNanoCores),
          },
          memory: { timestamp: nowNs, workingSetBytes: sum((c) => c.memory?.workingSetBytes) },
          network: { timestamp: nowNs, defaultInterface: eth0, interfaces: [eth0] },
          process: { timestamp: nowNs, processCount: containers.length },
          containers,
        },
      });
    }
    return out;
  }

  async execSync(containerId: string, cmd: string[]): Promise<ExecSyncResult> {
    const c = this.#container(containerId);
    if (c.state !== 'CONTAINER_RUNNING') {
      throw new RuntimeError('Unknown', `container ${containerId} is not running`);
    }
    const b = hollowBehaviour(cmd);
    return { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), exitCode: b.exitCode };
  }

  async exec(): Promise<string> {
    throw new RuntimeError('Unimplemented', 'the hollow runtime has no streaming server');
  }

  async attach(): Promise<string> {
    throw new RuntimeError('Unimplemented', 'the hollow runtime has no streaming server');
  }

  async portForward(): Promise<string> {
    throw new RuntimeError('Unimplemented', 'the hollow runtime has no streaming server');
  }

  // ---- images ----

  async pullImage(image: ImageSpec): Promise<string> {
    const name = normalizeImage(image.image);
    const host = name.split('/')[0] ?? '';
    if (/\.invalid(:\d+)?$/.test(host)) {
      throw new RuntimeError(
        'Unknown',
        `PullImage "${image.image}": failed to resolve reference "${name}": ${host}: no such host`,
      );
    }
    return this.#store(name);
  }

  #store(name: string): string {
    const id = imageId(name);
    const existing = this.#images.get(id);
    if (existing) {
      if (!existing.repoTags.includes(name)) existing.repoTags.push(name);
    } else {
      this.#images.set(id, { id, repoTags: [name], repoDigests: [], size: 1_000_000n });
    }
    return id;
  }

  async imageStatus(image: ImageSpec): Promise<Image | undefined> {
    const name = normalizeImage(image.image);
    for (const img of this.#images.values()) {
      if (img.id === image.image || img.repoTags.includes(name)) return structuredClone(img);
    }
    return undefined;
  }

  async listImages(): Promise<Image[]> {
    return [...this.#images.values()].map((i) => structuredClone(i));
  }

  async removeImage(image: ImageSpec): Promise<void> {
    const found = await this.imageStatus(image);
    if (found) this.#images.delete(found.id);
  }

  async close(): Promise<void> {
    for (const c of this.#containers.values()) {
      if (c.timer !== undefined) this.#clock.clearTimeout(c.timer);
      c.timer = undefined;
    }
  }
}

function imageId(normalized: string): string {
  return `sha256:${createHash('sha256').update(normalized).digest('hex')}`;
}

function matches(labels: Record<string, string> | undefined, selector: Record<string, string> | undefined) {
  if (!selector) return true;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}
