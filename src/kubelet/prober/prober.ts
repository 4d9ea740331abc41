// Running one probe against one container, as upstream's prober.runProbe
// (pkg/kubelet/prober/prober.go): exec through the runtime's ExecSync,
// httpGet and tcpSocket to the pod's IP (or the probe's host), grpc to the
// health service. The lifecycle hooks (lifecycle.ts) run their httpGet,
// tcpSocket and exec actions through the same code.
// https://github.com/kubernetes/kubernetes/blob/master/pkg/kubelet/prober/prober.go

import type { Container as ContainerSpec, Pod, ProbeHandler } from '../../api/types/core-v1.ts';
import { type Runtime, RuntimeError } from '../runtime/runtime.ts';
import { grpcProbe } from './grpc.ts';
import { httpProbe, type ProbeOutcome, probeHeaders, probeURL } from './http.ts';
import { tcpProbe } from './tcp.ts';

export interface ProbeTarget {
  pod: Pod;
  container: ContainerSpec;
  containerId: string;
  /** The pod's IP; a hostNetwork pod's is the node's. */
  podIP: string;
}

/** A probe that could not run at all (a named port that does not exist...): upstream's "probe errored". */
export class ProbeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProbeError';
  }
}

/** A port given by number or by the name of one of the container's ports (upstream ResolveContainerPort). */
export function resolvePort(port: number | string | undefined, container: ContainerSpec): number {
  if (typeof port === 'number') return port;
  const byName = (container.ports ?? []).find((p) => p.name === port);
  if (byName?.containerPort) return byName.containerPort;
  if (port !== undefined && /^\d+$/.test(port)) return Number(port);
  throw new ProbeError(`couldn't find port: ${port} in ${JSON.stringify(container.ports ?? [])}`);
}

/** Exec: healthy when the command exits 0; its output (stdout and stderr) is the probe's output. */
export async function execProbe(
  runtime: Runtime,
  containerId: string,
  command: string[],
  timeoutSeconds: number,
): Promise<ProbeOutcome> {
  try {
    const r = await runtime.execSync(containerId, command, timeoutSeconds);
    const output = Buffer.concat([r.stdout, r.stderr]).toString('utf8');
    return { result: r.exitCode === 0 ? 'Success' : 'Failure', output };
  } catch (err) {
    // Upstream (ExecProbeTimeout): a command that outlives the timeout fails the probe.
    if (err instanceof RuntimeError && err.code === 'DeadlineExceeded') {
      return { result: 'Failure', output: `command "${command.join(' ')}" timed out` };
    }
    throw err;
  }
}

/** Runs the probe's one handler within timeoutSeconds. Throws ProbeError (or a runtime error) when it cannot run. */
export async function runProbeHandler(
  runtime: Runtime,
  handler: ProbeHandler,
  target: ProbeTarget,
  timeoutSeconds: number,
): Promise<ProbeOutcome> {
  const timeoutMs = Math.max(1, timeoutSeconds) * 1000;
  if (handler.exec) {
    return execProbe(runtime, target.containerId, handler.exec.command ?? [], timeoutSeconds);
  }
  if (handler.httpGet) {
    const port = resolvePort(handler.httpGet.port, target.container);
    const host = handler.httpGet.host || target.podIP;
    return httpProbe(probeURL(handler.httpGet, host, port), probeHeaders(handler.httpGet), timeoutMs);
  }
  if (handler.tcpSocket) {
    const port = resolvePort(handler.tcpSocket.port, target.container);
    return tcpProbe(handler.tcpSocket.host || target.podIP, port, timeoutMs);
  }
  if (handler.grpc) {
    return grpcProbe(target.podIP, handler.grpc.port ?? 0, handler.grpc.service ?? '', timeoutMs);
  }
  throw new ProbeError('missing probe handler');
}
