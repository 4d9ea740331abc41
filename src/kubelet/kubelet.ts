// The kubelet: registers its Node and keeps its Lease, watches the pods bound
// to it, and runs each through a pod worker against the container runtime,
// reporting their status. As upstream's kubelet.go, the parts are:
//
//   node-status.ts        the Node's registration and status
//   lease.ts              the heartbeat Lease in kube-node-lease
//   pod-workers.ts        one serialized worker per pod (sync, terminate, clean up)
//   kuberuntime-manager   sandboxes and containers in the runtime (SyncPod, KillPod)
//   pod-status.ts         the pod's status from what the runtime has
//   status-manager.ts     writing that status, and finishing deletions
//   pleg.ts               noticing container changes by relisting the runtime
//
//   prober/               liveness, readiness and startup probes; lifecycle hooks
//   volumes/              the pods' volumes and the containers' mounts
//
// Probes, volumes and lifecycle hooks plug into the runtime manager through
// its hooks (RuntimeManagerHooks) and into the pod status through
// `readiness`. On the hollow runtime they are off unless asked for
// (`probes`, `volumes`): its containers do not exist to probe, hook or
// mount into, and hollow pods become Ready as kwok's do.

import { AsyncLocalStorage } from 'node:async_hooks';
import { isApiError } from '../api/errors.ts';
import { jsonEqual, rfc3339 } from '../api/meta.ts';
import type { Node, Pod } from '../api/types/core-v1.ts';
import type { Clientset } from '../client/clientset.ts';
import { createEventRecorder } from '../client/events.ts';
import { keyOf } from '../client/informer.ts';
import { type Clock, realClock } from '../client/workqueue.ts';
import { createLog, type Log } from '../util/log.ts';
import { Backoff } from './backoff.ts';
import type { CgroupManager } from './cm/cgroup-manager.ts';
import { type ContainerManager, createContainerManager } from './cm/container-manager.ts';
import { enforcedAllocatable } from './cm/node-allocatable.ts';
import { defaultKubeletConfig, type KubeletConfig } from './config.ts';
import { hostResolvConfReader, podDNSConfigurer } from './dns.ts';
import { createEvictionManager, type EvictionManager, type PodUsage } from './eviction/eviction-manager.ts';
import { diskUsage, nodeSignals } from './eviction/signals.ts';
import { createContainerGC } from './gc/container-gc.ts';
import { createImageGC } from './gc/image-gc.ts';
import { createImageManager } from './image-manager.ts';
import {
  containerNameOf,
  createRuntimeManager,
  type PodRuntimeStatus,
  type RuntimeManagerHooks,
} from './kuberuntime-manager.ts';
import { KUBERNETES_POD_UID_LABEL } from './labels.ts';
import { createNodeLease, type NodeLease } from './lease.ts';
import { createContainerLogManager } from './logs/container-log-manager.ts';
import {
  createNodeStatusManager,
  defaultNodeIP,
  type MachineInfo,
  type NodeStatusManager,
  readMachineInfo,
} from './node-status.ts';
import { createPLEG, podRuntimeFingerprint } from './pleg.ts';
import { type ContainerReadiness, generateAPIPodStatus } from './pod-status.ts';
import { createPodWorkers, type PodWorkers } from './pod-workers.ts';
import { createLifecycleHandlers } from './prober/lifecycle.ts';
import { createProbeManager, type ProbeManager } from './prober/manager.ts';
import type { Runtime } from './runtime/runtime.ts';
import { type KubeletSources, ownSources } from './sources.ts';
import { startupTracer, type TracePhase, traceRuntime, withStartupHook } from './startup-trace.ts';
import { createStatusManager } from './status-manager.ts';
import { createTokenManager } from './token-manager.ts';
import { cleanLocalPathVolumes } from './volumes/local-path-cleaner.ts';
import { createVolumeManager, type VolumeManager } from './volumes/volume-manager.ts';
import type { VolumeStats } from './volumes/volume-stats.ts';

/** The runtime calls that change something: a sync that made none saw the runtime as it left it. */
const MUTATING_CALLS = new Set([
  'runPodSandbox',
  'stopPodSandbox',
  'removePodSandbox',
  'createContainer',
  'startContainer',
  'stopContainer',
  'removeContainer',
]);

/** The runtime, counting into the current sync's store (AsyncLocalStorage) each call that changes something. */
function countingMutations(runtime: Runtime, store: AsyncLocalStorage<{ mutations: number }>): Runtime {
  return new Proxy(runtime, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== 'function') return v;
      if (typeof prop === 'string' && MUTATING_CALLS.has(prop)) {
        return (...args: unknown[]) => {
          const s = store.getStore();
          if (s) s.mutations++;
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return (v as (...a: unknown[]) => unknown).bind(target);
    },
  });
}

/** Whether every container of the pod's spec has a running container in the runtime, in a ready sandbox. */
function allContainersRunning(pod: Pod, rs: PodRuntimeStatus): boolean {
  if (rs.sandboxes[0]?.state !== 'SANDBOX_READY') return false;
  return (pod.spec?.containers ?? []).every((c) =>
    rs.containers.some((s) => containerNameOf(s) === c.name && s.state === 'CONTAINER_RUNNING'),
  );
}

/** Whether an update to a pod is more than a status change (upstream podsDifferSemantically). */
export function podsDifferSemantically(a: Pod, b: Pod): boolean {
  const m = (p: Pod) => ({
    labels: p.metadata.labels,
    annotations: p.metadata.annotations,
    deletionTimestamp: p.metadata.deletionTimestamp,
    deletionGracePeriodSeconds: p.metadata.deletionGracePeriodSeconds,
    spec: p.spec,
  });
  return !jsonEqual(m(a), m(b));
}

export interface KubeletOptions {
  clients: Clientset;
  runtime: Runtime;
  /** The upstream kubelet flags given with --kubelet-arg (config.ts); upstream's defaults otherwise. */
  config?: KubeletConfig;
  /**
   * The machine's cgroups (cm/cgroup-manager.ts): with them, and unless
   * --cgroups-per-qos=false, pods run in the kubepods QoS hierarchy. Only
   * real containers have cgroups (not the hollow runtime).
   */
  cgroups?: CgroupManager;
  /** Run the eviction manager (default: unless the runtime is hollow). */
  eviction?: boolean;
  /** containerd's root, whose file system is imagefs (default: the same as nodefs). */
  imagefsPath?: string;
  /** Images image GC never removes (the sandbox image). */
  pinnedImages?: string[];
  /** Collect dead containers and unused images (default: unless the runtime is hollow). */
  garbageCollection?: boolean;
  nodeName: string;
  /** The node's InternalIP (default: the first non-loopback IPv4 address). */
  nodeIP?: string;
  /** --node-external-ip: reported as the Node's ExternalIP address (k3s). */
  nodeExternalIP?: string;
  /** Pod logs go under <dataDir>/pods; ephemeral-storage is this file system's size. */
  dataDir: string;
  /** The server's own node gets the control-plane role label. */
  controlPlane?: boolean;
  nodeLabels?: Record<string, string>;
  /** Capacity overrides (hollow nodes). */
  capacity?: Record<string, string>;
  /** The machine as reported in the Node (default: read from this machine). */
  machine?: MachineInfo;
  log?: Log;
  /** Wall-clock time (timestamps, backoff). */
  now?: () => Date;
  /** Timers for the lease, node status and backoff requeues. */
  clock?: Clock;
  /** Container restart backoff (upstream: 10 s doubling to 5 min). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  plegRelistPeriodMs?: number;
  /** Every pod is synced again this often even without news (upstream --sync-frequency, 1 min). */
  resyncIntervalMs?: number;
  /** How often orphaned sandboxes and containers are looked for (upstream housekeeping, 2 s). */
  housekeepingIntervalMs?: number;
  /**
   * The local-path provisioner's storage root on this node: directories of
   * deleted volumes under it are removed (volumes/local-path-cleaner.ts).
   */
  localStoragePath?: string;
  /** How often the storage root is looked at (default 5 s). */
  localPathCleanupIntervalMs?: number;
  leaseDurationSeconds?: number;
  /** Where in the renew interval this node's renewals fall (lease.ts `phase`). */
  leasePhase?: number;
  nodeStatusUpdateFrequencyMs?: number;
  /** The port the kubelet server (server/) listens on, reported in the Node (default 10250). */
  kubeletPort?: number;
  /** Readiness from elsewhere than the prober. */
  readiness?: ContainerReadiness;
  /** Run probes and lifecycle hooks (default: unless the runtime is hollow). */
  probes?: boolean;
  /** Overrides of the runtime manager's hooks (the defaults: volumes, lifecycle hooks, probes). */
  hooks?: RuntimeManagerHooks;
  /** --cluster-dns: the cluster DNS addresses written into ClusterFirst pods' resolv.conf (dns.ts). */
  clusterDNS?: string[];
  /** --cluster-domain (default cluster.local). */
  clusterDomain?: string;
  /** --resolv-conf: the node's resolver configuration for pods (default /etc/resolv.conf). */
  resolvConf?: string;
  /** The kubelet's root directory, for pods' volumes under <root>/pods/<uid> (default: dataDir). */
  rootDirectory?: string;
  /** Set up and mount the pods' volumes (default: unless the runtime is hollow). */
  volumes?: boolean;
  /**
   * Called when the Node gets (or changes) its podCIDR, as upstream's kubelet
   * passes it to the runtime (UpdateRuntimeConfig): the agent writes the CNI
   * config then.
   */
  onPodCIDR?(podCIDR: string): void | Promise<void>;
  /**
   * Where the Node, the pods and the Services are read from (default: the
   * kubelet's own watches). Many kubelets in one process share one watch of
   * each (sharedSources in sources.ts).
   */
  sources?: KubeletSources;
  /** Told of each phase of a pod's startup too (the kubelet's metrics, metrics/kubelet.ts). */
  onStartupPhase?: TracePhase;
}

export interface Kubelet {
  readonly nodeName: string;
  /** The podCIDR the Node was given (by the node IPAM controller), once it has one. */
  podCIDR(): string | undefined;
  readonly podWorkers: PodWorkers;
  readonly nodeStatus: NodeStatusManager;
  readonly lease: NodeLease;
  /** The stats of the volumes of the pod with this uid (/stats/summary's pod.volume). */
  volumeStats(uid: string): Promise<VolumeStats[]>;
  /** Every pod's volume stats (kubelet_volume_stats_*). */
  allVolumeStats(): Promise<{ namespace: string; stats: VolumeStats[] }[]>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createKubelet(opts: KubeletOptions): Kubelet {
  const { clients, nodeName } = opts;
  const log = opts.log ?? createLog({ component: 'kubelet' });
  const trace = withStartupHook(startupTracer(log), opts.onStartupPhase);
  const runtime = traceRuntime(opts.runtime, trace);
  const now = opts.now ?? (() => new Date());
  const clock = opts.clock ?? realClock;
  const nodeIP = opts.nodeIP ?? defaultNodeIP();
  const config = opts.config ?? defaultKubeletConfig();
  const rootDirectory = opts.rootDirectory ?? config.rootDir ?? opts.dataDir;
  const machine = opts.machine ?? readMachineInfo(rootDirectory);
  const recorder = createEventRecorder(clients, { component: 'kubelet', host: nodeName, now, log });
  let runtimeName = runtime.kind;
  let nodeUID: string | undefined;
  const timers: NodeJS.Timeout[] = [];

  // Pod cgroups by QoS class (cm/container-manager.ts), kubepods capped at
  // capacity less the reservations when --enforce-node-allocatable=pods.
  const capacity = { cpuMilli: machine.cpu * 1000, memoryBytes: machine.memoryBytes };
  let containerManager: ContainerManager | undefined =
    opts.cgroups && config.cgroupsPerQOS
      ? createContainerManager({
          cgroups: opts.cgroups,
          cgroupRoot: config.cgroupRoot,
          capacity,
          allocatable: enforcedAllocatable({ ...capacity, ephemeralStorageBytes: 0 }, config),
          enforcePods: config.enforceNodeAllocatable.includes('pods'),
          log,
        })
      : undefined;
  const activePods = () =>
    sources.pods.list().filter((p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed');

  const sources = opts.sources ?? ownSources(clients, nodeName);
  const node = () => sources.node.get(nodeName);
  /** The informer's newest copy of a pod (the one a worker holds may be older). */
  const latest = (pod: Pod): Pod => {
    const cur = sources.pods.get(keyOf(pod));
    return cur && cur.metadata.uid === pod.metadata.uid ? cur : pod;
  };

  const getOrUndefined = async <T>(get: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await get();
    } catch (err) {
      if (isApiError(err, 'NotFound')) return undefined;
      throw err;
    }
  };

  const backoff = new Backoff({
    ...(opts.backoffInitialMs !== undefined ? { initialMs: opts.backoffInitialMs } : {}),
    ...(opts.backoffMaxMs !== undefined ? { maxMs: opts.backoffMaxMs } : {}),
    now: () => now().getTime(),
  });
  const imageBackoff = new Backoff({ now: () => now().getTime() });
  const getSecret = (ns: string, name: string) => getOrUndefined(() => clients.secrets.get(ns, name));
  // Projected ServiceAccount tokens, from the TokenRequest API (token-manager.ts).
  const tokens = createTokenManager(clients);
  const getConfigMap = (ns: string, name: string) => getOrUndefined(() => clients.configMaps.get(ns, name));

  // Probes, lifecycle hooks and volumes (prober/, volumes/). They call back
  // into the runtime manager and the pod workers made below.
  const podIP = async (pod: Pod) => {
    if (pod.spec?.hostNetwork) return nodeIP;
    const rs = await runtimeManager.getPodStatus(pod.metadata.uid ?? '');
    return rs.sandboxes[0]?.network?.ip ?? '';
  };
  const hollow = runtime.kind === 'hollow';
  const probes: ProbeManager | undefined = !(opts.probes ?? !hollow)
    ? undefined
    : createProbeManager({
        runtime,
        recorder,
        clock,
        now: () => now().getTime(),
        getPodStatus: (uid) => runtimeManager.getPodStatus(uid),
        hostIP: nodeIP,
        onChange: (uid) => podWorkers.sync(uid),
        log,
      });
  const volumes: VolumeManager | undefined = !(opts.volumes ?? !hollow)
    ? undefined
    : createVolumeManager({
        rootDirectory,
        recorder,
        now,
        getConfigMap,
        getSecret,
        getPersistentVolumeClaim: (ns, name) =>
          getOrUndefined(() => clients.persistentVolumeClaims.get(ns, name)),
        getPersistentVolume: (name) => getOrUndefined(() => clients.persistentVolumes.get(undefined, name)),
        patchPersistentVolumeClaimStatus: async (ns, name, status) => {
          await clients.persistentVolumeClaims.patch(
            ns,
            name,
            'merge',
            { status },
            { subresource: 'status' },
          );
        },
        nodeAllocatable: () => node()?.status?.allocatable ?? {},
        serviceAccountToken: (pod, projection) => tokens.serviceAccountToken(pod, projection),
        log,
      });
  const lifecycle = createLifecycleHandlers({ runtime, recorder, clock, podIP, log });
  const hooks: RuntimeManagerHooks = {
    ...(probes
      ? { postStart: lifecycle.postStart, preStop: lifecycle.preStop, unhealthy: probes.unhealthy }
      : {}),
    ...(volumes ? { mounts: volumes.mounts } : {}),
    cgroupParent: (pod) => containerManager?.podCgroupName(pod),
    dnsConfig: podDNSConfigurer({
      clusterDNS: opts.clusterDNS ?? [],
      clusterDomain: opts.clusterDomain ?? 'cluster.local',
      hostResolvConf: hostResolvConfReader(opts.resolvConf ?? '/etc/resolv.conf'),
      warn: (pod, reason, message) => recorder.event(pod, 'Warning', reason, message),
    }),
    ...opts.hooks,
  };

  const syncStore = new AsyncLocalStorage<{ mutations: number }>();
  const runtimeManager = createRuntimeManager({
    runtime: countingMutations(runtime, syncStore),
    recorder,
    backoff,
    now: () => now().getTime(),
    podLogsDirectory: `${opts.dataDir}/pods`,
    memoryCapacity: machine.memoryBytes,
    images: createImageManager({
      runtime,
      recorder,
      backoff: imageBackoff,
      now: () => now().getTime(),
      getSecret,
    }),
    envSources: (pod, podIPs) => ({
      getConfigMap,
      getSecret,
      services: () => sources.services.list(),
      podIPs,
      hostIPs: [nodeIP],
      nodeAllocatable: node()?.status?.allocatable ?? {},
      warn: (reason, message) => recorder.event(pod, 'Warning', reason, message),
    }),
    hooks,
    log,
  });
  const statusManager = createStatusManager({ clients, now, log });
  const generate = (
    pod: Pod,
    rs: Awaited<ReturnType<typeof runtimeManager.getPodStatus>>,
    terminal: boolean,
    errors = new Map(),
  ) =>
    generateAPIPodStatus(pod, rs, {
      errors,
      hostIPs: [nodeIP],
      runtimeName,
      podIsTerminal: terminal,
      ...((opts.readiness ?? probes) ? { readiness: opts.readiness ?? probes } : {}),
    });

  // Per pod whose last completed SyncPod left it fully up, what that sync last
  // read of its sandboxes and containers (podRuntimeFingerprint) and when
  // (`readSeq`, in the order of `seq`), so the PLEG does not sync a pod again
  // for changes that sync made and already reported.
  const syncedRuntime = new Map<string, { fingerprint: string; readSeq: number }>();
  // Orders the PLEG's relists against the syncs' reads of the runtime: the
  // event loop runs one thing at a time, so a read issued with a higher
  // number went to the runtime after a relist with a lower one was answered.
  let seq = 0;
  // Pods the eviction manager chose: their next sync kills them and marks
  // them Failed (Evicted), as upstream's killPodFunc with a PodStatusFunc.
  const evictions = new Map<
    string,
    { gracePeriodSeconds: number; message: string; annotations: Record<string, string>; done: () => void }
  >();
  /** Pods evicted here: their containers go at the next garbage collection. */
  const evictedPods = new Set<string>();
  const podWorkers = createPodWorkers({
    clock,
    log,
    syncer: {
      async syncPod(pod) {
        pod = latest(pod);
        const uid = pod.metadata.uid ?? '';
        trace(uid, 'syncStart');
        const eviction = evictions.get(uid);
        if (eviction) {
          recorder.event(pod, 'Warning', 'Evicted', eviction.message);
          probes?.stopLivenessAndStartup(uid);
          await runtimeManager.killPod(
            pod,
            await runtimeManager.getPodStatus(uid),
            eviction.gracePeriodSeconds,
          );
          const status = generate(pod, await runtimeManager.getPodStatus(uid), true);
          const at = rfc3339(now());
          await statusManager.setPodStatus(latest(pod), {
            ...status,
            phase: 'Failed',
            reason: 'Evicted',
            message: eviction.message,
            // Upstream (PodDisruptionConditions): why the pod is going, for controllers and users.
            conditions: [
              ...(status.conditions ?? []).filter((c) => c.type !== 'DisruptionTarget'),
              {
                type: 'DisruptionTarget',
                status: 'True',
                reason: 'TerminationByKubelet',
                message: eviction.message,
                lastTransitionTime: at,
              },
            ],
          });
          evictions.delete(uid);
          evictedPods.add(uid);
          eviction.done();
          return { terminal: true };
        }
        // activeDeadlineSeconds: the pod fails once it has been active that long (upstream's
        // activeDeadlineHandler).
        const deadline = pod.spec?.activeDeadlineSeconds;
        const start = pod.status?.startTime ? Date.parse(pod.status.startTime) : undefined;
        if (deadline !== undefined && start !== undefined && now().getTime() - start >= deadline * 1000) {
          recorder.event(
            pod,
            'Normal',
            'DeadlineExceeded',
            'Pod was active on the node longer than the specified deadline',
          );
          await runtimeManager.killPod(
            pod,
            await runtimeManager.getPodStatus(uid),
            pod.spec?.terminationGracePeriodSeconds ?? 30,
          );
          const status = generate(pod, await runtimeManager.getPodStatus(uid), true);
          await statusManager.setPodStatus(latest(pod), {
            ...status,
            phase: 'Failed',
            reason: 'DeadlineExceeded',
            message: 'Pod was active on the node longer than the specified deadline',
          });
          return { terminal: true };
        }
        // Probes start with the pod (upstream AddPod). Volumes are set up, and
        // configMap/secret contents refreshed, before containers start; a
        // volume that cannot be set up keeps them from starting (upstream
        // WaitForAttachAndMount), with the pod's status still reported.
        probes?.addPod(pod);
        try {
          await volumes?.mountPod(pod);
        } catch (err) {
          await statusManager.setPodStatus(
            latest(pod),
            generate(pod, await runtimeManager.getPodStatus(uid), false),
          );
          throw err;
        }
        // Upstream syncPod: the pod's cgroup exists, with its limits, before
        // its sandbox does (the sandbox is made in it).
        if (containerManager && !opts.cgroups?.exists(containerManager.podCgroupName(pod))) {
          await containerManager.ensurePod(pod, activePods());
        }
        const beforeSeq = ++seq;
        const before = await runtimeManager.getPodStatus(uid);
        const sync = { mutations: 0 };
        const result = await syncStore.run(sync, () => runtimeManager.syncPod(pod, before));
        // A sync that changed nothing in the runtime (a resync of a running
        // pod, mostly) reports what it read: at 110 pods, reading every pod
        // again each minute was half the kubelet's calls to containerd. A
        // change meanwhile from elsewhere (an exit) is the PLEG's to notice.
        const unchanged = sync.mutations === 0;
        const readSeq = unchanged ? beforeSeq : ++seq;
        const after = unchanged ? before : await runtimeManager.getPodStatus(uid);
        const status = generate(pod, after, false, result.errors);
        const written = await statusManager.setPodStatus(latest(pod), status);
        // Only a pod the sync left fully up (every container running, nothing
        // to retry) is one a relist showing the same runtime state needs no sync for.
        if (
          result.errors.size === 0 &&
          result.requeueAfterMs === undefined &&
          allContainersRunning(pod, after)
        ) {
          syncedRuntime.set(uid, {
            fingerprint: podRuntimeFingerprint([...after.sandboxes, ...after.containers]),
            readSeq,
          });
        } else syncedRuntime.delete(uid);
        trace(uid, 'statusWritten');
        const terminal = written.phase === 'Succeeded' || written.phase === 'Failed';
        if (!terminal && deadline !== undefined) {
          const startedAt = Date.parse(written.startTime ?? '') || now().getTime();
          const left = startedAt + deadline * 1000 - now().getTime();
          result.requeueAfterMs = Math.min(
            result.requeueAfterMs ?? Number.POSITIVE_INFINITY,
            Math.max(0, left),
          );
        }
        return {
          terminal,
          ...(result.requeueAfterMs !== undefined ? { requeueAfterMs: result.requeueAfterMs } : {}),
        };
      },
      async syncTerminatingPod(pod, gracePeriodSeconds) {
        pod = latest(pod);
        const uid = pod.metadata.uid ?? '';
        // Liveness must not restart what is being stopped; readiness reports until the end.
        probes?.stopLivenessAndStartup(uid);
        await runtimeManager.killPod(pod, await runtimeManager.getPodStatus(uid), gracePeriodSeconds);
        probes?.removePod(uid);
        const rs = await runtimeManager.getPodStatus(uid);
        await statusManager.setPodStatus(latest(pod), generate(pod, rs, true));
      },
      async syncTerminatedPod(pod, removed) {
        const uid = pod.metadata.uid ?? '';
        // The containers are stopped: the volumes go (tmpfs unmounted), and with
        // the pod gone from the API, its directory too.
        await volumes?.unmountPod(uid, { removePodDir: removed });
        // Its containers stopped, the pod's cgroup goes (upstream
        // cleanupOrphanedPodCgroups); housekeeping retries one still busy.
        if (containerManager && (await containerManager.destroyPod(uid))) {
          await containerManager.updateQOS(activePods());
        }
        if (removed) {
          syncedRuntime.delete(uid);
          evictedPods.delete(uid);
          await runtimeManager.removePod(uid);
          backoff.forgetPrefix(`${pod.metadata.name}_${pod.metadata.namespace}_${uid}_`);
          tokens.forgetPod(uid);
          return true;
        }
        pod = latest(pod);
        const rs = await runtimeManager.getPodStatus(uid);
        // After a kubelet restart the runtime may know nothing of a finished pod:
        // its last reported status stands.
        if (rs.containers.length > 0 || rs.sandboxes.length > 0) {
          await statusManager.setPodStatus(pod, generate(pod, rs, true));
        }
        if (pod.metadata.deletionTimestamp) await statusManager.finishDeletion(pod);
        return false;
      },
    },
  });

  const nodeStatus = createNodeStatusManager({
    clients,
    nodeName,
    nodeIP,
    ...(opts.nodeExternalIP ? { nodeExternalIP: opts.nodeExternalIP } : {}),
    runtime,
    machine,
    ...(opts.nodeLabels ? { labels: opts.nodeLabels } : {}),
    ...(opts.controlPlane ? { controlPlane: true } : {}),
    ...(opts.capacity ? { capacity: opts.capacity } : {}),
    reservation: config,
    maxPods: config.maxPods,
    pressure: () => eviction?.pressure() ?? { memory: false, disk: false, pid: false },
    notReadyReason: () => (pleg.healthy() ? undefined : 'PLEG is not healthy'),
    cachedNode: node,
    now,
    clock,
    ...(opts.nodeStatusUpdateFrequencyMs ? { updateFrequencyMs: opts.nodeStatusUpdateFrequencyMs } : {}),
    ...(opts.kubeletPort ? { kubeletPort: opts.kubeletPort } : {}),
    log,
  });
  const lease = createNodeLease({
    clients,
    nodeName,
    nodeUID: () => nodeUID,
    clock,
    now,
    ...(opts.leaseDurationSeconds ? { leaseDurationSeconds: opts.leaseDurationSeconds } : {}),
    ...(opts.leasePhase !== undefined ? { phase: opts.leasePhase } : {}),
    log,
  });
  const pleg = createPLEG({
    runtime,
    onPodChanged: (uid, fingerprint) => {
      // Nothing new to sync for when the pod's last sync left it fully up and
      // either saw the same as this relist when it wrote the status, or read
      // the runtime after this relist was answered. Mostly the relist saw the
      // sandbox and containers the pod's first sync itself was starting; that
      // sync is still running, so the question waits until it is done.
      const relistSeq = ++seq;
      podWorkers.sync(uid, () => {
        const synced = syncedRuntime.get(uid);
        return (
          synced !== undefined &&
          podWorkers.state(uid) === 'syncing' &&
          (synced.fingerprint === fingerprint || synced.readSeq > relistSeq)
        );
      });
    },
    ...(opts.plegRelistPeriodMs ? { relistPeriodMs: opts.plegRelistPeriodMs } : {}),
    log,
  });

  // The eviction manager (eviction/): node conditions from the signals, and
  // a pod evicted when a threshold is met.
  const podUsage = async (pod: Pod, resource: string): Promise<PodUsage> => {
    const uid = pod.metadata.uid ?? '';
    if (resource === 'memory') {
      const ws = containerManager
        ? await opts.cgroups?.memoryWorkingSet(containerManager.podCgroupName(pod))
        : undefined;
      return ws !== undefined ? { memory: ws } : {};
    }
    if (resource === 'pids') {
      return containerManager
        ? { pids: (await opts.cgroups?.pids(containerManager.podCgroupName(pod)))?.length ?? 0 }
        : {};
    }
    // Ephemeral storage: the pod's volumes on the node's disk and its logs
    // (the containers' writable layers are containerd's, not counted here).
    const logs = `${opts.dataDir}/pods/${pod.metadata.namespace}_${pod.metadata.name}_${uid}`;
    return { disk: (await diskUsage(`${rootDirectory}/pods/${uid}`)) + (await diskUsage(logs)) };
  };
  // Garbage collection (gc/): dead containers every minute, images every 5
  // (upstream's periods), and both when the eviction manager reclaims disk.
  const gcOn = opts.garbageCollection ?? !hollow;
  // Upstream ShouldPodContentBeRemoved: a finished pod keeps its last
  // containers (kubectl logs of a completed Job), an evicted or gone one does not.
  const podRunsHere = (uid: string) =>
    !evictedPods.has(uid) &&
    (podWorkers.state(uid) !== undefined || sources.pods.list().some((p) => p.metadata.uid === uid));
  const containerGC = createContainerGC({ runtime, podActive: podRunsHere, now: () => now().getTime(), log });
  const containerGCPolicy = {
    minAgeMs: config.minimumContainerTTLMs,
    maxPerPodContainer: config.maxPerPodContainer,
    maxContainers: config.maxContainers,
  };
  const imageGC = createImageGC({
    runtime,
    ...(opts.pinnedImages ? { pinned: opts.pinnedImages } : {}),
    imagefsPath: opts.imagefsPath ?? rootDirectory,
    now: () => now().getTime(),
    log,
  });
  const imageGCPolicy = {
    highThresholdPercent: config.imageGCHighThresholdPercent,
    lowThresholdPercent: config.imageGCLowThresholdPercent,
    minAgeMs: config.imageMinimumGCAgeMs,
  };
  const eviction: EvictionManager | undefined = !(opts.eviction ?? !hollow)
    ? undefined
    : createEvictionManager({
        config,
        signals: nodeSignals({
          ...(opts.cgroups ? { cgroups: opts.cgroups } : {}),
          ...(containerManager && config.enforceNodeAllocatable.includes('pods')
            ? {
                kubepods: {
                  name: containerManager.kubepods,
                  memoryBytes: enforcedAllocatable({ ...capacity, ephemeralStorageBytes: 0 }, config)
                    .memoryBytes,
                },
              }
            : {}),
          memoryCapacityBytes: machine.memoryBytes,
          nodefsPath: rootDirectory,
          ...(opts.imagefsPath ? { imagefsPath: opts.imagefsPath } : {}),
        }),
        activePods: () => activePods().filter((p) => podWorkers.state(p.metadata.uid ?? '') === 'syncing'),
        podUsage,
        // Upstream's node-level reclaim: dead containers for nodefs, and with
        // them unused images for imagefs (or for nodefs when they share a disk).
        ...(gcOn
          ? {
              reclaimNodeDisk: async (signal: string) => {
                await containerGC.collect(containerGCPolicy, true);
                if (signal.startsWith('imagefs') || !opts.imagefsPath) await imageGC.deleteUnusedImages();
              },
            }
          : {}),
        evictPod: (pod, gracePeriodSeconds, message, annotations) =>
          new Promise<void>((resolve) => {
            const uid = pod.metadata.uid ?? '';
            // Upstream waits for the pod to be cleaned up before the next round (podCleanupTimeout, 30 s).
            const timer = setTimeout(resolve, 30_000);
            timer.unref();
            evictions.set(uid, {
              gracePeriodSeconds,
              message,
              annotations,
              done: () => {
                clearTimeout(timer);
                resolve();
              },
            });
            podWorkers.sync(uid);
          }),
        now: () => now().getTime(),
        log,
      });

  // Housekeeping (upstream HandlePodCleanups): sandboxes and containers of
  // pods the kubelet no longer has (deleted while it was down, or never
  // its own) are removed.
  async function housekeeping(): Promise<void> {
    const known = new Set<string>(podWorkers.uids());
    for (const p of sources.pods.list()) known.add(p.metadata.uid ?? '');
    // The PLEG's last relist (at most a second old) when there is one: the
    // runtime need not be listed twice (at 110 pods, a third of the idle RPCs).
    const listed = pleg.lastListing();
    const [sandboxes, containers] =
      listed && Date.now() - listed.atMs < 5000
        ? [listed.sandboxes, listed.containers]
        : await Promise.all([runtime.listPodSandbox(), runtime.listContainers()]);
    const orphans = new Set<string>();
    for (const o of [...sandboxes, ...containers]) {
      const uid = o.labels[KUBERNETES_POD_UID_LABEL];
      if (uid && !known.has(uid)) orphans.add(uid);
    }
    for (const uid of orphans) {
      log('removing the containers of a pod that is gone', { uid });
      await runtimeManager.removePod(uid);
    }
    await volumes?.cleanupOrphanedPodDirs((uid) => known.has(uid) || podWorkers.state(uid) !== undefined);
    // Pod cgroups of pods that are gone or finished. A cgroup with a process
    // in it is refused by the kernel, so this never takes a running pod's.
    if (containerManager) {
      const active = new Set(activePods().map((p) => p.metadata.uid ?? ''));
      for (const uid of (await containerManager.podCgroups()).keys()) {
        const state = podWorkers.state(uid);
        if (active.has(uid) || state === 'syncing' || state === 'terminating') continue;
        if (await containerManager.destroyPod(uid))
          log('removed the cgroup of a pod that is not running', { uid });
      }
    }
  }

  return {
    nodeName,
    podCIDR: () => node()?.spec?.podCIDR,
    async volumeStats(uid) {
      const pod = sources.pods.list().find((p) => p.metadata.uid === uid);
      return pod && volumes ? volumes.volumeStats(pod) : [];
    },
    async allVolumeStats() {
      if (!volumes) return [];
      const out: { namespace: string; stats: VolumeStats[] }[] = [];
      for (const pod of sources.pods.list())
        out.push({ namespace: pod.metadata.namespace ?? '', stats: await volumes.volumeStats(pod) });
      return out;
    },
    podWorkers,
    nodeStatus,
    lease,
    async start() {
      try {
        runtimeName = (await runtime.version()).runtimeName || runtime.kind;
      } catch (err) {
        log.warn('container runtime not answering', { error: String(err) });
      }
      if (containerManager) {
        try {
          await containerManager.start();
        } catch (err) {
          log.error('pod cgroups could not be made; pods run without the QoS hierarchy', {
            error: String(err),
            cgroupRoot: config.cgroupRoot,
            hint: 'run as root with /sys/fs/cgroup writable, or pass --kubelet-arg cgroups-per-qos=false',
          });
          containerManager = undefined;
        }
      }
      const registered = await nodeStatus.register();
      nodeUID = registered.metadata.uid;
      lease.start();
      nodeStatus.start();
      sources.pods.on({
        add: (pod) => {
          trace(pod.metadata.uid ?? '', 'seen');
          podWorkers.updatePod(pod);
        },
        update: (old, pod) => {
          // As upstream's pod config (checkAndUpdatePod): a change to the status
          // alone, mostly the kubelet's own writes, is no reason to sync, unless
          // readiness gates make Ready depend on conditions others write.
          if (podsDifferSemantically(old, pod) || pod.spec?.readinessGates?.length) podWorkers.updatePod(pod);
        },
        delete: (pod) => podWorkers.removePod(pod),
      });
      let podCIDR: string | undefined;
      const podCIDRChanged = (n: Node) => {
        const cidr = n.spec?.podCIDR;
        if (!cidr || cidr === podCIDR) return;
        podCIDR = cidr;
        log('node podCIDR', { podCIDR: cidr });
        Promise.resolve(opts.onPodCIDR?.(cidr)).catch((err: unknown) =>
          log.error('podCIDR not applied', { podCIDR: cidr, error: String(err) }),
        );
      };
      sources.node.on({ add: podCIDRChanged, update: (_old, n) => podCIDRChanged(n) });
      await Promise.all([sources.node.start(), sources.services.start()]);
      await sources.pods.start();
      pleg.start();
      const every = (ms: number, fn: () => Promise<void> | void) => {
        const t = setInterval(() => {
          Promise.resolve()
            .then(fn)
            .catch((err: unknown) => log('housekeeping failed', { error: String(err) }));
        }, ms);
        t.unref();
        timers.push(t);
      };
      every(opts.housekeepingIntervalMs ?? 2000, housekeeping);
      if (gcOn) {
        // Container log rotation (logs/), every 10 s as upstream's log monitor.
        const logs = createContainerLogManager({
          runtime,
          // The PLEG's last relist, when fresh, rather than another listing.
          runningContainers: async () => {
            const listed = pleg.lastListing();
            const all =
              listed && Date.now() - listed.atMs < 5000 ? listed.containers : await runtime.listContainers();
            return all.filter((c) => c.state === 'CONTAINER_RUNNING');
          },
          policy: { maxSizeBytes: config.containerLogMaxSizeBytes, maxFiles: config.containerLogMaxFiles },
          now,
          log,
        });
        let rotating = false;
        every(10_000, async () => {
          if (rotating) return;
          rotating = true;
          try {
            await logs.rotateLogs();
          } finally {
            rotating = false;
          }
        });
        await imageGC.detect().catch((err: unknown) => log('image detection failed', { error: String(err) }));
        every(60_000, () => containerGC.collect(containerGCPolicy).then(() => undefined));
        every(5 * 60_000, () => imageGC.garbageCollect(imageGCPolicy).then(() => undefined));
      }
      if (eviction) {
        let evicting = false;
        every(config.housekeepingIntervalMs, async () => {
          if (evicting) return;
          evicting = true;
          try {
            const before = JSON.stringify(eviction.pressure());
            await eviction.synchronize();
            // A condition that changed is reported now, not at the next status update.
            if (JSON.stringify(eviction.pressure()) !== before) await nodeStatus.update();
          } finally {
            evicting = false;
          }
        });
      }
      const storageRoot = opts.localStoragePath;
      if (storageRoot && volumes) {
        let cleaning = false;
        every(opts.localPathCleanupIntervalMs ?? 5000, async () => {
          if (cleaning) return;
          cleaning = true;
          try {
            await cleanLocalPathVolumes({
              root: storageRoot,
              getPersistentVolume: (name) => clients.persistentVolumes.get(undefined, name),
              log,
            });
          } finally {
            cleaning = false;
          }
        });
      }
      every(opts.resyncIntervalMs ?? 60_000, () => {
        for (const pod of sources.pods.list()) podWorkers.updatePod(pod);
      });
      log('kubelet started', { node: nodeName, runtime: runtimeName, nodeIP });
    },
    async stop() {
      for (const t of timers) clearInterval(t);
      pleg.stop();
      probes?.stop();
      lease.stop();
      nodeStatus.stop();
      podWorkers.stop();
      sources.pods.stop();
      sources.node.stop();
      sources.services.stop();
      await recorder.flush();
    },
  };
}
