// The kubelet's side of the container runtime, as upstream's
// kuberuntime_manager.go: read a pod's sandboxes and containers back from the
// runtime (by the labels the kubelet put on them), decide what to do
// (computePodActions), and do it (SyncPod / KillPod).
//
// Everything here is derived from the runtime each time, never from memory,
// so a restarted kubelet picks up running containers where it left them.
// https://github.com/kubernetes/kubernetes/blob/master/pkg/kubelet/kuberuntime/kuberuntime_manager.go

import { milliValue, parseQuantity, value as quantityValue } from '../api/quantity.ts';
import { qosClass } from '../api/resources/core.ts';
import type { Container as ContainerSpec, EphemeralContainer, Pod } from '../api/types/core-v1.ts';
import type { EventRecorder } from '../client/events.ts';
import type { Backoff } from './backoff.ts';
import { ContainerConfigError, type EnvSources, expand, makeEnvironmentVariables } from './container-env.ts';
import { type ImageManager, ImagePullError } from './image-manager.ts';
import {
  CONTAINER_HASH_ANNOTATION,
  CONTAINER_RESTART_COUNT_ANNOTATION,
  containerAnnotations,
  containerLabels,
  hashContainer,
  KUBERNETES_CONTAINER_NAME_LABEL,
  KUBERNETES_POD_UID_LABEL,
  sandboxLabels,
} from './labels.ts';
import type {
  ContainerConfig,
  ContainerStatus,
  DNSConfig,
  KeyValue,
  LinuxContainerResources,
  Mount,
  NamespaceOption,
  PodSandboxConfig,
  PodSandboxStatus,
  PortMapping,
  Runtime,
} from './runtime/runtime.ts';
import { podSupplementalGroups } from './volumes/ownership.ts';

/** What the runtime has for one pod, newest first. */
export interface PodRuntimeStatus {
  uid: string;
  sandboxes: PodSandboxStatus[];
  containers: ContainerStatus[];
}

/** A container that could not start this time, and why: the waiting state the status shows. */
export interface ContainerError {
  reason: string;
  message: string;
}

export interface SyncResult {
  errors: Map<string, ContainerError>;
  /** The shortest backoff left, when a container waits for one: sync again then. */
  requeueAfterMs?: number;
}

/** Extension points for the parts of the kubelet that come later. */
export interface RuntimeManagerHooks {
  /** Volume mounts of a container (the volume manager); env is the container's, for subPathExpr. */
  mounts?(pod: Pod, container: ContainerSpec, env: KeyValue[]): Promise<Mount[]>;
  /** The pod's resolv.conf (cluster DNS). */
  dnsConfig?(pod: Pod): DNSConfig | undefined;
  /** The pod's cgroup (cm/container-manager.ts), its sandbox's and containers' cgroupParent. */
  cgroupParent?(pod: Pod): string | undefined;
  /** Runs after StartContainer (postStart hook); throws with the message of the hook's failure. */
  postStart?(pod: Pod, container: ContainerSpec, containerId: string): Promise<void>;
  /** Why a running container must be restarted: its liveness or startup probe failed (the prober). */
  unhealthy?(pod: Pod, container: ContainerSpec, containerId: string): 'liveness' | 'startup' | undefined;
  /** Runs before StopContainer (preStop hook); its time counts against the grace period. */
  preStop?(
    pod: Pod,
    container: ContainerSpec,
    containerId: string,
    gracePeriodSeconds: number,
  ): Promise<void>;
}

export interface RuntimeManagerOptions {
  runtime: Runtime;
  recorder: EventRecorder;
  images: ImageManager;
  /** The container restart backoff (CrashLoopBackOff). */
  backoff: Backoff;
  /** Wall-clock milliseconds. */
  now(): number;
  /** Where container logs go: <podLogsDirectory>/<namespace>_<name>_<uid>/<container>/<n>.log. */
  podLogsDirectory: string;
  /** What container environments are made from, given the pod's IPs. */
  envSources(pod: Pod, podIPs: string[]): EnvSources;
  /** The node's memory capacity in bytes, for Burstable pods' oom_score_adj. */
  memoryCapacity: number;
  hooks?: RuntimeManagerHooks;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** The terminated-time of a runtime container, in ms. */
const finishedMs = (c: ContainerStatus) => Number(c.finishedAt / 1_000_000n);

export function restartCountOf(c: ContainerStatus): number {
  return Number(c.annotations[CONTAINER_RESTART_COUNT_ANNOTATION] ?? 0) || 0;
}

export const containerNameOf = (c: { labels: Record<string, string> }) =>
  c.labels[KUBERNETES_CONTAINER_NAME_LABEL] ?? '';

/** The runtime's containers of one container name, newest first. */
export function containerHistory(status: PodRuntimeStatus, name: string): ContainerStatus[] {
  return status.containers.filter((c) => containerNameOf(c) === name);
}

/** A sandbox the pod can run containers in: ready, and with an IP unless on the host network. */
export function sandboxReady(pod: Pod, status: PodRuntimeStatus): PodSandboxStatus | undefined {
  const s = status.sandboxes[0];
  if (s?.state !== 'SANDBOX_READY') return undefined;
  if (!pod.spec?.hostNetwork && !s.network?.ip) return undefined;
  return s;
}

/** Go's time.Duration formatting for whole seconds: 10s, 1m20s, 5m0s. */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h ? `${h}h` : ''}${m}m${s % 60}s`;
}

/** Whether a container that exited should run again (restartPolicy; init sidecars always restart). */
export function shouldRestart(pod: Pod, container: ContainerSpec, exitCode: number): boolean {
  const policy = container.restartPolicy ?? pod.spec?.restartPolicy ?? 'Always';
  if (policy === 'Always') return true;
  if (policy === 'OnFailure') return exitCode !== 0;
  return false;
}

/**
 * An ephemeral container as the container it runs as (upstream converts its
 * EphemeralContainerCommon to a Container): everything but the target.
 */
export function ephemeralContainerSpec(ec: EphemeralContainer): ContainerSpec {
  const { targetContainerName: _, ...common } = ec;
  return common;
}

export interface RuntimeManager {
  getPodStatus(uid: string): Promise<PodRuntimeStatus>;
  syncPod(pod: Pod, status: PodRuntimeStatus): Promise<SyncResult>;
  /** Stops every container (in parallel, within the grace period) and then the sandboxes. */
  killPod(pod: Pod, status: PodRuntimeStatus, gracePeriodSeconds: number): Promise<void>;
  /** Removes every container and sandbox of a pod (it is gone from the API). */
  removePod(uid: string): Promise<void>;
}

export function createRuntimeManager(opts: RuntimeManagerOptions): RuntimeManager {
  const { runtime, recorder, backoff } = opts;
  const log = opts.log ?? (() => {});

  const byNewest = <T extends { createdAt: bigint }>(a: T, b: T) =>
    a.createdAt === b.createdAt ? 0 : a.createdAt > b.createdAt ? -1 : 1;

  async function getPodStatus(uid: string): Promise<PodRuntimeStatus> {
    const selector = { [KUBERNETES_POD_UID_LABEL]: uid };
    const [sandboxes, containers] = await Promise.all([
      runtime.listPodSandbox({ labelSelector: selector }),
      runtime.listContainers({ labelSelector: selector }),
    ]);
    const sandboxStatuses = await Promise.all(sandboxes.map((s) => runtime.podSandboxStatus(s.id)));
    const containerStatuses = await Promise.all(containers.map((c) => runtime.containerStatus(c.id)));
    // Restart counts break ties between containers made within one clock tick.
    const newest = (a: ContainerStatus, b: ContainerStatus) =>
      restartCountOf(b) - restartCountOf(a) || byNewest(a, b);
    return {
      uid,
      sandboxes: sandboxStatuses.sort(byNewest),
      containers: containerStatuses.sort(newest),
    };
  }

  function sandboxConfig(pod: Pod, attempt: number): PodSandboxConfig {
    const spec = pod.spec ?? {};
    const meta = pod.metadata;
    const portMappings: PortMapping[] = [];
    for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
      for (const p of c.ports ?? []) {
        if (!p.hostPort) continue;
        portMappings.push({
          protocol: (p.protocol ?? 'TCP') as PortMapping['protocol'],
          containerPort: p.containerPort ?? 0,
          hostPort: p.hostPort,
          ...(p.hostIP ? { hostIp: p.hostIP } : {}),
        });
      }
    }
    const sc = spec.securityContext ?? {};
    const dnsConfig = opts.hooks?.dnsConfig?.(pod);
    const cgroupParent = opts.hooks?.cgroupParent?.(pod);
    return {
      metadata: { name: meta.name ?? '', namespace: meta.namespace ?? '', uid: meta.uid ?? '', attempt },
      // Upstream GeneratePodHostNameAndDomain: spec.hostname, else the pod name (63 characters at most).
      ...(spec.hostNetwork ? {} : { hostname: (spec.hostname || meta.name || '').slice(0, 63) }),
      logDirectory: `${opts.podLogsDirectory}/${meta.namespace}_${meta.name}_${meta.uid}`,
      ...(dnsConfig ? { dnsConfig } : {}),
      portMappings,
      labels: sandboxLabels(pod),
      annotations: { ...meta.annotations },
      linux: {
        ...(cgroupParent ? { cgroupParent } : {}),
        securityContext: {
          namespaceOptions: namespacesForPod(pod),
          ...(sc.runAsUser !== undefined ? { runAsUser: { value: sc.runAsUser } } : {}),
          ...(sc.runAsGroup !== undefined ? { runAsGroup: { value: sc.runAsGroup } } : {}),
          ...(podSupplementalGroups(sc).length ? { supplementalGroups: podSupplementalGroups(sc) } : {}),
          seccomp: { profileType: 'RuntimeDefault' },
        },
        ...(sc.sysctls?.length
          ? { sysctls: Object.fromEntries(sc.sysctls.map((s) => [s.name ?? '', s.value ?? ''])) }
          : {}),
      },
    };
  }

  // Upstream's linux resource mapping (kuberuntime_container_linux.go):
  // cpu shares from the request, CFS quota from the limit, the memory limit,
  // and oom_score_adj by QoS class (pkg/kubelet/qos/policy.go).
  function linuxResources(pod: Pod, c: ContainerSpec): LinuxContainerResources {
    const req = c.resources?.requests ?? {};
    const lim = c.resources?.limits ?? {};
    const out: LinuxContainerResources = {};
    const cpuReq = req.cpu ?? lim.cpu;
    out.cpuShares = cpuReq
      ? Math.max(2, Math.floor((Number(milliValue(parseQuantity(cpuReq))) * 1024) / 1000))
      : 2;
    if (lim.cpu) {
      out.cpuPeriod = 100_000;
      out.cpuQuota = Math.max(
        1000,
        Math.floor((Number(milliValue(parseQuantity(lim.cpu))) * 100_000) / 1000),
      );
    }
    if (lim.memory) out.memoryLimitInBytes = Number(quantityValue(parseQuantity(lim.memory)));
    const qos = qosClass((pod.spec ?? {}) as Record<string, unknown>);
    if (qos === 'Guaranteed') out.oomScoreAdj = -997;
    else if (qos === 'BestEffort') out.oomScoreAdj = 1000;
    else {
      const memReq = req.memory ? Number(quantityValue(parseQuantity(req.memory))) : 0;
      const adj = 1000 - Math.floor((1000 * memReq) / Math.max(1, opts.memoryCapacity));
      out.oomScoreAdj = Math.min(999, Math.max(2, adj));
    }
    return out;
  }

  async function containerConfig(
    pod: Pod,
    c: ContainerSpec,
    restartCount: number,
    podIPs: string[],
    targetId?: string,
  ): Promise<ContainerConfig> {
    const envs = await makeEnvironmentVariables(pod, c, opts.envSources(pod, podIPs));
    const env = new Map(envs.map((e) => [e.key, e.value]));
    const lookup = (name: string) => env.get(name);
    const sc = c.securityContext ?? {};
    const psc = pod.spec?.securityContext ?? {};
    const runAsUser = sc.runAsUser ?? psc.runAsUser;
    const runAsGroup = sc.runAsGroup ?? psc.runAsGroup;
    const supplementalGroups = podSupplementalGroups(psc);
    const mounts = (await opts.hooks?.mounts?.(pod, c, envs)) ?? [];
    return {
      metadata: { name: c.name ?? '', attempt: restartCount },
      image: { image: c.image ?? '' },
      ...(c.command ? { command: c.command.map((s) => expand(s, lookup)) } : {}),
      ...(c.args ? { args: c.args.map((s) => expand(s, lookup)) } : {}),
      ...(c.workingDir ? { workingDir: c.workingDir } : {}),
      envs,
      mounts,
      labels: containerLabels(pod, c),
      annotations: containerAnnotations(pod, c, restartCount),
      logPath: `${c.name}/${restartCount}.log`,
      ...(c.stdin ? { stdin: true } : {}),
      ...(c.stdinOnce ? { stdinOnce: true } : {}),
      ...(c.tty ? { tty: true } : {}),
      linux: {
        resources: linuxResources(pod, c),
        securityContext: {
          // The container joins the sandbox's namespaces as the pod asks
          // (upstream NamespacesForPod); left out, CRI's default (POD) would
          // put every container in the pause container's PID namespace.
          namespaceOptions: namespacesForContainer(pod, targetId),
          ...(sc.privileged ? { privileged: true } : {}),
          ...(sc.capabilities
            ? {
                capabilities: {
                  ...(sc.capabilities.add ? { addCapabilities: sc.capabilities.add } : {}),
                  ...(sc.capabilities.drop ? { dropCapabilities: sc.capabilities.drop } : {}),
                },
              }
            : {}),
          ...(runAsUser !== undefined ? { runAsUser: { value: runAsUser } } : {}),
          ...(runAsGroup !== undefined ? { runAsGroup: { value: runAsGroup } } : {}),
          // The pod's supplementalGroups and fsGroup, so the container can use the volumes fsGroup owns.
          ...(supplementalGroups.length ? { supplementalGroups } : {}),
          ...(sc.readOnlyRootFilesystem ? { readonlyRootfs: true } : {}),
          ...(sc.allowPrivilegeEscalation === false ? { noNewPrivs: true } : {}),
          seccomp:
            sc.seccompProfile?.type === 'Unconfined' || psc.seccompProfile?.type === 'Unconfined'
              ? { profileType: 'Unconfined' }
              : { profileType: 'RuntimeDefault' },
        },
      },
    };
  }

  // Upstream doBackOff: a container that exited waits out its backoff before
  // it is started again. Returns the time left (0: go ahead, and the backoff
  // grows for next time).
  function doBackOff(pod: Pod, c: ContainerSpec, last: ContainerStatus, result: SyncResult): boolean {
    const key = `${pod.metadata.name}_${pod.metadata.namespace}_${pod.metadata.uid}_${c.name}_${hashContainer(c)}`;
    const finished = finishedMs(last);
    const left = backoff.remaining(key, finished);
    if (left > 0) {
      const message = `back-off ${formatDuration(backoff.current(key))} restarting failed container=${c.name} pod=${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})`;
      result.errors.set(c.name ?? '', { reason: 'CrashLoopBackOff', message });
      recorder.event(
        pod,
        'Warning',
        'BackOff',
        `Back-off restarting failed container ${c.name} in pod ${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})`,
      );
      result.requeueAfterMs = Math.min(result.requeueAfterMs ?? Number.POSITIVE_INFINITY, left);
      return false;
    }
    backoff.next(key, finished);
    return true;
  }

  async function startContainer(
    pod: Pod,
    c: ContainerSpec,
    sandboxId: string,
    sbConfig: PodSandboxConfig,
    podIPs: string[],
    history: ContainerStatus[],
    result: SyncResult,
    targetId?: string,
  ): Promise<boolean> {
    const name = c.name ?? '';
    const last = history[0];
    const restartCount = last ? restartCountOf(last) + 1 : 0;
    let imageRef: string;
    try {
      imageRef = await opts.images.ensureImageExists(pod, c, sbConfig);
    } catch (err) {
      if (err instanceof ImagePullError) {
        result.errors.set(name, { reason: err.reason, message: err.message });
        result.requeueAfterMs = Math.min(result.requeueAfterMs ?? Number.POSITIVE_INFINITY, 1000);
        return false;
      }
      throw err;
    }
    let config: ContainerConfig;
    try {
      config = await containerConfig(pod, c, restartCount, podIPs, targetId);
    } catch (err) {
      if (err instanceof ContainerConfigError) {
        recorder.event(pod, 'Warning', 'Failed', `Error: ${err.message}`);
        result.errors.set(name, { reason: 'CreateContainerConfigError', message: err.message });
        result.requeueAfterMs = Math.min(result.requeueAfterMs ?? Number.POSITIVE_INFINITY, 1000);
        return false;
      }
      throw err;
    }
    void imageRef;
    let id: string;
    try {
      id = await runtime.createContainer(sandboxId, config, sbConfig);
    } catch (err) {
      recorder.event(pod, 'Warning', 'Failed', `Error: ${(err as Error).message}`);
      result.errors.set(name, { reason: 'CreateContainerError', message: (err as Error).message });
      return false;
    }
    recorder.event(pod, 'Normal', 'Created', `Created container ${name}`);
    try {
      await runtime.startContainer(id);
    } catch (err) {
      recorder.event(pod, 'Warning', 'Failed', `Error: ${(err as Error).message}`);
      result.errors.set(name, { reason: 'RunContainerError', message: (err as Error).message });
      return false;
    }
    recorder.event(pod, 'Normal', 'Started', `Started container ${name}`);
    try {
      await opts.hooks?.postStart?.(pod, c, id);
    } catch (err) {
      // Upstream startContainer: a failed postStart hook kills the container,
      // which then restarts (or not) per restartPolicy.
      const message = (err as Error).message;
      recorder.event(pod, 'Warning', 'FailedPostStartHook', message);
      await killContainer(
        pod,
        await runtime.containerStatus(id),
        pod.spec?.terminationGracePeriodSeconds ?? 30,
        'FailedPostStartHook',
      );
      result.errors.set(name, { reason: 'PostStartHookError', message });
      return false;
    }
    return true;
  }

  async function killContainer(pod: Pod, c: ContainerStatus, gracePeriodSeconds: number, message?: string) {
    const name = containerNameOf(c);
    const spec = [
      ...(pod.spec?.initContainers ?? []),
      ...(pod.spec?.containers ?? []),
      ...(pod.spec?.ephemeralContainers ?? []).map(ephemeralContainerSpec),
    ].find((s) => s.name === name);
    recorder.event(pod, 'Normal', 'Killing', message ?? `Stopping container ${name}`);
    const started = opts.now();
    if (spec) await opts.hooks?.preStop?.(pod, spec, c.id, gracePeriodSeconds);
    const left = Math.max(0, gracePeriodSeconds - Math.floor((opts.now() - started) / 1000));
    await runtime.stopContainer(c.id, left);
  }

  /**
   * Starts each ephemeral container the runtime has never had for this pod
   * (upstream computePodActions' EphemeralContainersToStart): one that ran,
   * whatever its end, is never started again. With targetContainerName it
   * joins that container's PID namespace (CRI NamespaceMode TARGET).
   */
  async function startEphemeralContainers(
    pod: Pod,
    status: PodRuntimeStatus,
    sandboxId: string,
    sbConfig: PodSandboxConfig,
    podIPs: string[],
    result: SyncResult,
  ): Promise<void> {
    for (const ec of pod.spec?.ephemeralContainers ?? []) {
      const name = ec.name ?? '';
      const history = containerHistory(status, name);
      if (history[0]?.state === 'CONTAINER_CREATED') await runtime.startContainer(history[0].id);
      if (history.length > 0) continue;
      let targetId: string | undefined;
      if (ec.targetContainerName) {
        targetId = containerHistory(status, ec.targetContainerName)[0]?.id;
        if (!targetId) {
          // Upstream getTargetID: the target has to exist first; try again shortly.
          result.errors.set(name, {
            reason: 'CreateContainerConfigError',
            message: `unable to find target container ${ec.targetContainerName}`,
          });
          result.requeueAfterMs = Math.min(result.requeueAfterMs ?? Number.POSITIVE_INFINITY, 1000);
          continue;
        }
      }
      const c = ephemeralContainerSpec(ec);
      await startContainer(pod, c, sandboxId, sbConfig, podIPs, history, result, targetId);
    }
  }

  async function syncPod(pod: Pod, status: PodRuntimeStatus): Promise<SyncResult> {
    const result: SyncResult = { errors: new Map() };
    const spec = pod.spec ?? {};
    let sandbox = sandboxReady(pod, status);
    if (!sandbox) {
      const previous = status.sandboxes[0];
      // A pod that will not restart does not get a new sandbox once its
      // containers ran (upstream computePodActions).
      if (previous && spec.restartPolicy === 'Never' && status.containers.length > 0) return result;
      // A changed sandbox takes its containers with it.
      const running = status.containers.filter((c) => c.state === 'CONTAINER_RUNNING');
      await Promise.all(
        running.map((c) =>
          killContainer(pod, c, 0, 'Pod sandbox changed, it will be killed and re-created.'),
        ),
      );
      const stopped = status.sandboxes.filter((s) => s.state === 'SANDBOX_READY');
      for (const s of stopped) await runtime.stopPodSandbox(s.id);
      const attempt = previous ? previous.metadata.attempt + 1 : 0;
      if (previous)
        recorder.event(
          pod,
          'Normal',
          'SandboxChanged',
          'Pod sandbox changed, it will be killed and re-created.',
        );
      try {
        const id = await runtime.runPodSandbox(sandboxConfig(pod, attempt), spec.runtimeClassName);
        sandbox = await runtime.podSandboxStatus(id);
      } catch (err) {
        const message = `Failed to create pod sandbox: ${(err as Error).message}`;
        recorder.event(pod, 'Warning', 'FailedCreatePodSandBox', message);
        log('sandbox creation failed', {
          pod: `${pod.metadata.namespace}/${pod.metadata.name}`,
          error: message,
        });
        throw err;
      }
      // Upstream SyncPod asks for the new sandbox's status (its IPs) and goes
      // on with what it read before. Here the pod is read again only when
      // something of it was just stopped, so that the containers' history
      // (restart counts, backoff) shows them exited; otherwise, as for every
      // new pod, nothing but the new sandbox changed, and three CRI calls
      // (two lists and a sandbox status) are saved on each pod's start.
      status =
        running.length > 0 || stopped.length > 0
          ? await getPodStatus(status.uid)
          : { ...status, sandboxes: [sandbox, ...status.sandboxes] };
    }
    const sbConfig = sandboxConfig(pod, sandbox.metadata.attempt);
    const podIPs = sandbox.network?.ip
      ? [sandbox.network.ip, ...(sandbox.network.additionalIps ?? []).map((i) => i.ip)]
      : [];

    // Ephemeral containers first, as upstream, so that one can debug a pod
    // whose init containers fail.
    await startEphemeralContainers(pod, status, sandbox.id, sbConfig, podIPs, result);

    // Init containers, in order: each must succeed before the next starts.
    // Sidecars (restartPolicy Always) start in order too, but keep running.
    for (const c of spec.initContainers ?? []) {
      const history = containerHistory(status, c.name ?? '');
      const last = history[0];
      const sidecar = c.restartPolicy === 'Always';
      if (!last) {
        const started = await startContainer(pod, c, sandbox.id, sbConfig, podIPs, history, result);
        if (!started || !sidecar) return result;
        continue;
      }
      if (last.state === 'CONTAINER_CREATED') {
        await runtime.startContainer(last.id);
        if (!sidecar) return result;
        continue;
      }
      if (last.state === 'CONTAINER_RUNNING' || last.state === 'CONTAINER_UNKNOWN') {
        if (sidecar) continue;
        return result;
      }
      // Exited.
      if (!sidecar && last.exitCode === 0) continue;
      if (!sidecar && spec.restartPolicy === 'Never') return result; // the pod has failed
      if (!doBackOff(pod, c, last, result)) return result;
      const started = await startContainer(pod, c, sandbox.id, sbConfig, podIPs, history, result);
      if (!started || !sidecar) return result;
    }

    // App containers: start what is missing, restart what exited (per
    // restartPolicy, after its backoff), replace what changed.
    await Promise.all(
      (spec.containers ?? []).map(async (c) => {
        const history = containerHistory(status, c.name ?? '');
        const last = history[0];
        if (!last) {
          await startContainer(pod, c, sandbox.id, sbConfig, podIPs, history, result);
          return;
        }
        if (last.state === 'CONTAINER_CREATED') {
          await runtime.startContainer(last.id);
          return;
        }
        if (last.state === 'CONTAINER_RUNNING') {
          // A failed liveness or startup probe kills the container (upstream
          // computePodActions), within the probe's own grace period if it has one.
          const unhealthy = opts.hooks?.unhealthy?.(pod, c, last.id);
          if (unhealthy) {
            const restart = (spec.restartPolicy ?? 'Always') !== 'Never';
            const probe = unhealthy === 'liveness' ? c.livenessProbe : c.startupProbe;
            await killContainer(
              pod,
              last,
              probe?.terminationGracePeriodSeconds ?? spec.terminationGracePeriodSeconds ?? 30,
              `Container ${c.name} failed ${unhealthy} probe${restart ? ', will be restarted' : ''}`,
            );
            if (!restart) return;
            history.unshift(await runtime.containerStatus(last.id));
            await startContainer(pod, c, sandbox.id, sbConfig, podIPs, history, result);
            return;
          }
          if (last.annotations[CONTAINER_HASH_ANNOTATION] === hashContainer(c)) return;
          await killContainer(
            pod,
            last,
            pod.spec?.terminationGracePeriodSeconds ?? 30,
            `Container ${c.name} definition changed, will be restarted`,
          );
          history.unshift(await runtime.containerStatus(last.id));
          await startContainer(pod, c, sandbox.id, sbConfig, podIPs, history, result);
          return;
        }
        if (last.state !== 'CONTAINER_EXITED') return;
        if (!shouldRestart(pod, c, last.exitCode)) return;
        if (!doBackOff(pod, c, last, result)) return;
        await startContainer(pod, c, sandbox.id, sbConfig, podIPs, history, result);
      }),
    );
    return result;
  }

  async function killPod(pod: Pod, status: PodRuntimeStatus, gracePeriodSeconds: number): Promise<void> {
    const running = status.containers.filter(
      (c) => c.state === 'CONTAINER_RUNNING' || c.state === 'CONTAINER_CREATED',
    );
    await Promise.all(running.map((c) => killContainer(pod, c, gracePeriodSeconds)));
    for (const s of status.sandboxes) if (s.state === 'SANDBOX_READY') await runtime.stopPodSandbox(s.id);
  }

  async function removePod(uid: string): Promise<void> {
    const status = await getPodStatus(uid);
    for (const c of status.containers) {
      if (c.state === 'CONTAINER_RUNNING') await runtime.stopContainer(c.id, 0);
      await runtime.removeContainer(c.id);
    }
    for (const s of status.sandboxes) {
      await runtime.stopPodSandbox(s.id);
      await runtime.removePodSandbox(s.id);
    }
  }

  return { getPodStatus, syncPod, killPod, removePod };
}

/**
 * A container's namespaces: the pod's, except that one with a target
 * (an ephemeral container's targetContainerName) shares that container's
 * PID namespace when the pod does not share one (upstream
 * determineEffectiveSecurityContext's nsTarget).
 */
function namespacesForContainer(pod: Pod, targetId: string | undefined): NamespaceOption {
  const ns = namespacesForPod(pod);
  if (targetId && ns.pid === 'CONTAINER') return { ...ns, pid: 'TARGET', targetId };
  return ns;
}

/** upstream NamespacesForPod: which namespaces the sandbox and its containers share with the node or each other. */
function namespacesForPod(pod: Pod): NamespaceOption {
  const spec = pod.spec ?? {};
  return {
    network: spec.hostNetwork ? 'NODE' : 'POD',
    pid: spec.hostPID ? 'NODE' : spec.shareProcessNamespace ? 'POD' : 'CONTAINER',
    ipc: spec.hostIPC ? 'NODE' : 'POD',
  };
}
