// The kubelet's Node: registration and status, as upstream's
// kubelet_node_status.go and pkg/kubelet/nodestatus/setters.go.
//
// The Node is registered with the default labels (hostname, os, arch, and
// the role label on the server's node), then its status is recomputed every
// 10 s (nodeStatusUpdateFrequency) and written when something changed, or at
// least every 5 min (nodeStatusReportFrequency): with the Lease as the
// heartbeat, an unchanged status need not be rewritten every 10 s.
//
// Allocatable is capacity less --kube-reserved, --system-reserved and the
// hard eviction thresholds (cm/node-allocatable.ts), as upstream's; by
// default only the thresholds (memory.available<100Mi, nodefs.available<10%).

import { readFileSync, statfsSync } from 'node:fs';
import { availableParallelism, hostname, networkInterfaces, release, totalmem } from 'node:os';
import { isApiError } from '../api/errors.ts';
import { jsonEqual, rfc3339 } from '../api/meta.ts';
import type { Node, NodeCondition, NodeStatus } from '../api/types/core-v1.ts';
import type { Clientset } from '../client/clientset.ts';
import type { Clock } from '../client/workqueue.ts';
import { formatCPU, nodeAllocatable } from './cm/node-allocatable.ts';
import { defaultKubeletConfig, type KubeletConfig } from './config.ts';
import type { Runtime } from './runtime/runtime.ts';

export const KUBELET_VERSION = 'v1.32.0+skiff';
export const CONTROL_PLANE_ROLE_LABEL = 'node-role.kubernetes.io/control-plane';

/** What the machine has, read once at start (upstream cAdvisor's MachineInfo). */
export interface MachineInfo {
  cpu: number;
  memoryBytes: number;
  ephemeralStorageBytes: number;
  machineID: string;
  systemUUID: string;
  bootID: string;
  kernelVersion: string;
  osImage: string;
}

const readTrim = (path: string): string => {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
};

/** The conditions the kubelet itself reports; any other on the Node belongs to someone else. */
const KUBELET_CONDITIONS = new Set(['MemoryPressure', 'DiskPressure', 'PIDPressure', 'Ready']);

export function readMachineInfo(dataDir: string): MachineInfo {
  let ephemeralStorageBytes = 0;
  try {
    const fs = statfsSync(dataDir);
    ephemeralStorageBytes = fs.bsize * fs.blocks;
  } catch {}
  const osRelease = readTrim('/etc/os-release');
  return {
    cpu: availableParallelism(),
    memoryBytes: totalmem(),
    ephemeralStorageBytes,
    machineID: readTrim('/etc/machine-id'),
    systemUUID: readTrim('/sys/class/dmi/id/product_uuid').toLowerCase(),
    bootID: readTrim('/proc/sys/kernel/random/boot_id'),
    kernelVersion: release(),
    osImage: /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(osRelease)?.[1] ?? 'Linux',
  };
}

/** Go's GOARCH for this machine, as the kubernetes.io/arch label has it. */
export const goArch = (): string =>
  ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' })[
    process.arch as string
  ] ?? process.arch;

/** The first non-loopback IPv4 address: the node's InternalIP unless --node-ip says otherwise. */
export function defaultNodeIP(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

export const defaultNodeName = (): string => hostname().toLowerCase();

export interface NodeStatusOptions {
  clients: Clientset;
  nodeName: string;
  nodeIP: string;
  nodeExternalIP?: string;
  runtime: Runtime;
  machine: MachineInfo;
  /** Extra labels (--node-label), and the control-plane role on the server's node. */
  labels?: Record<string, string>;
  controlPlane?: boolean;
  /** Overrides of capacity (hollow nodes advertise what they are told). */
  capacity?: Record<string, string>;
  maxPods?: number;
  /** --kube-reserved, --system-reserved and --eviction-hard, which allocatable leaves out (default: upstream's thresholds). */
  reservation?: Pick<KubeletConfig, 'kubeReserved' | 'systemReserved' | 'evictionHard'>;
  /**
   * The kubelet's own conditions other than Ready (MemoryPressure,
   * DiskPressure, PIDPressure), from the eviction manager: true when under pressure.
   */
  pressure?(): { memory: boolean; disk: boolean; pid: boolean };
  /** Where the kubelet server listens (status.daemonEndpoints; upstream --port, 10250). */
  kubeletPort?: number;
  /** Health of the kubelet's own parts (PLEG): a reason to report NotReady. */
  notReadyReason?(): string | undefined;
  now(): Date;
  clock: Clock;
  updateFrequencyMs?: number;
  reportFrequencyMs?: number;
  /**
   * The Node as the kubelet's cache has it: compared against instead of a
   * GET at every update, which for 1,000 hollow nodes was 100 GETs/s.
   */
  cachedNode?(): Node | undefined;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface NodeStatusManager {
  /** Registers the Node (or adopts the one there), retrying until it succeeds. */
  register(): Promise<Node>;
  start(): void;
  stop(): void;
  /** Recomputes and, when changed or due, writes the status now. */
  update(force?: boolean): Promise<void>;
}

const KiB = (bytes: number) => `${Math.floor(bytes / 1024)}Ki`;

export function createNodeStatusManager(opts: NodeStatusOptions): NodeStatusManager {
  const { clients, nodeName, clock } = opts;
  const updateEvery = opts.updateFrequencyMs ?? 10_000;
  const reportEvery = opts.reportFrequencyMs ?? 5 * 60_000;
  let lastReport = Number.NEGATIVE_INFINITY;
  let lastReported: NodeStatus | undefined;
  let timer: unknown;
  let stopped = true;
  let runtimeVersion = '';

  const labels = (): Record<string, string> => ({
    'beta.kubernetes.io/arch': goArch(),
    'beta.kubernetes.io/os': 'linux',
    'kubernetes.io/arch': goArch(),
    'kubernetes.io/hostname': nodeName,
    'kubernetes.io/os': 'linux',
    ...(opts.controlPlane ? { [CONTROL_PLANE_ROLE_LABEL]: 'true' } : {}),
    ...opts.labels,
  });

  function capacity(): { capacity: Record<string, string>; allocatable: Record<string, string> } {
    const m = opts.machine;
    const pods = String(opts.maxPods ?? 110);
    const capacity: Record<string, string> = {
      cpu: String(m.cpu),
      'ephemeral-storage': KiB(m.ephemeralStorageBytes),
      'hugepages-1Gi': '0',
      'hugepages-2Mi': '0',
      memory: KiB(m.memoryBytes),
      pods,
      ...opts.capacity,
    };
    const a = nodeAllocatable(
      { cpuMilli: m.cpu * 1000, memoryBytes: m.memoryBytes, ephemeralStorageBytes: m.ephemeralStorageBytes },
      opts.reservation ?? defaultKubeletConfig(),
    );
    const allocatable: Record<string, string> = {
      cpu: formatCPU(a.cpuMilli),
      'ephemeral-storage': String(a.ephemeralStorageBytes),
      'hugepages-1Gi': '0',
      'hugepages-2Mi': '0',
      memory: KiB(a.memoryBytes),
      pods,
      ...opts.capacity,
    };
    return { capacity, allocatable };
  }

  async function readiness(): Promise<{ ok: boolean; reason: string; message: string }> {
    try {
      const v = await opts.runtime.version();
      runtimeVersion = `${v.runtimeName}://${v.runtimeVersion}`;
    } catch (err) {
      return { ok: false, reason: 'KubeletNotReady', message: `container runtime is down: ${String(err)}` };
    }
    // A CRI runtime also reports its own conditions: RuntimeReady and
    // NetworkReady must both hold (upstream runtimeErrors / networkErrors).
    const withStatus = opts.runtime as Runtime & {
      status?: () => Promise<{ type: string; status: boolean; reason: string; message: string }[]>;
    };
    if (typeof withStatus.status === 'function') {
      try {
        const conditions = await withStatus.status();
        for (const [type, what] of [
          ['RuntimeReady', 'container runtime not ready'],
          ['NetworkReady', 'container runtime network not ready'],
        ] as const) {
          const c = conditions.find((x) => x.type === type);
          if (!c?.status) {
            const detail = c ? ` reason:${c.reason} message:${c.message}` : '';
            return { ok: false, reason: 'KubeletNotReady', message: `${what}: ${type}=false${detail}` };
          }
        }
      } catch (err) {
        return {
          ok: false,
          reason: 'KubeletNotReady',
          message: `container runtime status check failed: ${String(err)}`,
        };
      }
    }
    const why = opts.notReadyReason?.();
    if (why) return { ok: false, reason: 'KubeletNotReady', message: why };
    return { ok: true, reason: 'KubeletReady', message: 'kubelet is posting ready status' };
  }

  async function images(): Promise<NodeStatus['images']> {
    // Upstream reports at most 50 images, the largest first.
    const list = await opts.runtime.listImages().catch(() => []);
    return list
      .sort((a, b) => (a.size === b.size ? 0 : a.size > b.size ? -1 : 1))
      .slice(0, 50)
      .map((i) => ({ names: [...i.repoDigests, ...i.repoTags], sizeBytes: Number(i.size) }));
  }

  async function desiredStatus(old: NodeStatus | undefined): Promise<NodeStatus> {
    const now = rfc3339(opts.now());
    const ready = await readiness();
    const condition = (type: string, ok: boolean, reason: string, message: string): NodeCondition => {
      const before = old?.conditions?.find((c) => c.type === type);
      const status = ok ? 'True' : 'False';
      return {
        type,
        status,
        lastHeartbeatTime: now,
        lastTransitionTime:
          before?.status === status && before.lastTransitionTime ? before.lastTransitionTime : now,
        reason,
        message,
      };
    };
    const m = opts.machine;
    const imageList = await images();
    const pressure = opts.pressure?.() ?? { memory: false, disk: false, pid: false };
    return {
      ...capacity(),
      conditions: [
        // Upstream's setters (MemoryPressureCondition and the others): the
        // status is True while the eviction manager sees the pressure.
        pressure.memory
          ? condition(
              'MemoryPressure',
              true,
              'KubeletHasInsufficientMemory',
              'kubelet has insufficient memory available',
            )
          : condition(
              'MemoryPressure',
              false,
              'KubeletHasSufficientMemory',
              'kubelet has sufficient memory available',
            ),
        pressure.disk
          ? condition('DiskPressure', true, 'KubeletHasDiskPressure', 'kubelet has disk pressure')
          : condition('DiskPressure', false, 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
        pressure.pid
          ? condition(
              'PIDPressure',
              true,
              'KubeletHasInsufficientPID',
              'kubelet has insufficient PID available',
            )
          : condition(
              'PIDPressure',
              false,
              'KubeletHasSufficientPID',
              'kubelet has sufficient PID available',
            ),
        condition('Ready', ready.ok, ready.reason, ready.message),
        // Conditions others own (NetworkUnavailable, from the pod network)
        // stay as they are: this status goes as a merge patch, which
        // replaces the whole list.
        ...(old?.conditions ?? []).filter((c) => !KUBELET_CONDITIONS.has(c.type ?? '')),
      ],
      addresses: [
        { type: 'InternalIP', address: opts.nodeIP },
        ...(opts.nodeExternalIP ? [{ type: 'ExternalIP', address: opts.nodeExternalIP }] : []),
        { type: 'Hostname', address: nodeName },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: opts.kubeletPort ?? 10250 } },
      nodeInfo: {
        machineID: m.machineID,
        systemUUID: m.systemUUID,
        bootID: m.bootID,
        kernelVersion: m.kernelVersion,
        osImage: m.osImage,
        containerRuntimeVersion: runtimeVersion,
        kubeletVersion: KUBELET_VERSION,
        kubeProxyVersion: '',
        operatingSystem: 'linux',
        architecture: goArch(),
      },
      // Omitted when empty, as the API server stores it (omitempty): an empty
      // list would read as a change at every update.
      ...(imageList?.length ? { images: imageList } : {}),
    };
  }

  // Conditions differ only in heartbeat: not a change worth a write.
  const withoutHeartbeats = (s: NodeStatus | undefined) => ({
    ...s,
    conditions: s?.conditions?.map(({ lastHeartbeatTime: _, ...c }) => c),
  });

  async function update(force = false): Promise<void> {
    const node = opts.cachedNode?.() ?? (await clients.nodes.get(undefined, nodeName));
    const status = await desiredStatus(node.status);
    const due = clock.now() - lastReport >= reportEvery;
    const changed = !jsonEqual(withoutHeartbeats(status), withoutHeartbeats(node.status));
    if (!force && !due && !changed && lastReported) return;
    await clients.nodes.patch(undefined, nodeName, 'merge', { status }, { subresource: 'status' });
    lastReport = clock.now();
    lastReported = status;
  }

  async function registerOnce(): Promise<Node> {
    const node: Node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: nodeName,
        labels: labels(),
        annotations: {
          'node.alpha.kubernetes.io/ttl': '0',
          'volumes.kubernetes.io/controller-managed-attach-detach': 'true',
        },
      },
      spec: {},
    };
    let registered: Node;
    try {
      registered = await clients.nodes.create(undefined, node);
      opts.log?.('node registered', { node: nodeName });
    } catch (err) {
      if (!isApiError(err, 'AlreadyExists')) throw err;
      // A Node from an earlier run: keep it, and bring its default labels up to date
      // (upstream reconcileExtendedResource/updateDefaultLabels).
      registered = await clients.nodes.patch(undefined, nodeName, 'merge', {
        metadata: { labels: labels() },
      });
      opts.log?.('node already registered', { node: nodeName });
    }
    const status = await desiredStatus(registered.status);
    registered = await clients.nodes.patch(
      undefined,
      nodeName,
      'merge',
      { status },
      { subresource: 'status' },
    );
    lastReport = clock.now();
    lastReported = status;
    return registered;
  }

  function loop(): void {
    if (stopped) return;
    update().then(
      () => {
        if (!stopped) timer = clock.setTimeout(loop, updateEvery);
      },
      (err: unknown) => {
        opts.log?.('node status update failed', { error: String(err) });
        if (!stopped) timer = clock.setTimeout(loop, updateEvery);
      },
    );
  }

  return {
    async register() {
      // Upstream retries registration with a backoff from 100 ms up to 7 s.
      for (let delay = 100; ; delay = Math.min(delay * 2, 7000)) {
        try {
          return await registerOnce();
        } catch (err) {
          opts.log?.('node registration failed', { error: String(err), retryInMs: delay });
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    },
    start() {
      if (!stopped) return;
      stopped = false;
      timer = clock.setTimeout(loop, updateEvery);
    },
    stop() {
      stopped = true;
      if (timer !== undefined) clock.clearTimeout(timer);
    },
    update,
  };
}
