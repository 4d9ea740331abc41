// One probe of one container, run every periodSeconds, as upstream's probe
// worker (pkg/kubelet/prober/worker.go). What it keeps is the result the
// kubelet acts on, for the container instance (container ID) it probed:
//
//   - a new container instance starts from the probe's initial result:
//     readiness Failure (not ready until a probe says so), liveness Success
//     (alive until probes say otherwise), startup Unknown (not started);
//   - nothing is probed before initialDelaySeconds have passed since the
//     container started, and liveness and readiness wait for the startup
//     probe to succeed; once it has, the startup probe is not run again;
//   - a result only changes after failureThreshold failures or
//     successThreshold successes in a row;
//   - a failed liveness or startup probe puts the worker on hold: the
//     kubelet restarts the container, and probing resumes with the new
//     instance;
//   - a container that is not running reads as Failure; a worker ends when
//     its container will not run again, and liveness and startup workers end
//     once the pod is being deleted (they must not restart containers that are
//     being stopped anyway).
//
// The first probe runs when the worker starts, then once every period, on
// the injected clock.

import type { Container as ContainerSpec, Pod, Probe } from '../../api/types/core-v1.ts';
import type { EventRecorder } from '../../client/events.ts';
import type { Clock } from '../../client/workqueue.ts';
import type { Runtime } from '../runtime/runtime.ts';
import { ProbeError, runProbeHandler } from './prober.ts';

export type ProbeType = 'liveness' | 'readiness' | 'startup';
export type ProbeResult = 'Success' | 'Failure' | 'Unknown';

/** What the worker needs to know about the newest instance of its container. */
export interface ObservedContainer {
  id: string;
  running: boolean;
  /** Exited, and the pod's restartPolicy will not start it again. */
  finished: boolean;
  /** Wall-clock ms. */
  startedAt: number;
  podIP: string;
}

export interface WorkerDeps {
  runtime: Runtime;
  recorder: EventRecorder;
  clock: Clock;
  /** Wall-clock ms, to compare with the container's start time. */
  now(): number;
  observe(pod: Pod, containerName: string): Promise<ObservedContainer | undefined>;
  /** The startup probe's result for a container instance (liveness and readiness wait for Success). */
  startupResult(pod: Pod, containerName: string, containerId: string): ProbeResult | undefined;
  /** The result the kubelet acts on changed. */
  onChange(pod: Pod): void;
  log(msg: string, fields?: Record<string, unknown>): void;
}

const INITIAL: Record<ProbeType, ProbeResult> = {
  liveness: 'Success',
  readiness: 'Failure',
  startup: 'Unknown',
};

const TITLE: Record<ProbeType, string> = { liveness: 'Liveness', readiness: 'Readiness', startup: 'Startup' };

export class ProbeWorker {
  readonly type: ProbeType;
  readonly containerName: string;
  pod: Pod;
  /** The container instance the result is about. */
  containerId: string | undefined;
  result: ProbeResult;
  readonly #deps: WorkerDeps;
  readonly #spec: Probe;
  #lastResult: ProbeResult | undefined;
  #resultRun = 0;
  #onHold = false;
  #timer: unknown;
  #stopped = false;

  constructor(deps: WorkerDeps, pod: Pod, container: ContainerSpec, type: ProbeType, spec: Probe) {
    this.#deps = deps;
    this.pod = pod;
    this.containerName = container.name ?? '';
    this.type = type;
    this.#spec = spec;
    this.result = INITIAL[type];
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  start(): void {
    const periodMs = Math.max(1, this.#spec.periodSeconds || 10) * 1000;
    const tick = async () => {
      this.#timer = undefined;
      if (this.#stopped) return;
      const startedAt = this.#deps.clock.now();
      let keepGoing = true;
      try {
        keepGoing = await this.doProbe();
      } catch (err) {
        this.#deps.log('probe failed to run', { probe: this.type, error: String(err) });
      }
      if (!keepGoing || this.#stopped) {
        this.stop();
        return;
      }
      const wait = Math.max(0, startedAt + periodMs - this.#deps.clock.now());
      this.#timer = this.#deps.clock.setTimeout(() => void tick(), wait);
    };
    void tick();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#deps.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #set(result: ProbeResult): void {
    if (this.result === result) return;
    this.result = result;
    this.#deps.onChange(this.pod);
  }

  /** One probe period (upstream doProbe). Returns false when the worker should end. */
  async doProbe(): Promise<boolean> {
    const pod = this.pod;
    const c = await this.#deps.observe(pod, this.containerName);
    if (!c) return true; // not created yet
    if (c.id !== this.containerId) {
      this.containerId = c.id;
      this.result = INITIAL[this.type];
      this.#lastResult = undefined;
      this.#resultRun = 0;
      this.#onHold = false;
    }
    if (this.#onHold) return true;
    if (!c.running) {
      this.#set('Failure');
      return !c.finished;
    }
    if (pod.metadata.deletionTimestamp && this.type !== 'readiness') {
      this.#set('Success');
      return false;
    }
    const sinceStart = Math.floor((this.#deps.now() - c.startedAt) / 1000);
    if (sinceStart < (this.#spec.initialDelaySeconds ?? 0)) return true;
    const started = this.#deps.startupResult(pod, this.containerName, c.id);
    if (this.type === 'startup' && this.result === 'Success') return true;
    if (this.type !== 'startup' && started !== undefined && started !== 'Success') return true;

    const container = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find(
      (x) => x.name === this.containerName,
    );
    if (!container) return false;
    const title = TITLE[this.type];
    let result: ProbeResult;
    try {
      const outcome = await runProbeHandler(
        this.#deps.runtime,
        this.#spec,
        { pod, container, containerId: c.id, podIP: c.podIP },
        this.#spec.timeoutSeconds || 1,
      );
      if (outcome.result === 'Failure') {
        this.#deps.recorder.event(pod, 'Warning', 'Unhealthy', `${title} probe failed: ${outcome.output}`);
      } else if (outcome.result === 'Warning') {
        this.#deps.recorder.event(
          pod,
          'Warning',
          'ProbeWarning',
          `${title} probe warning: ${outcome.output}`,
        );
      }
      result = outcome.result === 'Failure' ? 'Failure' : 'Success';
    } catch (err) {
      if (this.#stopped) return false;
      const message = err instanceof ProbeError ? err.message : String((err as Error)?.message ?? err);
      this.#deps.recorder.event(pod, 'Warning', 'Unhealthy', `${title} probe errored: ${message}`);
      result = 'Failure';
    }
    // The container may have been replaced, or the worker stopped, while the probe ran.
    if (this.#stopped || this.containerId !== c.id) return !this.#stopped;

    if (this.#lastResult === result) this.#resultRun++;
    else {
      this.#lastResult = result;
      this.#resultRun = 1;
    }
    const failureThreshold = this.#spec.failureThreshold || 3;
    const successThreshold = this.#spec.successThreshold || 1;
    if (
      (result === 'Failure' && this.#resultRun < failureThreshold) ||
      (result === 'Success' && this.#resultRun < successThreshold)
    ) {
      return true;
    }
    this.#set(result);
    if (result === 'Failure' && this.type !== 'readiness') {
      // The container is restarted; probing resumes with its next instance.
      this.#onHold = true;
      this.#resultRun = 0;
    }
    return true;
  }
}
