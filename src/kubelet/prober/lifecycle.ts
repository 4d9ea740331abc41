// Container lifecycle hooks, as upstream's handler runner
// (pkg/kubelet/lifecycle/handlers.go) and its callers in kuberuntime:
//
//   postStart  runs right after StartContainer, and the pod's sync waits for
//              it. If it fails, the runtime manager records FailedPostStartHook
//              with this message, kills the container, and restartPolicy
//              decides what comes next.
//   preStop    runs before StopContainer, inside the grace period: the time
//              it takes is taken off the grace period left for SIGTERM, and a
//              hook still running when the grace period is over is left behind.
//              A failure is recorded as FailedPreStopHook ("PreStopHook failed":
//              the hook's output stays out of events, as it may hold secrets).
//
// Handlers: exec (ExecSync in the container, no timeout of its own; a
// non-zero exit fails), httpGet (any HTTP response is fine, only a failed
// request fails; HTTPS unverified) and sleep.
// https://github.com/kubernetes/kubernetes/blob/master/pkg/kubelet/lifecycle/handlers.go
// https://github.com/kubernetes/kubernetes/blob/master/pkg/kubelet/kuberuntime/kuberuntime_container.go (executePreStopHook)

import type { Container as ContainerSpec, LifecycleHandler, Pod } from '../../api/types/core-v1.ts';
import type { EventRecorder } from '../../client/events.ts';
import type { Clock } from '../../client/workqueue.ts';
import type { Runtime } from '../runtime/runtime.ts';
import { dialError, httpGetRequest, probeHeaders, probeURL } from './http.ts';
import { resolvePort } from './prober.ts';

/** The kubelet's version in the hook's User-Agent, as upstream's kube-lifecycle/<major.minor>. */
const KUBE_LIFECYCLE_USER_AGENT = 'kube-lifecycle/1.32';
/** A hook has no timeout of its own upstream; this only keeps a hung postStart from blocking forever. */
const HOOK_REQUEST_LIMIT_MS = 24 * 3600_000;

export interface LifecycleOptions {
  runtime: Runtime;
  recorder: EventRecorder;
  /** Timers for sleep actions and the grace period. */
  clock: Clock;
  /** The pod's IP (the node's for hostNetwork pods): where httpGet goes without a host. */
  podIP(pod: Pod): Promise<string>;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface LifecycleHandlers {
  /** Throws a LifecycleHookError with upstream's message when the hook fails. */
  postStart(pod: Pod, container: ContainerSpec, containerId: string): Promise<void>;
  preStop(pod: Pod, container: ContainerSpec, containerId: string, gracePeriodSeconds: number): Promise<void>;
}

export class LifecycleHookError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LifecycleHookError';
  }
}

/** upstream format.Pod: name_namespace(uid). */
const formatPod = (pod: Pod) => `${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})`;

export function createLifecycleHandlers(opts: LifecycleOptions): LifecycleHandlers {
  const { runtime, clock } = opts;
  const sleep = (ms: number) => new Promise<void>((resolve) => clock.setTimeout(resolve, ms));

  async function run(pod: Pod, c: ContainerSpec, containerId: string, h: LifecycleHandler): Promise<void> {
    if (h.exec) {
      const command = h.exec.command ?? [];
      let detail: string;
      try {
        const r = await runtime.execSync(containerId, command, 0);
        if (r.exitCode === 0) return;
        const output = Buffer.concat([r.stdout, r.stderr]).toString('utf8');
        detail = `command '${command.join(' ')}' exited with ${r.exitCode}: ${output}, message: ${JSON.stringify(output)}`;
      } catch (err) {
        detail = `${(err as Error).message}, message: ""`;
      }
      throw new LifecycleHookError(
        `Exec lifecycle hook ([${command.join(' ')}]) for Container "${c.name}" in Pod "${formatPod(pod)}" failed - error: ${detail}`,
      );
    }
    if (h.httpGet) {
      const action = h.httpGet;
      try {
        const port = resolvePort(action.port, c);
        const host = action.host || (await opts.podIP(pod));
        const url = probeURL(action, host, port);
        // Any response will do: only a request that fails fails the hook.
        await httpGetRequest(
          url,
          probeHeaders(action, KUBE_LIFECYCLE_USER_AGENT),
          Date.now() + HOOK_REQUEST_LIMIT_MS,
        );
        return;
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        const why = e.code ? dialError(err, 'tcp', `${action.host ?? ''}:${action.port}`) : e.message;
        throw new LifecycleHookError(
          `HTTP lifecycle hook (${action.path ?? '/'}) for Container "${c.name}" in Pod "${formatPod(pod)}" failed - error: ${why}`,
        );
      }
    }
    if (h.sleep) {
      await sleep((h.sleep.seconds ?? 0) * 1000);
      return;
    }
    throw new LifecycleHookError(`invalid handler: ${JSON.stringify(h)}`);
  }

  return {
    async postStart(pod, c, containerId) {
      const hook = c.lifecycle?.postStart;
      if (hook) await run(pod, c, containerId, hook);
    },
    async preStop(pod, c, containerId, gracePeriodSeconds) {
      const hook = c.lifecycle?.preStop;
      if (!hook || gracePeriodSeconds <= 0) return;
      const done = run(pod, c, containerId, hook).then(
        () => opts.log?.('preStop hook completed', { pod: formatPod(pod), container: c.name }),
        (err: unknown) => {
          opts.log?.('preStop hook failed', { pod: formatPod(pod), container: c.name, error: String(err) });
          opts.recorder.event(pod, 'Warning', 'FailedPreStopHook', 'PreStopHook failed');
        },
      );
      let timer: unknown;
      const gracePeriodOver = new Promise<void>((resolve) => {
        timer = clock.setTimeout(() => {
          opts.log?.('preStop hook not completed in grace period', {
            pod: formatPod(pod),
            container: c.name,
          });
          resolve();
        }, gracePeriodSeconds * 1000);
      });
      await Promise.race([done, gracePeriodOver]);
      clock.clearTimeout(timer);
    },
  };
}
