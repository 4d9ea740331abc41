// A pod's status as the kubelet reports it, from what the runtime has: the
// container statuses (state, lastState, restartCount, ready), the phase
// (upstream getPhase), the conditions the kubelet owns and the pod's IPs.
// https://github.com/kubernetes/kubernetes/blob/master/pkg/kubelet/kubelet_pods.go (generateAPIPodStatus, getPhase)
// https://github.com/kubernetes/kubernetes/blob/master/pkg/kubelet/status/generate.go

import { rfc3339 } from '../api/meta.ts';
import type {
  ContainerStatus as APIContainerStatus,
  Container as ContainerSpec,
  ContainerState,
  Pod,
  PodCondition,
  PodStatus,
} from '../api/types/core-v1.ts';
import {
  type ContainerError,
  containerHistory,
  ephemeralContainerSpec,
  type PodRuntimeStatus,
  restartCountOf,
  sandboxReady,
} from './kuberuntime-manager.ts';
import type { ContainerStatus } from './runtime/runtime.ts';

/** The condition types the kubelet writes; others (DisruptionTarget, readiness gates) belong to others. */
export const KUBELET_CONDITIONS = [
  'PodReadyToStartContainers',
  'Initialized',
  'Ready',
  'ContainersReady',
  'PodScheduled',
] as const;

/**
 * What the prober (prober/manager.ts) says about a running container. Its
 * results are about one container instance, so the runtime's container ID
 * comes along: a restarted container is not ready until probed again.
 */
export interface ContainerReadiness {
  ready(pod: Pod, container: ContainerSpec, containerId: string): boolean;
  started(pod: Pod, container: ContainerSpec, containerId: string): boolean;
}

/** Without a prober every running container counts as started and ready (as kwok does). */
export const alwaysReady: ContainerReadiness = { ready: () => true, started: () => true };

export interface GenerateOptions {
  errors: Map<string, ContainerError>;
  hostIPs: string[];
  /** containerID prefix: the runtime's name, e.g. containerd:// */
  runtimeName: string;
  /** The pod has been stopped for good (deleted or completed): every container must read as terminated. */
  podIsTerminal: boolean;
  readiness?: ContainerReadiness;
}

const time = (ns: bigint) => rfc3339(new Date(Number(ns / 1_000_000n)));

function terminatedState(c: ContainerStatus, runtimeName: string): ContainerState {
  return {
    terminated: {
      exitCode: c.exitCode,
      reason: c.reason || (c.exitCode === 0 ? 'Completed' : 'Error'),
      ...(c.message ? { message: c.message } : {}),
      startedAt: time(c.startedAt || c.createdAt),
      finishedAt: time(c.finishedAt),
      containerID: `${runtimeName}://${c.id}`,
    },
  };
}

function containerStatus(
  pod: Pod,
  spec: ContainerSpec,
  rs: PodRuntimeStatus,
  opts: GenerateOptions,
  defaultWaiting: string,
): APIContainerStatus {
  const name = spec.name ?? '';
  const history = containerHistory(rs, name);
  const [last, previous] = history;
  const error = opts.errors.get(name);
  const out: APIContainerStatus = {
    name,
    state: { waiting: { reason: defaultWaiting } },
    lastState: {},
    ready: false,
    restartCount: last ? restartCountOf(last) : 0,
    image: last?.image.image ?? spec.image ?? '',
    imageID: last?.imageRef ?? '',
    started: false,
  };
  if (last) out.containerID = `${opts.runtimeName}://${last.id}`;
  if (previous) out.lastState = terminatedState(previous, opts.runtimeName);
  if (last?.state === 'CONTAINER_RUNNING') {
    out.state = { running: { startedAt: time(last.startedAt) } };
    out.started = opts.readiness?.started(pod, spec, last.id) ?? true;
    out.ready = out.started && (opts.readiness?.ready(pod, spec, last.id) ?? true);
  } else if (last?.state === 'CONTAINER_EXITED') {
    if (error) {
      // Waiting to run again (CrashLoopBackOff...): the exit is the last state.
      out.state = { waiting: { reason: error.reason, message: error.message } };
      out.lastState = terminatedState(last, opts.runtimeName);
    } else {
      out.state = terminatedState(last, opts.runtimeName);
    }
  } else if (error) {
    out.state = { waiting: { reason: error.reason, message: error.message } };
  }
  if (opts.podIsTerminal && !out.state?.terminated) {
    // Upstream: a terminal pod reports no container as still waiting or running.
    out.state = {
      terminated: {
        exitCode: 137,
        reason: 'ContainerStatusUnknown',
        message: 'The container could not be located when the pod was terminated',
      },
    };
    out.ready = false;
    out.started = false;
  }
  return out;
}

/**
 * An ephemeral container's status: as any container's, but never ready, and
 * without `started`, which upstream's prober sets only for the containers
 * it knows (ephemeral ones have no probes). It plays no part in the phase
 * or the pod's conditions.
 */
function ephemeralContainerStatus(
  pod: Pod,
  spec: ContainerSpec,
  rs: PodRuntimeStatus,
  opts: GenerateOptions,
  defaultWaiting: string,
): APIContainerStatus {
  const { started: _, ...status } = containerStatus(pod, spec, rs, opts, defaultWaiting);
  return { ...status, ready: false };
}

/**
 * Upstream getPhase: Pending, Running, Succeeded or Failed from the container
 * statuses. Regular init containers gate the pod; sidecars (restartable init
 * containers) count as running while they run; a terminal pod (deleted, or
 * done) never reads Running.
 */
export function getPhase(
  pod: Pod,
  init: APIContainerStatus[],
  app: APIContainerStatus[],
  podIsTerminal: boolean,
): string {
  const spec = pod.spec ?? {};
  let pendingInitialization = 0;
  let failedInitialization = 0;
  let unknown = 0;
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const [i, c] of (spec.initContainers ?? []).entries()) {
    const s = init[i];
    const state = s?.state ?? {};
    if (c.restartPolicy === 'Always') {
      if (state.running) {
        if (!s?.started) pendingInitialization++;
        running++;
      } else if (state.waiting && !s?.lastState?.terminated) {
        pendingInitialization++;
        waiting++;
      } else if (!state.terminated && !state.waiting) {
        pendingInitialization++;
        unknown++;
      }
      continue;
    }
    if (state.running) pendingInitialization++;
    else if (state.terminated) {
      if (state.terminated.exitCode !== 0) failedInitialization++;
    } else if (state.waiting) {
      if (s?.lastState?.terminated) {
        if (s.lastState.terminated.exitCode !== 0) failedInitialization++;
      } else pendingInitialization++;
    } else pendingInitialization++;
  }
  for (const s of app) {
    const state = s.state ?? {};
    if (state.running) running++;
    else if (state.terminated) {
      stopped++;
      if (state.terminated.exitCode === 0) succeeded++;
    } else if (state.waiting) {
      if (s.lastState?.terminated) stopped++;
      else waiting++;
    } else unknown++;
  }
  if (failedInitialization > 0 && spec.restartPolicy === 'Never') return 'Failed';
  const regularStarted = app.some((s) => s.state?.running || s.state?.terminated || s.lastState?.terminated);
  if ((pendingInitialization > 0 && !regularStarted) || waiting > 0) return 'Pending';
  if (running > 0 && unknown === 0) return 'Running';
  if (running === 0 && stopped > 0 && unknown === 0) {
    if (podIsTerminal) return stopped === succeeded ? 'Succeeded' : 'Failed';
    if ((spec.restartPolicy ?? 'Always') === 'Always') return 'Running';
    if (stopped === succeeded) return 'Succeeded';
    if (spec.restartPolicy === 'Never') return 'Failed';
    return 'Running';
  }
  return 'Pending';
}

/** generateAPIPodStatus: the kubelet-owned part of the pod's status. */
export function generateAPIPodStatus(pod: Pod, rs: PodRuntimeStatus, opts: GenerateOptions): PodStatus {
  const spec = pod.spec ?? {};
  const hasInit = (spec.initContainers ?? []).length > 0;
  const defaultWaiting = hasInit ? 'PodInitializing' : 'ContainerCreating';
  const initStatuses = (spec.initContainers ?? []).map((c) =>
    containerStatus(pod, c, rs, opts, defaultWaiting),
  );
  const appStatuses = (spec.containers ?? []).map((c) => containerStatus(pod, c, rs, opts, defaultWaiting));
  const phase = getPhase(pod, initStatuses, appStatuses, opts.podIsTerminal);

  const sandbox = sandboxReady(pod, rs);
  const podIPs = spec.hostNetwork
    ? opts.hostIPs
    : sandbox?.network?.ip
      ? [sandbox.network.ip, ...(sandbox.network.additionalIps ?? []).map((i) => i.ip)]
      : [];

  const condition = (type: string, ok: boolean, reason?: string, message?: string): PodCondition => ({
    type,
    status: ok ? 'True' : 'False',
    ...(reason ? { reason } : {}),
    ...(message ? { message } : {}),
  });
  const completed = phase === 'Succeeded';
  const incomplete = (spec.initContainers ?? [])
    .filter((c, i) => {
      const s = initStatuses[i];
      if (c.restartPolicy === 'Always') return !s?.started;
      return s?.state?.terminated?.exitCode !== 0;
    })
    .map((c) => c.name);
  const appStarted = appStatuses.some(
    (s) => s.state?.running || s.state?.terminated || s.lastState?.terminated,
  );
  const initialized = incomplete.length === 0 || appStarted || completed;
  const unready = [
    ...(spec.initContainers ?? []).filter((c, i) => c.restartPolicy === 'Always' && !initStatuses[i]?.ready),
    ...(spec.containers ?? []).filter((_, i) => !appStatuses[i]?.ready),
  ].map((c) => c.name);
  const containersReady = unready.length === 0 && !completed;
  const containersReadyCondition = completed
    ? condition('ContainersReady', false, 'PodCompleted')
    : containersReady
      ? condition('ContainersReady', true)
      : condition(
          'ContainersReady',
          false,
          'ContainersNotReady',
          `containers with unready status: [${unready.join(' ')}]`,
        );
  let ready = containersReadyCondition;
  if (containersReady) {
    // Readiness gates: each named condition must be True (status/generate.go).
    const missing: string[] = [];
    for (const gate of spec.readinessGates ?? []) {
      const c = pod.status?.conditions?.find((x) => x.type === gate.conditionType);
      if (!c)
        missing.push(`corresponding condition of pod readiness gate "${gate.conditionType}" does not exist.`);
      else if (c.status !== 'True')
        missing.push(
          `the status of pod readiness gate "${gate.conditionType}" is not "True", but ${c.status}`,
        );
    }
    ready = missing.length
      ? condition('Ready', false, 'ReadinessGatesNotReady', missing.join(', '))
      : condition('Ready', true);
  } else {
    ready = { ...containersReadyCondition, type: 'Ready' };
  }
  const conditions: PodCondition[] = [
    condition(
      'PodReadyToStartContainers',
      !!sandbox || (spec.hostNetwork === true && rs.sandboxes[0]?.state === 'SANDBOX_READY'),
    ),
    initialized
      ? condition('Initialized', true, completed && hasInit ? 'PodCompleted' : undefined)
      : condition(
          'Initialized',
          false,
          'ContainersNotInitialized',
          `containers with incomplete status: [${incomplete.join(' ')}]`,
        ),
    ready,
    containersReadyCondition,
    condition('PodScheduled', true),
  ];

  const status: PodStatus = {
    phase,
    conditions,
    hostIP: opts.hostIPs[0] ?? '',
    hostIPs: opts.hostIPs.map((ip) => ({ ip })),
    ...(podIPs.length ? { podIP: podIPs[0], podIPs: podIPs.map((ip) => ({ ip })) } : {}),
    containerStatuses: appStatuses,
  };
  if (hasInit) status.initContainerStatuses = initStatuses;
  if (spec.ephemeralContainers?.length) {
    status.ephemeralContainerStatuses = spec.ephemeralContainers.map((ec) =>
      ephemeralContainerStatus(pod, ephemeralContainerSpec(ec), rs, opts, defaultWaiting),
    );
  }
  return status;
}
