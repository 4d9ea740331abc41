// The cri Runtime: CRI v1 over gRPC to a container runtime's unix socket
// (containerd here), as kubelet's remote runtime service does
// (kubernetes pkg/kubelet/cri/remote). A thin mapping: the Runtime interface
// already uses CRI's messages in CRI's field names, so requests go out as
// they are and responses only get their int64s turned into bigints.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import {
  type AuthConfig,
  type Container,
  type ContainerConfig,
  type ContainerState,
  type ContainerStats,
  type ContainerStatus,
  type CpuUsage,
  type ExecSyncResult,
  type Image,
  type ImageSpec,
  type MemoryUsage,
  type NetworkInterfaceUsage,
  type PodSandbox,
  type PodSandboxConfig,
  type PodSandboxState,
  type PodSandboxStats,
  type PodSandboxStatus,
  type Runtime,
  RuntimeError,
  type StreamingRequest,
} from '../runtime.ts';

/** One of CRI's RuntimeConditions: RuntimeReady and NetworkReady are the ones the kubelet requires. */
export interface RuntimeCondition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

export interface CriRuntime extends Runtime {
  /** CRI Status: the runtime's conditions (kubelet turns unmet required ones into a NotReady node). */
  status(): Promise<RuntimeCondition[]>;
}

export interface CriOptions {
  /**
   * Deadline of an ordinary call. Upstream's kubelet uses 2 minutes
   * (--runtime-request-timeout); calls that wait on purpose (stop, exec)
   * get their own timeout on top.
   */
  requestTimeoutMs?: number;
  /** Deadline of an image pull; upstream has none, a pull that stalls is cut by its own progress timeout. */
  pullTimeoutMs?: number;
}

// gRPC's message size cap as kubelet sets it (maxMsgSize = 16 MiB), so a
// node with many containers still lists them in one response.
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * The .proto sits next to this module in src/. tsc does not copy it into
 * dist/, so the built module (dist/kubelet/runtime/cri/cri.js, as deep under
 * the repository as this file) reads it from the source tree.
 */
function protoPath(): string {
  const here = fileURLToPath(new URL('./api.proto', import.meta.url));
  if (existsSync(here)) return here;
  return fileURLToPath(new URL('../../../../src/kubelet/runtime/cri/api.proto', import.meta.url));
}

let loaded: grpc.GrpcObject | undefined;
function criPackage(): {
  RuntimeService: grpc.ServiceClientConstructor;
  ImageService: grpc.ServiceClientConstructor;
} {
  loaded ??= grpc.loadPackageDefinition(
    protoLoader.loadSync(protoPath(), {
      keepCase: false, // CRI's JSON names (podSandboxId), as the Runtime interface uses
      longs: String, // int64 arrives as a decimal string; we make bigints of the ones that can overflow
      enums: String, // 'CONTAINER_RUNNING', not 1
      defaults: true, // absent scalars as their zero values, as Go's generated code gives them
      oneofs: true,
    }),
  );
  const v1 = (loaded.runtime as grpc.GrpcObject).v1 as grpc.GrpcObject;
  return {
    RuntimeService: v1.RuntimeService as grpc.ServiceClientConstructor,
    ImageService: v1.ImageService as grpc.ServiceClientConstructor,
  };
}

/** gRPC's status code name in CRI error style: NOT_FOUND → NotFound. */
function codeName(code: number): string {
  const name = grpc.status[code] ?? 'UNKNOWN';
  return name
    .toLowerCase()
    .split('_')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');
}

function toRuntimeError(err: grpc.ServiceError, method: string): RuntimeError {
  return new RuntimeError(codeName(err.code), `${method}: ${err.details || err.message}`);
}

const nanos = (v: unknown): bigint => BigInt((v as string | number | undefined) ?? 0);

// ---- stats: CRI's UInt64Value wrappers become plain numbers, absent ones undefined.

/** A UInt64Value (`{ value: "123" }`, or null when the runtime left it out). */
const u64 = (v: unknown): number | undefined => {
  const value = (v as { value?: string | number } | null | undefined)?.value;
  return value === undefined ? undefined : Number(value);
};
/** Sets key only when the value is there, so an absent UInt64Value stays absent (exactOptionalPropertyTypes). */
function withValues<T extends object>(base: T, values: Record<string, number | undefined>): T {
  for (const [k, v] of Object.entries(values)) if (v !== undefined) (base as Record<string, number>)[k] = v;
  return base;
}
const cpuUsage = (c: any): CpuUsage | undefined =>
  c
    ? withValues<CpuUsage>(
        { timestamp: Number(c.timestamp) },
        { usageCoreNanoSeconds: u64(c.usageCoreNanoSeconds), usageNanoCores: u64(c.usageNanoCores) },
      )
    : undefined;
const memoryUsage = (m: any): MemoryUsage | undefined =>
  m
    ? withValues<MemoryUsage>(
        { timestamp: Number(m.timestamp) },
        {
          workingSetBytes: u64(m.workingSetBytes),
          availableBytes: u64(m.availableBytes),
          usageBytes: u64(m.usageBytes),
          rssBytes: u64(m.rssBytes),
          pageFaults: u64(m.pageFaults),
          majorPageFaults: u64(m.majorPageFaults),
        },
      )
    : undefined;
const interfaceUsage = (i: any): NetworkInterfaceUsage =>
  withValues<NetworkInterfaceUsage>(
    { name: i.name },
    {
      rxBytes: u64(i.rxBytes),
      rxErrors: u64(i.rxErrors),
      txBytes: u64(i.txBytes),
      txErrors: u64(i.txErrors),
    },
  );
function containerStats(s: any): ContainerStats {
  const a = s.attributes ?? {};
  const out: ContainerStats = {
    attributes: {
      id: a.id ?? '',
      metadata: a.metadata ?? { name: '', attempt: 0 },
      labels: a.labels ?? {},
      annotations: a.annotations ?? {},
    },
  };
  const cpu = cpuUsage(s.cpu);
  if (cpu) out.cpu = cpu;
  const memory = memoryUsage(s.memory);
  if (memory) out.memory = memory;
  const w = s.writableLayer;
  if (w) {
    out.writableLayer = withValues(
      { timestamp: Number(w.timestamp), ...(w.fsId ? { fsId: { mountpoint: w.fsId.mountpoint } } : {}) },
      { usedBytes: u64(w.usedBytes), inodesUsed: u64(w.inodesUsed) },
    );
  }
  return out;
}
function podSandboxStats(s: any): PodSandboxStats {
  const a = s.attributes ?? {};
  const out: PodSandboxStats = {
    attributes: {
      id: a.id ?? '',
      metadata: a.metadata,
      labels: a.labels ?? {},
      annotations: a.annotations ?? {},
    },
  };
  const l = s.linux;
  if (l) {
    const cpu = cpuUsage(l.cpu);
    const memory = memoryUsage(l.memory);
    out.linux = {
      ...(cpu ? { cpu } : {}),
      ...(memory ? { memory } : {}),
      ...(l.network
        ? {
            network: {
              timestamp: Number(l.network.timestamp),
              ...(l.network.defaultInterface
                ? { defaultInterface: interfaceUsage(l.network.defaultInterface) }
                : {}),
              interfaces: ((l.network.interfaces ?? []) as unknown[]).map(interfaceUsage),
            },
          }
        : {}),
      ...(l.process
        ? {
            process: withValues(
              { timestamp: Number(l.process.timestamp) },
              { processCount: u64(l.process.processCount) },
            ),
          }
        : {}),
      containers: ((l.containers ?? []) as unknown[]).map(containerStats),
    };
  }
  return out;
}

/** Opens a CRI client to `endpoint` (`unix:///run/containerd/containerd.sock`). Connects lazily. */
export function criRuntime(endpoint: string, opts: CriOptions = {}): CriRuntime {
  const requestTimeoutMs = opts.requestTimeoutMs ?? 2 * 60_000;
  const pullTimeoutMs = opts.pullTimeoutMs ?? 15 * 60_000;
  const target = endpoint.startsWith('unix:') ? endpoint : `unix://${endpoint}`;
  const { RuntimeService, ImageService } = criPackage();
  const channelOptions = {
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  };
  const runtimeService = new RuntimeService(target, grpc.credentials.createInsecure(), channelOptions);
  // Both services share one connection, as kubelet does when both endpoints are the same socket.
  const imageService = new ImageService(target, grpc.credentials.createInsecure(), {
    ...channelOptions,
    channelOverride: runtimeService.getChannel(),
  });

  const call = <T = any>(client: grpc.Client, method: string, req: object, timeoutMs = requestTimeoutMs) =>
    new Promise<T>((resolve, reject) => {
      const fn = (client as unknown as Record<string, grpc.requestCallback<T> | any>)[method] as (
        req: object,
        options: grpc.CallOptions,
        cb: (err: grpc.ServiceError | null, res: T) => void,
      ) => void;
      fn.call(client, req, { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(toRuntimeError(err, method));
        else resolve(res);
      });
    });
  const rt = (method: string, req: object, timeoutMs?: number) =>
    call(runtimeService, method, req, timeoutMs);
  const img = (method: string, req: object, timeoutMs?: number) => call(imageService, method, req, timeoutMs);

  const sandbox = (s: any): PodSandbox => ({
    id: s.id,
    metadata: s.metadata,
    state: s.state as PodSandboxState,
    createdAt: nanos(s.createdAt),
    labels: s.labels ?? {},
    annotations: s.annotations ?? {},
  });
  const container = (c: any): Container => ({
    id: c.id,
    podSandboxId: c.podSandboxId,
    metadata: c.metadata,
    image: c.image ?? { image: '' },
    imageRef: c.imageRef,
    state: c.state as ContainerState,
    createdAt: nanos(c.createdAt),
    labels: c.labels ?? {},
    annotations: c.annotations ?? {},
  });
  const image = (i: any): Image => ({
    id: i.id,
    repoTags: i.repoTags ?? [],
    repoDigests: i.repoDigests ?? [],
    size: nanos(i.size),
  });

  return {
    kind: 'cri',

    async version() {
      const res = await rt('Version', { version: 'v1' });
      return {
        runtimeName: res.runtimeName,
        runtimeVersion: res.runtimeVersion,
        runtimeApiVersion: res.runtimeApiVersion,
      };
    },

    async status() {
      const res = await rt('Status', {});
      return (res.status?.conditions ?? []) as RuntimeCondition[];
    },

    async runPodSandbox(config: PodSandboxConfig, runtimeHandler = '') {
      const res = await rt('RunPodSandbox', { config, runtimeHandler });
      return res.podSandboxId as string;
    },
    async stopPodSandbox(podSandboxId) {
      await rt('StopPodSandbox', { podSandboxId });
    },
    async removePodSandbox(podSandboxId) {
      await rt('RemovePodSandbox', { podSandboxId });
    },
    async podSandboxStatus(podSandboxId): Promise<PodSandboxStatus> {
      const { status: s } = await rt('PodSandboxStatus', { podSandboxId });
      return {
        ...sandbox(s),
        ...(s.network ? { network: { ip: s.network.ip, additionalIps: s.network.additionalIps ?? [] } } : {}),
        ...(s.linux ? { linux: s.linux } : {}),
      };
    },
    async listPodSandbox(filter = {}) {
      const res = await rt('ListPodSandbox', {
        filter: {
          ...(filter.state ? { state: { state: filter.state } } : {}),
          labelSelector: filter.labelSelector ?? {},
        },
      });
      return (res.items as unknown[]).map(sandbox);
    },

    async createContainer(podSandboxId, config: ContainerConfig, sandboxConfig: PodSandboxConfig) {
      const res = await rt('CreateContainer', { podSandboxId, config, sandboxConfig });
      return res.containerId as string;
    },
    async startContainer(containerId) {
      await rt('StartContainer', { containerId });
    },
    async stopContainer(containerId, timeoutSeconds) {
      // The runtime itself waits out the grace period before SIGKILL.
      await rt(
        'StopContainer',
        { containerId, timeout: timeoutSeconds },
        timeoutSeconds * 1000 + requestTimeoutMs,
      );
    },
    async removeContainer(containerId) {
      await rt('RemoveContainer', { containerId });
    },
    async reopenContainerLog(containerId) {
      await rt('ReopenContainerLog', { containerId });
    },
    async listContainers(filter = {}) {
      const res = await rt('ListContainers', {
        filter: {
          ...(filter.state ? { state: { state: filter.state } } : {}),
          podSandboxId: filter.podSandboxId ?? '',
          labelSelector: filter.labelSelector ?? {},
        },
      });
      return (res.containers as unknown[]).map(container);
    },
    async containerStatus(containerId): Promise<ContainerStatus> {
      const { status: s } = await rt('ContainerStatus', { containerId });
      const { podSandboxId: _, ...base } = container(s);
      return {
        ...base,
        startedAt: nanos(s.startedAt),
        finishedAt: nanos(s.finishedAt),
        exitCode: s.exitCode,
        reason: s.reason,
        message: s.message,
        mounts: s.mounts ?? [],
        logPath: s.logPath,
      };
    },
    async execSync(containerId, cmd, timeoutSeconds): Promise<ExecSyncResult> {
      const res = await rt(
        'ExecSync',
        { containerId, cmd, timeout: timeoutSeconds },
        (timeoutSeconds > 0 ? timeoutSeconds * 1000 : 24 * 3600_000) + requestTimeoutMs,
      );
      return { stdout: Buffer.from(res.stdout), stderr: Buffer.from(res.stderr), exitCode: res.exitCode };
    },
    async exec(req: StreamingRequest) {
      return (await rt('Exec', req)).url as string;
    },
    async attach(req: StreamingRequest) {
      return (await rt('Attach', req)).url as string;
    },
    async portForward(podSandboxId, ports) {
      return (await rt('PortForward', { podSandboxId, port: ports })).url as string;
    },

    async listContainerStats(filter = {}) {
      const res = await rt('ListContainerStats', {
        filter: {
          id: filter.id ?? '',
          podSandboxId: filter.podSandboxId ?? '',
          labelSelector: filter.labelSelector ?? {},
        },
      });
      return ((res.stats ?? []) as unknown[]).map(containerStats);
    },
    async listPodSandboxStats(filter = {}) {
      const res = await rt('ListPodSandboxStats', {
        filter: { id: filter.id ?? '', labelSelector: filter.labelSelector ?? {} },
      });
      return ((res.stats ?? []) as unknown[]).map(podSandboxStats);
    },

    async pullImage(spec: ImageSpec, auth?: AuthConfig, sandboxConfig?: PodSandboxConfig) {
      const res = await img(
        'PullImage',
        { image: spec, ...(auth ? { auth } : {}), ...(sandboxConfig ? { sandboxConfig } : {}) },
        pullTimeoutMs,
      );
      return res.imageRef as string;
    },
    async imageStatus(spec: ImageSpec) {
      const res = await img('ImageStatus', { image: spec });
      // CRI answers a missing image with an empty response, not NotFound.
      return res.image ? image(res.image) : undefined;
    },
    async listImages() {
      const res = await img('ListImages', {});
      return (res.images as unknown[]).map(image);
    },
    async removeImage(spec: ImageSpec) {
      await img('RemoveImage', { image: spec });
    },

    async close() {
      imageService.close();
      runtimeService.close();
    },
  };
}
