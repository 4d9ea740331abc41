// The kubelet's volumes, as upstream's volume manager and the in-tree
// plugins for the volume types a node can serve on its own:
//
//   emptyDir      a directory of the pod (mode 0777); medium Memory is a tmpfs
//                 (of sizeLimit, when set);
//   hostPath      the node's own path, checked by type (host-path.ts);
//   persistentVolumeClaim
//                 the claim's bound PersistentVolume, when it is a hostPath
//                 or local volume: the node's own directory, bind-mounted
//                 (a local-path volume's directory is made here, on first
//                 mount); a claim not bound yet keeps the pod waiting;
//   configMap, secret, downwardAPI, projected
//                 files written by the AtomicWriter (atomic-writer.ts) from
//                 the API (payload.ts); secret and projected volumes live in
//                 a tmpfs so their contents never touch the node's disk.
//
// Every volume but hostPath lives at
//   <root>/pods/<pod uid>/volumes/kubernetes.io~<plugin>/<volume name>
// so two containers mounting one volume share one directory. The kubelet
// sets the pod's volumes up before its containers start, and again at every
// sync of the pod (the periodic resync included): that is how an updated
// configMap or secret reaches a mounted volume, as upstream's remount in
// the volume reconciler does. A volume that was set up once and then fails
// to refresh (its configMap deleted...) keeps its files; only the event says
// so. A volume never set up keeps the pod's containers from starting.
//
// A container's volumeMounts become CRI mounts: subPath (or subPathExpr,
// expanded with the container's env) picks a path inside the volume, which
// must not leave it; API-backed volumes are always read-only.
//
// When the pod has stopped, its volumes are unmounted and removed; the pod's
// directory goes when the pod is gone from the API, and housekeeping removes
// directories of pods the kubelet no longer knows.
// https://github.com/kubernetes/kubernetes/tree/master/pkg/kubelet/volumemanager
// https://github.com/kubernetes/kubernetes/blob/master/pkg/volume/emptydir/empty_dir.go
// https://github.com/kubernetes/kubernetes/blob/master/pkg/kubelet/kubelet_pods.go (makeMounts)

import { chmod, mkdir, readdir, realpath, rm, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { claimNotForPod, isClaimForPod, volumeClaimName } from '../../api/pv-util.ts';
import { parseQuantity, value as quantityValue } from '../../api/quantity.ts';
import type {
  Container as ContainerSpec,
  PersistentVolume,
  PersistentVolumeClaim,
  Pod,
  Volume,
} from '../../api/types/core-v1.ts';
import type { EventRecorder } from '../../client/events.ts';
import { ContainerConfigError, expand } from '../container-env.ts';
import type { KeyValue, Mount } from '../runtime/runtime.ts';
import { writeAtomically } from './atomic-writer.ts';
import { checkHostPathType } from './host-path.ts';
import { isMountPoint, mountTmpfs, unmountUnder } from './mount.ts';
import { setVolumeOwnership } from './ownership.ts';
import {
  configMapPayload,
  DEFAULT_MODE,
  downwardAPIPayload,
  type Payload,
  type PayloadSources,
  projectedPayload,
  secretPayload,
  VolumeSetUpError,
} from './payload.ts';
import { type VolumeStats, volumeStatsCache } from './volume-stats.ts';

export interface VolumeManagerOptions extends PayloadSources {
  /** The kubelet's root directory (upstream /var/lib/kubelet). */
  rootDirectory: string;
  recorder: EventRecorder;
  /** Names the AtomicWriter's timestamped directories. */
  now(): Date;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  /** For persistentVolumeClaim volumes (the Node authorizer lets a node read its pods' claims and their volumes). */
  getPersistentVolumeClaim?(namespace: string, name: string): Promise<PersistentVolumeClaim | undefined>;
  /** A merge patch of a claim's status (the node's part of a resize). */
  patchPersistentVolumeClaimStatus?(
    namespace: string,
    name: string,
    status: Record<string, unknown>,
  ): Promise<void>;
  getPersistentVolume?(name: string): Promise<PersistentVolume | undefined>;
}

export interface VolumeManager {
  /** Sets up (or refreshes) every volume of the pod. Throws while one has never been set up. */
  mountPod(pod: Pod): Promise<void>;
  /** The CRI mounts for a container's volumeMounts (env: the container's, for subPathExpr). */
  mounts(pod: Pod, container: ContainerSpec, env?: KeyValue[]): Promise<Mount[]>;
  /** Unmounts and removes the pod's volumes; with removePodDir, its whole directory. */
  unmountPod(uid: string, opts?: { removePodDir?: boolean }): Promise<void>;
  /**
   * Removes the directories of pods the kubelet does not know (upstream
   * cleanupOrphanedPodDirs); `known` is asked at the moment of removal, so
   * a pod that arrived meanwhile keeps its directory.
   */
  cleanupOrphanedPodDirs(known: (uid: string) => boolean): Promise<void>;
  /** <root>/pods/<uid>. */
  podDir(uid: string): string;
  /**
   * The pod's volumes' stats for /stats/summary: every volume that keeps
   * files for it (not hostPath: the node's own path, as upstream).
   */
  volumeStats(pod: Pod): Promise<VolumeStats[]>;
}

/** The plugin directory names upstream uses (kubernetes.io/<plugin>, '/' escaped as '~'). */
export const PLUGIN_DIRS = {
  emptyDir: 'kubernetes.io~empty-dir',
  configMap: 'kubernetes.io~configmap',
  secret: 'kubernetes.io~secret',
  downwardAPI: 'kubernetes.io~downward-api',
  projected: 'kubernetes.io~projected',
} as const;

type PluginName = keyof typeof PLUGIN_DIRS;

function pluginOf(v: Volume): PluginName | 'hostPath' | 'persistentVolumeClaim' | undefined {
  if (v.hostPath) return 'hostPath';
  // A generic ephemeral volume is its claim <pod>-<volume>, mounted like any other.
  if (v.persistentVolumeClaim || v.ephemeral) return 'persistentVolumeClaim';
  for (const p of Object.keys(PLUGIN_DIRS) as PluginName[]) if (v[p]) return p;
  return undefined;
}

/** configMap, secret, downwardAPI and projected volumes are read-only in every container (upstream ReadOnlyAPIDataVolumes). */
const isAPIDataVolume = (v: Volume) => !!(v.configMap || v.secret || v.downwardAPI || v.projected);

const PROPAGATION: Record<string, Mount['propagation']> = {
  None: 'PROPAGATION_PRIVATE',
  HostToContainer: 'PROPAGATION_HOST_TO_CONTAINER',
  Bidirectional: 'PROPAGATION_BIDIRECTIONAL',
};

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

export function createVolumeManager(opts: VolumeManagerOptions): VolumeManager {
  const log = opts.log ?? (() => {});
  const podDir = (uid: string) => join(opts.rootDirectory, 'pods', uid);
  /** The node path of each pod's persistentVolumeClaim volumes, by `<pod uid>/<volume>`, as set up. */
  const claimPaths = new Map<string, string>();
  const stats = volumeStatsCache(60_000, opts.now);
  /** The volumes (`<pod uid>/<volume>`) given the pod's fsGroup since they were set up. */
  const owned = new Set<string>();

  /** Where a volume's files are: the host path itself for hostPath volumes. */
  function volumePath(pod: Pod, v: Volume): string {
    const plugin = pluginOf(v);
    if (plugin === 'hostPath') return v.hostPath?.path ?? '';
    if (plugin === 'persistentVolumeClaim') {
      const path = claimPaths.get(`${pod.metadata.uid}/${v.name}`);
      if (!path) throw new VolumeSetUpError(`volume "${v.name}": its claim's volume is not set up`);
      return path;
    }
    if (!plugin)
      throw new VolumeSetUpError(`volume "${v.name}": this volume type is not supported by Skiff's kubelet`);
    return join(podDir(pod.metadata.uid ?? ''), 'volumes', PLUGIN_DIRS[plugin], v.name ?? '');
  }

  /** The directory an emptyDir (or a volume built on one) lives in; a tmpfs when memory-backed. */
  async function setUpDir(dir: string, inMemory: boolean, sizeBytes?: number): Promise<void> {
    if (!(await exists(dir))) {
      await mkdir(dir, { recursive: true });
      if (!inMemory) await chmod(dir, 0o777);
    }
    if (inMemory && !(await isMountPoint(dir))) await mountTmpfs(dir, sizeBytes);
  }

  async function payloadOf(pod: Pod, v: Volume): Promise<Payload> {
    if (v.configMap) return configMapPayload(pod, v.configMap, v.configMap.defaultMode ?? DEFAULT_MODE, opts);
    if (v.secret) {
      const source = { ...v.secret, ...(v.secret.secretName ? { name: v.secret.secretName } : {}) };
      return secretPayload(pod, source, v.secret.defaultMode ?? DEFAULT_MODE, opts);
    }
    if (v.downwardAPI) {
      return downwardAPIPayload(pod, v.downwardAPI.items, v.downwardAPI.defaultMode ?? DEFAULT_MODE, opts);
    }
    return projectedPayload(pod, v.projected ?? {}, opts);
  }

  /**
   * The node path of a claim's volume: the claim must be Bound to a volume
   * whose claimRef is this claim (upstream's volume manager
   * getPVCExtractPV), and the volume a hostPath or local one.
   */
  async function claimVolumePath(pod: Pod, v: Volume): Promise<{ path: string; local: boolean }> {
    const { pvc, pv, ...where } = await boundClaim(pod, v);
    await finishResize(pod, v, pvc, pv);
    return where;
  }

  /**
   * The node's part of a resize (upstream's NodeExpandVolume): a claim whose
   * volume grew waits in FileSystemResizePending until a node using it has
   * grown the filesystem. A hostPath or local directory has no filesystem
   * of its own to grow, so the claim's status takes the volume's capacity.
   */
  async function finishResize(pod: Pod, v: Volume, pvc: PersistentVolumeClaim, pv: PersistentVolume) {
    const pending = pvc.status?.conditions?.find((c) => c.type === 'FileSystemResizePending');
    if (pending?.status !== 'True' || !opts.patchPersistentVolumeClaimStatus) return;
    const capacity = pv.spec?.capacity?.storage;
    if (!capacity) return;
    await opts.patchPersistentVolumeClaimStatus(pvc.metadata.namespace ?? '', pvc.metadata.name ?? '', {
      capacity: { ...pvc.status?.capacity, storage: capacity },
      conditions: (pvc.status?.conditions ?? []).filter((c) => c.type !== 'FileSystemResizePending'),
      // Without its last key the map goes, as upstream's omitempty leaves no {} behind.
      allocatedResourceStatuses: Object.keys(pvc.status?.allocatedResourceStatuses ?? {}).some(
        (k) => k !== 'storage',
      )
        ? { storage: null }
        : null,
    });
    opts.recorder.event(
      pod,
      'Normal',
      'FileSystemResizeSuccessful',
      `MountVolume.NodeExpandVolume succeeded for volume "${v.name}"`,
    );
  }

  async function boundClaim(
    pod: Pod,
    v: Volume,
  ): Promise<{ path: string; local: boolean; pvc: PersistentVolumeClaim; pv: PersistentVolume }> {
    const ns = pod.metadata.namespace ?? '';
    const claimName = volumeClaimName(pod, v) ?? '';
    const fail = (why: string) => {
      throw new VolumeSetUpError(`error processing PVC ${ns}/${claimName}: ${why}`);
    };
    const pvc = await opts.getPersistentVolumeClaim?.(ns, claimName);
    if (!pvc)
      return fail(`failed to fetch PVC from API server: persistentvolumeclaims "${claimName}" not found`);
    if (pvc.metadata.deletionTimestamp) return fail('PVC is being deleted');
    if (v.ephemeral && !isClaimForPod(pod, pvc)) return fail(claimNotForPod(pod, pvc));
    const volumeName = pvc.spec?.volumeName;
    if (pvc.status?.phase !== 'Bound' || !volumeName) return fail('PVC is not bound');
    const pv: PersistentVolume | undefined = await opts.getPersistentVolume?.(volumeName);
    if (!pv)
      return fail(
        `failed to fetch PV ${volumeName} from API server: persistentvolumes "${volumeName}" not found`,
      );
    if (pv.spec?.claimRef?.uid !== pvc.metadata.uid)
      return fail(`PV ${volumeName} is bound to another claim`);
    if (pv.spec?.hostPath) {
      await checkHostPathType(pv.spec.hostPath.path ?? '', pv.spec.hostPath.type);
      return { path: pv.spec.hostPath.path ?? '', local: false, pvc, pv };
    }
    if (pv.spec?.local) {
      const path = pv.spec.local.path ?? '';
      // A local volume is the administrator's disk or directory: it must be there.
      if (!(await exists(path))) return fail(`path "${path}" does not exist`);
      return { path, local: true, pvc, pv };
    }
    return fail(`volume "${volumeName}": this volume type is not supported by Skiff's kubelet`);
  }

  /** Sets up one volume. Returns whether it was set up before (so a failure leaves it usable). */
  async function setUp(pod: Pod, v: Volume): Promise<void> {
    const plugin = pluginOf(v);
    const key = `${pod.metadata.uid}/${v.name}`;
    const psc = pod.spec?.securityContext ?? {};
    const fsGroup = psc.fsGroup ?? undefined;
    // fsGroup (ownership.ts): once per pod for what keeps its files, at every
    // write for the API data volumes, whose files are new each time.
    const own = async (dir: string, readOnly: boolean) => {
      if (fsGroup === undefined || owned.has(key)) return;
      await setVolumeOwnership(dir, fsGroup, { readOnly, policy: psc.fsGroupChangePolicy });
      owned.add(key);
    };
    if (plugin === 'persistentVolumeClaim') {
      const { path, local } = await claimVolumePath(pod, v);
      claimPaths.set(key, path);
      // A hostPath volume's ownership is the node's own, as upstream.
      if (local) await own(path, !!v.persistentVolumeClaim?.readOnly);
      return;
    }
    const dir = volumePath(pod, v);
    if (plugin === 'hostPath') return checkHostPathType(dir, v.hostPath?.type);
    if (plugin === 'emptyDir') {
      const memory = v.emptyDir?.medium === 'Memory';
      const limit = v.emptyDir?.sizeLimit;
      await setUpDir(dir, memory, limit ? Number(quantityValue(parseQuantity(limit))) : undefined);
      return own(dir, false);
    }
    // The payload first: a missing configMap must not leave an empty directory behind.
    const payload = await payloadOf(pod, v);
    await setUpDir(dir, plugin === 'secret' || plugin === 'projected');
    await writeAtomically(dir, payload, opts.now());
    owned.delete(key);
    await own(dir, true);
  }

  /** Whether a volume was set up before (by this kubelet or the one before it). */
  async function wasSetUp(pod: Pod, v: Volume): Promise<boolean> {
    const plugin = pluginOf(v);
    if (!plugin || plugin === 'hostPath' || plugin === 'persistentVolumeClaim') return false;
    const dir = volumePath(pod, v);
    return plugin === 'emptyDir' ? exists(dir) : exists(join(dir, '..data'));
  }

  async function removeVolumes(uid: string): Promise<void> {
    const dir = join(podDir(uid), 'volumes');
    if (!(await exists(dir))) return;
    await unmountUnder(dir);
    await rm(dir, { recursive: true, force: true });
  }

  return {
    podDir,

    async mountPod(pod) {
      const unmounted: string[] = [];
      for (const v of pod.spec?.volumes ?? []) {
        try {
          await setUp(pod, v);
        } catch (err) {
          const message =
            err instanceof VolumeSetUpError ? err.message : String((err as Error)?.message ?? err);
          opts.recorder.event(
            pod,
            'Warning',
            'FailedMount',
            `MountVolume.SetUp failed for volume "${v.name}" : ${message}`,
          );
          log('volume set-up failed', {
            pod: `${pod.metadata.namespace}/${pod.metadata.name}`,
            volume: v.name,
            error: message,
          });
          if (!(await wasSetUp(pod, v))) unmounted.push(v.name ?? '');
        }
      }
      if (unmounted.length) {
        throw new VolumeSetUpError(
          `unable to attach or mount volumes: unmounted volumes=[${unmounted.join(' ')}]`,
        );
      }
    },

    async mounts(pod, container, env = []) {
      const out: Mount[] = [];
      const lookup = (name: string) => env.find((e) => e.key === name)?.value;
      for (const vm of container.volumeMounts ?? []) {
        const v = (pod.spec?.volumes ?? []).find((x) => x.name === vm.name);
        if (!v) {
          throw new ContainerConfigError(
            `cannot find volume "${vm.name}" to mount into container "${container.name}"`,
          );
        }
        let hostPath = volumePath(pod, v);
        const subPath = vm.subPathExpr ? expand(vm.subPathExpr, lookup) : vm.subPath;
        if (subPath) {
          if (isAbsolute(subPath) || subPath.split('/').includes('..')) {
            throw new ContainerConfigError(
              `failed to prepare subPath for volumeMount "${vm.name}" of container "${container.name}": invalid subpath "${subPath}"`,
            );
          }
          const full = join(hostPath, subPath);
          // A missing subPath is made, as a directory (upstream SafeMakeDir).
          if (!(await exists(full))) await mkdir(full, { recursive: true, mode: 0o755 });
          const [real, base] = await Promise.all([realpath(full), realpath(hostPath)]);
          // Symlinks in the volume must not lead a subPath out of it.
          if (real !== base && !real.startsWith(`${base}/`)) {
            throw new ContainerConfigError(
              `failed to prepare subPath for volumeMount "${vm.name}" of container "${container.name}": subpath "${real}" not within volume path "${base}"`,
            );
          }
          hostPath = real;
        }
        out.push({
          containerPath: vm.mountPath ?? '',
          hostPath,
          readonly: !!vm.readOnly || isAPIDataVolume(v) || !!v.persistentVolumeClaim?.readOnly,
          selinuxRelabel: false,
          propagation: PROPAGATION[vm.mountPropagation ?? 'None'] ?? 'PROPAGATION_PRIVATE',
        });
      }
      return out;
    },

    async unmountPod(uid, { removePodDir = false } = {}) {
      for (const k of claimPaths.keys()) if (k.startsWith(`${uid}/`)) claimPaths.delete(k);
      for (const k of owned) if (k.startsWith(`${uid}/`)) owned.delete(k);
      stats.forget(`${uid}/`);
      await removeVolumes(uid);
      if (removePodDir) {
        const dir = podDir(uid);
        // Nothing may still be mounted in a directory about to be removed.
        await unmountUnder(dir);
        await rm(dir, { recursive: true, force: true });
      }
    },

    async volumeStats(pod) {
      const out: VolumeStats[] = [];
      for (const v of pod.spec?.volumes ?? []) {
        const plugin = pluginOf(v);
        if (!plugin || plugin === 'hostPath') continue;
        const key = `${pod.metadata.uid}/${v.name}`;
        if (plugin === 'persistentVolumeClaim' && !claimPaths.has(key)) continue;
        const claim = plugin === 'persistentVolumeClaim' ? volumeClaimName(pod, v) : undefined;
        const s = await stats.get(
          key,
          v.name ?? '',
          volumePath(pod, v),
          claim ? { name: claim, namespace: pod.metadata.namespace ?? '' } : undefined,
        );
        if (s) out.push(s);
      }
      return out;
    },

    async cleanupOrphanedPodDirs(known) {
      const entries = await readdir(join(opts.rootDirectory, 'pods'), { withFileTypes: true }).catch(
        () => [],
      );
      for (const e of entries) {
        // Pod directories are named by uid; <namespace>_<name>_<uid> beside them holds logs, not volumes.
        if (!e.isDirectory() || e.name.includes('_') || known(e.name)) continue;
        log('removing the volumes of a pod that is gone', { uid: e.name });
        await this.unmountPod(e.name, { removePodDir: true });
      }
    },
  };
}
