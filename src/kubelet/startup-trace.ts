// Pod startup phases, at debug level (SKIFF_LOG_LEVEL=debug): one
// `pod startup phase` line per step of a pod's first sync, with the pod's uid
// and the phase's name, so bench/pod-startup.ts can tell from the agent's log
// how long each step took (the kubelet seeing the pod, the sandbox, the
// image and container config, the container's creation and start, the status
// write). The runtime's part is timed by wrapping the Runtime: the runtime
// manager needs no change for it.

import type { Log } from '../util/log.ts';
import { KUBERNETES_POD_UID_LABEL } from './labels.ts';
import type { Runtime } from './runtime/runtime.ts';

export const STARTUP_PHASE_MSG = 'pod startup phase';

export type StartupPhase =
  | 'seen' // the kubelet's informer delivered the pod
  | 'syncStart' // its worker began a sync
  | 'sandboxStart'
  | 'sandboxReady'
  | 'containerCreateStart' // the image is present and the container's config built
  | 'containerCreated'
  | 'containerStarted'
  | 'statusWritten';

export type TracePhase = (uid: string, phase: StartupPhase) => void;

export function startupTracer(log: Log): TracePhase {
  return (uid, phase) => log.debug(STARTUP_PHASE_MSG, { uid, phase });
}

/** The tracer, and a hook told of the same phases (none: the tracer alone). */
export function withStartupHook(trace: TracePhase, hook: TracePhase | undefined): TracePhase {
  if (!hook) return trace;
  return (uid, phase) => {
    trace(uid, phase);
    hook(uid, phase);
  };
}

/** The runtime, with its sandbox and container starts traced. Only creations are traced, so each pod's are few. */
export function traceRuntime(runtime: Runtime, trace: TracePhase): Runtime {
  // Container id → pod uid, from createContainer to startContainer.
  const podOf = new Map<string, string>();
  const traced: Partial<Runtime> = {
    async runPodSandbox(config, handler) {
      trace(config.metadata.uid, 'sandboxStart');
      const id = await runtime.runPodSandbox(config, handler);
      trace(config.metadata.uid, 'sandboxReady');
      return id;
    },
    async createContainer(sandboxId, config, sandboxConfig) {
      const uid = sandboxConfig.metadata.uid ?? config.labels?.[KUBERNETES_POD_UID_LABEL] ?? '';
      trace(uid, 'containerCreateStart');
      const id = await runtime.createContainer(sandboxId, config, sandboxConfig);
      trace(uid, 'containerCreated');
      podOf.set(id, uid);
      return id;
    },
    async startContainer(id) {
      await runtime.startContainer(id);
      const uid = podOf.get(id);
      podOf.delete(id);
      if (uid) trace(uid, 'containerStarted');
    },
  };
  return new Proxy(runtime, {
    get(target, prop, receiver) {
      if (prop in traced) return traced[prop as keyof Runtime];
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
