// The container runtime as the kubelet sees it: CRI v1's RuntimeService and
// ImageService (k8s.io/cri-api pkg/apis/runtime/v1/api.proto), with the
// messages as plain objects in CRI's own field names (camelCase JSON names of
// the proto fields), so the CRI implementation is a thin gRPC mapping.
//
// Two implementations share one contract suite (runtime.case.ts):
//   cri/     CRI v1 over gRPC to containerd: real containers, runc, CNI;
//   hollow/  no containers at all (like kwok), for scale tests.

export interface KeyValue {
  key: string;
  value: string;
}

export interface PodSandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt: number;
}

export interface PortMapping {
  protocol: 'TCP' | 'UDP' | 'SCTP';
  containerPort: number;
  hostPort: number;
  hostIp?: string;
}

export interface DNSConfig {
  servers: string[];
  searches: string[];
  options: string[];
}

/** CRI NamespaceMode: POD = 0, CONTAINER = 1, NODE = 2, TARGET = 3. */
export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';

export interface NamespaceOption {
  network?: NamespaceMode;
  pid?: NamespaceMode;
  ipc?: NamespaceMode;
  /** The container whose namespace a TARGET mode joins (CRI target_id). */
  targetId?: string;
}

export interface PodSandboxConfig {
  metadata: PodSandboxMetadata;
  hostname?: string;
  logDirectory?: string;
  dnsConfig?: DNSConfig;
  portMappings?: PortMapping[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: {
    cgroupParent?: string;
    sysctls?: Record<string, string>;
    securityContext?: {
      namespaceOptions?: NamespaceOption;
      privileged?: boolean;
      runAsUser?: { value: number };
      runAsGroup?: { value: number };
      readonlyRootfs?: boolean;
      supplementalGroups?: number[];
      seccomp?: SecurityProfile;
    };
    overhead?: LinuxContainerResources;
    resources?: LinuxContainerResources;
  };
}

export type PodSandboxState = 'SANDBOX_READY' | 'SANDBOX_NOTREADY';

export interface PodSandbox {
  id: string;
  metadata: PodSandboxMetadata;
  state: PodSandboxState;
  /** Nanoseconds since the epoch. */
  createdAt: bigint;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface PodSandboxStatus extends PodSandbox {
  network?: { ip: string; additionalIps?: { ip: string }[] };
  linux?: { namespaces?: { options?: NamespaceOption } };
}

export interface ImageSpec {
  image: string;
  annotations?: Record<string, string>;
}

export interface Mount {
  containerPath: string;
  hostPath: string;
  readonly?: boolean;
  selinuxRelabel?: boolean;
  /** CRI MountPropagation: PROPAGATION_PRIVATE (default), _HOST_TO_CONTAINER, _BIDIRECTIONAL. */
  propagation?: 'PROPAGATION_PRIVATE' | 'PROPAGATION_HOST_TO_CONTAINER' | 'PROPAGATION_BIDIRECTIONAL';
}

export interface SecurityProfile {
  profileType: 'RuntimeDefault' | 'Unconfined' | 'Localhost';
  localhostRef?: string;
}

export interface LinuxContainerResources {
  cpuPeriod?: number;
  cpuQuota?: number;
  cpuShares?: number;
  memoryLimitInBytes?: number;
  oomScoreAdj?: number;
}

export interface ContainerConfig {
  metadata: { name: string; attempt: number };
  image: ImageSpec;
  command?: string[];
  args?: string[];
  workingDir?: string;
  envs?: KeyValue[];
  mounts?: Mount[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Relative to the sandbox's logDirectory. */
  logPath?: string;
  stdin?: boolean;
  stdinOnce?: boolean;
  tty?: boolean;
  linux?: {
    resources?: LinuxContainerResources;
    securityContext?: {
      capabilities?: { addCapabilities?: string[]; dropCapabilities?: string[] };
      privileged?: boolean;
      namespaceOptions?: NamespaceOption;
      runAsUser?: { value: number };
      runAsGroup?: { value: number };
      runAsUsername?: string;
      readonlyRootfs?: boolean;
      supplementalGroups?: number[];
      noNewPrivs?: boolean;
      seccomp?: SecurityProfile;
      maskedPaths?: string[];
      readonlyPaths?: string[];
    };
  };
}

export type ContainerState =
  | 'CONTAINER_CREATED'
  | 'CONTAINER_RUNNING'
  | 'CONTAINER_EXITED'
  | 'CONTAINER_UNKNOWN';

export interface Container {
  id: string;
  podSandboxId: string;
  metadata: { name: string; attempt: number };
  image: ImageSpec;
  /** The image id (sha256:...) the container runs. */
  imageRef: string;
  state: ContainerState;
  createdAt: bigint;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface ContainerStatus extends Omit<Container, 'podSandboxId'> {
  startedAt: bigint;
  finishedAt: bigint;
  exitCode: number;
  /** e.g. "OOMKilled", "Error", "Completed". */
  reason: string;
  message: string;
  mounts: Mount[];
  logPath: string;
}

export interface Image {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: bigint;
}

export interface AuthConfig {
  username?: string;
  password?: string;
  auth?: string;
  serverAddress?: string;
}

export interface ExecSyncResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

export interface StreamingRequest {
  containerId: string;
  cmd?: string[];
  tty?: boolean;
  stdin?: boolean;
  stdout?: boolean;
  stderr?: boolean;
}

/**
 * CRI's resource usage messages (CpuUsage, MemoryUsage, FilesystemUsage,
 * NetworkUsage). Each UInt64Value is a plain number here (absent when the
 * runtime did not say): cumulative CPU nanoseconds pass 2^53 only after
 * 104 days of one core, and the Summary API carries them as JSON numbers
 * anyway. Timestamps are nanoseconds since the epoch.
 */
export interface CpuUsage {
  timestamp: number;
  /** Cumulative CPU time, all cores, since the container (or sandbox) started. */
  usageCoreNanoSeconds?: number;
  /** The runtime's own rate over its last sample window, in nanocores. */
  usageNanoCores?: number;
}

export interface MemoryUsage {
  timestamp: number;
  workingSetBytes?: number;
  availableBytes?: number;
  usageBytes?: number;
  rssBytes?: number;
  pageFaults?: number;
  majorPageFaults?: number;
}

export interface FilesystemUsage {
  timestamp: number;
  fsId?: { mountpoint: string };
  usedBytes?: number;
  inodesUsed?: number;
}

export interface NetworkInterfaceUsage {
  name: string;
  rxBytes?: number;
  rxErrors?: number;
  txBytes?: number;
  txErrors?: number;
}

export interface ContainerStats {
  attributes: {
    id: string;
    metadata: { name: string; attempt: number };
    labels: Record<string, string>;
    annotations: Record<string, string>;
  };
  cpu?: CpuUsage;
  memory?: MemoryUsage;
  writableLayer?: FilesystemUsage;
}

export interface PodSandboxStats {
  attributes: {
    id: string;
    metadata: PodSandboxMetadata;
    labels: Record<string, string>;
    annotations: Record<string, string>;
  };
  linux?: {
    cpu?: CpuUsage;
    memory?: MemoryUsage;
    network?: {
      timestamp: number;
      defaultInterface?: NetworkInterfaceUsage;
      interfaces: NetworkInterfaceUsage[];
    };
    process?: { timestamp: number; processCount?: number };
    containers: ContainerStats[];
  };
}

export interface Runtime {
  /** "cri" or "hollow", for logs. */
  readonly kind: string;
  version(): Promise<{ runtimeName: string; runtimeVersion: string; runtimeApiVersion: string }>;

  runPodSandbox(config: PodSandboxConfig, runtimeHandler?: string): Promise<string>;
  stopPodSandbox(podSandboxId: string): Promise<void>;
  removePodSandbox(podSandboxId: string): Promise<void>;
  podSandboxStatus(podSandboxId: string): Promise<PodSandboxStatus>;
  listPodSandbox(filter?: {
    state?: PodSandboxState;
    labelSelector?: Record<string, string>;
  }): Promise<PodSandbox[]>;

  createContainer(
    podSandboxId: string,
    config: ContainerConfig,
    sandboxConfig: PodSandboxConfig,
  ): Promise<string>;
  startContainer(containerId: string): Promise<void>;
  /** SIGTERM (or the image's stop signal), then SIGKILL after `timeoutSeconds`. */
  stopContainer(containerId: string, timeoutSeconds: number): Promise<void>;
  removeContainer(containerId: string): Promise<void>;
  listContainers(filter?: {
    podSandboxId?: string;
    state?: ContainerState;
    labelSelector?: Record<string, string>;
  }): Promise<Container[]>;
  containerStatus(containerId: string): Promise<ContainerStatus>;
  /** Has the runtime write the container's log to a new file at its logPath (after the kubelet renamed the old one). */
  reopenContainerLog(containerId: string): Promise<void>;
  execSync(containerId: string, cmd: string[], timeoutSeconds: number): Promise<ExecSyncResult>;
  /** Streaming: the runtime answers with a URL its streaming server serves the session on. */
  exec(req: StreamingRequest): Promise<string>;
  attach(req: StreamingRequest): Promise<string>;
  portForward(podSandboxId: string, ports: number[]): Promise<string>;

  /** CRI ListContainerStats: the usage of every running container (or of those the filter names). */
  listContainerStats(filter?: {
    id?: string;
    podSandboxId?: string;
    labelSelector?: Record<string, string>;
  }): Promise<ContainerStats[]>;
  /**
   * CRI ListPodSandboxStats: each ready sandbox's usage, network included.
   * A runtime that does not implement it (containerd before 1.7 answers
   * Unimplemented) rejects with a RuntimeError of that code.
   */
  listPodSandboxStats(filter?: {
    id?: string;
    labelSelector?: Record<string, string>;
  }): Promise<PodSandboxStats[]>;

  pullImage(image: ImageSpec, auth?: AuthConfig, sandboxConfig?: PodSandboxConfig): Promise<string>;
  /** undefined when the image is not present. */
  imageStatus(image: ImageSpec): Promise<Image | undefined>;
  listImages(): Promise<Image[]>;
  removeImage(image: ImageSpec): Promise<void>;

  close(): Promise<void>;
}

/** A runtime error CRI reported with a gRPC status (NotFound for missing ids, ...). */
export class RuntimeError extends Error {
  readonly code: 'NotFound' | 'Unavailable' | 'DeadlineExceeded' | 'Unknown' | string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'RuntimeError';
    this.code = code;
  }
}
