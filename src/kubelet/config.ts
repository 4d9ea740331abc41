// The kubelet's flags that `skiff server` and `skiff agent` pass through
// with `--kubelet-arg key=value`, as k3s does: the key is the upstream
// kubelet flag without its dashes, and the value is in upstream's syntax
// (`kube-reserved=cpu=100m,memory=200Mi`, `eviction-hard=memory.available<100Mi`).
// A key Skiff's kubelet does not know is refused with the list of those it
// does, rather than silently ignored.
//
// https://kubernetes.io/docs/reference/command-line-tools-reference/kubelet/

import { parseQuantity, value as quantityValue } from '../api/quantity.ts';

/** A threshold of an eviction signal: a quantity, or a percentage of capacity. */
export interface EvictionThreshold {
  signal: string;
  /** `<` is the only operator upstream accepts. */
  quantity?: string;
  /** 0 to 1, for `10%`. */
  percentage?: number;
}

export interface KubeletConfig {
  /** --root-dir: pods' volumes live under it, and its file system is nodefs (default: the data dir). */
  rootDir?: string;
  /** --cgroup-root: the kubepods hierarchy goes under it (default /). */
  cgroupRoot: string;
  /** --cgroups-per-qos: the kubepods/burstable/besteffort/pod<uid> hierarchy (default true). */
  cgroupsPerQOS: boolean;
  /** --kube-reserved and --system-reserved: resource name to quantity. */
  kubeReserved: Record<string, string>;
  systemReserved: Record<string, string>;
  /** --enforce-node-allocatable: which allocatable is enforced with cgroups (default pods). */
  enforceNodeAllocatable: string[];
  /** --eviction-hard (default memory.available<100Mi, nodefs.available<10%, imagefs.available<15%, nodefs.inodesFree<5%). */
  evictionHard: EvictionThreshold[];
  evictionSoft: EvictionThreshold[];
  /** --eviction-soft-grace-period: signal to seconds. */
  evictionSoftGracePeriod: Record<string, number>;
  /** --eviction-pressure-transition-period, in seconds (default 5m). */
  evictionPressureTransitionPeriodSeconds: number;
  /** --eviction-max-pod-grace-period, in seconds (default 0: soft evictions use the pod's own). */
  evictionMaxPodGracePeriodSeconds: number;
  /** --max-pods (default 110). */
  maxPods: number;
  /** --housekeeping-interval (cAdvisor's; how often eviction looks at the signals), in ms (default 10 s). */
  housekeepingIntervalMs: number;
  /** --image-gc-high-threshold / --image-gc-low-threshold, percent of the image file system (85 / 80). */
  imageGCHighThresholdPercent: number;
  imageGCLowThresholdPercent: number;
  /** --image-minimum-gc-age, in ms (default 2m). */
  imageMinimumGCAgeMs: number;
  /** --minimum-container-ttl-duration, --maximum-dead-containers-per-container, --maximum-dead-containers. */
  minimumContainerTTLMs: number;
  maxPerPodContainer: number;
  maxContainers: number;
  /** --container-log-max-size in bytes (default 10Mi) and --container-log-max-files (default 5). */
  containerLogMaxSizeBytes: number;
  containerLogMaxFiles: number;
}

/** Upstream's default hard eviction thresholds (pkg/kubelet/eviction/defaults_linux.go). */
export const DEFAULT_EVICTION_HARD =
  'memory.available<100Mi,nodefs.available<10%,imagefs.available<15%,nodefs.inodesFree<5%';

/** The signals upstream's eviction manager knows. */
export const EVICTION_SIGNALS = [
  'memory.available',
  'nodefs.available',
  'nodefs.inodesFree',
  'imagefs.available',
  'imagefs.inodesFree',
  'pid.available',
] as const;

export class KubeletConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeletConfigError';
  }
}

/** Go's time.ParseDuration for the forms flags use: 1h2m3.5s, 500ms, 90s. */
export function parseDuration(s: string): number {
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  const unit: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
  };
  let ms = 0;
  let end = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    ms += Number(m[1]) * (unit[m[2] ?? ''] ?? 0);
    end = re.lastIndex;
  }
  if (end === 0 || end !== s.length) throw new KubeletConfigError(`invalid duration "${s}"`);
  return ms;
}

/** `cpu=100m,memory=1Gi` (a mapStringString flag). */
function parseResourceList(flag: string, v: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of v.split(',').filter(Boolean)) {
    const i = item.indexOf('=');
    if (i <= 0) throw new KubeletConfigError(`--${flag}: "${item}" is not name=quantity`);
    const name = item.slice(0, i).trim();
    const q = item.slice(i + 1).trim();
    if (!['cpu', 'memory', 'ephemeral-storage', 'pid'].includes(name)) {
      throw new KubeletConfigError(
        `--${flag}: unknown resource "${name}" (cpu, memory, ephemeral-storage, pid)`,
      );
    }
    try {
      parseQuantity(q);
    } catch {
      throw new KubeletConfigError(`--${flag}: invalid quantity "${q}" for ${name}`);
    }
    out[name] = q;
  }
  return out;
}

/** `memory.available<100Mi,nodefs.available<10%` (upstream ParseThresholdConfig). */
export function parseThresholds(flag: string, v: string): EvictionThreshold[] {
  const out: EvictionThreshold[] = [];
  for (const item of v.split(',').filter(Boolean)) {
    const i = item.indexOf('<');
    if (i <= 0)
      throw new KubeletConfigError(`--${flag}: "${item}" is not signal<quantity (the only operator is <)`);
    const signal = item.slice(0, i).trim();
    const value = item.slice(i + 1).trim();
    if (!(EVICTION_SIGNALS as readonly string[]).includes(signal)) {
      throw new KubeletConfigError(
        `--${flag}: unknown eviction signal "${signal}" (${EVICTION_SIGNALS.join(', ')})`,
      );
    }
    if (out.some((t) => t.signal === signal))
      throw new KubeletConfigError(`--${flag}: ${signal} given twice`);
    if (value.endsWith('%')) {
      const p = Number(value.slice(0, -1));
      if (!Number.isFinite(p) || p < 0 || p > 100) {
        throw new KubeletConfigError(
          `--${flag}: ${signal}: percentage must be between 0% and 100%, not ${value}`,
        );
      }
      out.push({ signal, percentage: p / 100 });
    } else {
      try {
        parseQuantity(value);
      } catch {
        throw new KubeletConfigError(`--${flag}: ${signal}: invalid quantity "${value}"`);
      }
      out.push({ signal, quantity: value });
    }
  }
  return out;
}

/** `memory.available=30s,nodefs.available=1m`. */
function parseGracePeriods(flag: string, v: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of v.split(',').filter(Boolean)) {
    const i = item.indexOf('=');
    if (i <= 0) throw new KubeletConfigError(`--${flag}: "${item}" is not signal=duration`);
    out[item.slice(0, i).trim()] = parseDuration(item.slice(i + 1).trim()) / 1000;
  }
  return out;
}

function int(flag: string, v: string, min = 0): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new KubeletConfigError(`--${flag}: "${v}" is not an integer >= ${min}`);
  return n;
}

function bool(flag: string, v: string): boolean {
  if (v === 'true' || v === '') return true;
  if (v === 'false') return false;
  throw new KubeletConfigError(`--${flag}: "${v}" is not true or false`);
}

export function defaultKubeletConfig(): KubeletConfig {
  return {
    cgroupRoot: '/',
    cgroupsPerQOS: true,
    kubeReserved: {},
    systemReserved: {},
    enforceNodeAllocatable: ['pods'],
    evictionHard: parseThresholds('eviction-hard', DEFAULT_EVICTION_HARD),
    evictionSoft: [],
    evictionSoftGracePeriod: {},
    evictionPressureTransitionPeriodSeconds: 300,
    evictionMaxPodGracePeriodSeconds: 0,
    maxPods: 110,
    housekeepingIntervalMs: 10_000,
    imageGCHighThresholdPercent: 85,
    imageGCLowThresholdPercent: 80,
    imageMinimumGCAgeMs: 120_000,
    minimumContainerTTLMs: 0,
    maxPerPodContainer: 1,
    maxContainers: -1,
    containerLogMaxSizeBytes: 10 * 1024 * 1024,
    containerLogMaxFiles: 5,
  };
}

type Setter = (c: KubeletConfig, v: string, flag: string) => void;

const SETTERS: Record<string, Setter> = {
  'root-dir': (c, v, f) => {
    if (!v.startsWith('/')) throw new KubeletConfigError(`--${f}: "${v}" is not an absolute path`);
    c.rootDir = v;
  },
  'cgroup-root': (c, v) => {
    c.cgroupRoot = v.startsWith('/') ? v : `/${v}`;
  },
  'cgroups-per-qos': (c, v, f) => {
    c.cgroupsPerQOS = bool(f, v);
  },
  'kube-reserved': (c, v, f) => {
    c.kubeReserved = parseResourceList(f, v);
  },
  'system-reserved': (c, v, f) => {
    c.systemReserved = parseResourceList(f, v);
  },
  'enforce-node-allocatable': (c, v, f) => {
    const list = v.split(',').filter((s) => s && s !== 'none');
    for (const s of list) {
      // system-reserved and kube-reserved need their own cgroups named
      // (--system-reserved-cgroup); Skiff's components run in one process.
      if (s !== 'pods') throw new KubeletConfigError(`--${f}: "${s}" is not supported (pods, or none)`);
    }
    c.enforceNodeAllocatable = list;
  },
  'eviction-hard': (c, v, f) => {
    c.evictionHard = parseThresholds(f, v);
  },
  'eviction-soft': (c, v, f) => {
    c.evictionSoft = parseThresholds(f, v);
  },
  'eviction-soft-grace-period': (c, v, f) => {
    c.evictionSoftGracePeriod = parseGracePeriods(f, v);
  },
  'eviction-pressure-transition-period': (c, v) => {
    c.evictionPressureTransitionPeriodSeconds = parseDuration(v) / 1000;
  },
  'eviction-max-pod-grace-period': (c, v, f) => {
    c.evictionMaxPodGracePeriodSeconds = int(f, v);
  },
  'max-pods': (c, v, f) => {
    c.maxPods = int(f, v, 1);
  },
  'housekeeping-interval': (c, v) => {
    c.housekeepingIntervalMs = parseDuration(v);
  },
  'image-gc-high-threshold': (c, v, f) => {
    c.imageGCHighThresholdPercent = int(f, v);
  },
  'image-gc-low-threshold': (c, v, f) => {
    c.imageGCLowThresholdPercent = int(f, v);
  },
  'image-minimum-gc-age': (c, v) => {
    c.imageMinimumGCAgeMs = parseDuration(v);
  },
  'minimum-container-ttl-duration': (c, v) => {
    c.minimumContainerTTLMs = parseDuration(v);
  },
  'maximum-dead-containers-per-container': (c, v, f) => {
    c.maxPerPodContainer = int(f, v);
  },
  'maximum-dead-containers': (c, v, f) => {
    c.maxContainers = Number(v) === -1 ? -1 : int(f, v);
  },
  'container-log-max-size': (c, v, f) => {
    try {
      c.containerLogMaxSizeBytes = Number(quantityValue(parseQuantity(v)));
    } catch {
      throw new KubeletConfigError(`--${f}: invalid quantity "${v}"`);
    }
  },
  'container-log-max-files': (c, v, f) => {
    c.containerLogMaxFiles = int(f, v, 2);
  },
};

/** The keys `--kubelet-arg` accepts. */
export const KUBELET_ARG_KEYS = Object.keys(SETTERS);

/**
 * The kubelet's configuration from `--kubelet-arg` values (`key=value`, the
 * key with or without its leading dashes). Later values win, as repeated
 * flags do upstream. Throws KubeletConfigError with what was wrong.
 */
export function parseKubeletArgs(args: readonly string[]): KubeletConfig {
  const c = defaultKubeletConfig();
  for (const arg of args) {
    const i = arg.indexOf('=');
    const key = (i < 0 ? arg : arg.slice(0, i)).replace(/^-+/, '');
    const value = i < 0 ? '' : arg.slice(i + 1);
    const set = SETTERS[key];
    if (!set) {
      throw new KubeletConfigError(
        `--kubelet-arg: unknown kubelet flag "${key}"; Skiff's kubelet takes ${KUBELET_ARG_KEYS.join(', ')}`,
      );
    }
    set(c, value, key);
  }
  if (c.imageGCLowThresholdPercent > c.imageGCHighThresholdPercent) {
    throw new KubeletConfigError(
      `--image-gc-low-threshold (${c.imageGCLowThresholdPercent}) must not be above --image-gc-high-threshold (${c.imageGCHighThresholdPercent})`,
    );
  }
  return c;
}
