// Garbage collection of dead containers and sandboxes, as upstream's
// pkg/kubelet/kuberuntime/kuberuntime_gc.go with its policy
// (--minimum-container-ttl-duration, --maximum-dead-containers-per-container,
// --maximum-dead-containers):
//
//   - a container that is not running and was made at least MinAge ago is
//     evictable; those of one (pod, container name) are kept newest first;
//   - a pod the kubelet no longer runs (gone, or finished) loses them all;
//   - otherwise each (pod, container name) keeps its newest MaxPerPodContainer
//     (1 by default: the previous instance, for restart counts and
//     `kubectl logs --previous`);
//   - past MaxContainers dead containers on the node in all, the oldest go
//     first, each group keeping at least one when it can;
//   - a sandbox that is not ready and is not its pod's newest goes once it
//     has no containers.
//
// Runs every minute (upstream's ContainerGCPeriod), and when the eviction
// manager reclaims disk (with every dead container evictable).

import { unlink } from 'node:fs/promises';
import { KUBERNETES_CONTAINER_NAME_LABEL, KUBERNETES_POD_UID_LABEL } from '../labels.ts';
import type { Runtime } from '../runtime/runtime.ts';

export interface ContainerGCPolicy {
  minAgeMs: number;
  maxPerPodContainer: number;
  /** -1: no limit. */
  maxContainers: number;
}

export interface ContainerGCOptions {
  runtime: Runtime;
  /** Whether the kubelet still runs this pod (its dead containers then follow the per-container policy). */
  podActive(uid: string): boolean;
  now(): number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface ContainerGC {
  /** One pass; `allDead` removes every dead container of any pod (disk pressure). Returns how many went. */
  collect(policy: ContainerGCPolicy, allDead?: boolean): Promise<{ containers: number; sandboxes: number }>;
}

interface Dead {
  id: string;
  createdAt: number;
  logPath: string;
}

export function createContainerGC(opts: ContainerGCOptions): ContainerGC {
  const { runtime } = opts;
  const log = opts.log ?? (() => {});

  async function remove(c: Dead): Promise<boolean> {
    try {
      await runtime.removeContainer(c.id);
    } catch (err) {
      log('dead container not removed', { id: c.id, error: String(err) });
      return false;
    }
    // The kubelet's log file of that instance goes with it (upstream removeContainerLog).
    if (c.logPath) await unlink(c.logPath).catch(() => undefined);
    return true;
  }

  return {
    async collect(policy, allDead = false) {
      const now = opts.now();
      const containers = await runtime.listContainers();
      const groups = new Map<string, Dead[]>();
      const podOf = new Map<string, string>();
      for (const c of containers) {
        if (c.state === 'CONTAINER_RUNNING') continue;
        const createdMs = Number(c.createdAt / 1_000_000n);
        if (!allDead && now - createdMs < policy.minAgeMs) continue;
        const uid = c.labels[KUBERNETES_POD_UID_LABEL] ?? '';
        const key = `${uid}/${c.labels[KUBERNETES_CONTAINER_NAME_LABEL] ?? c.metadata.name}`;
        podOf.set(key, uid);
        const status = await runtime.containerStatus(c.id).catch(() => undefined);
        const list = groups.get(key) ?? [];
        list.push({ id: c.id, createdAt: createdMs, logPath: status?.logPath ?? '' });
        groups.set(key, list);
      }
      let removed = 0;
      const kept: Dead[][] = [];
      for (const [key, list] of groups) {
        list.sort((a, b) => b.createdAt - a.createdAt);
        const keep =
          allDead || !opts.podActive(podOf.get(key) ?? '') ? 0 : Math.max(0, policy.maxPerPodContainer);
        for (const c of list.slice(keep)) if (await remove(c)) removed++;
        if (keep > 0 && list.length > 0) kept.push(list.slice(0, keep));
      }
      // The node-wide limit: each group down to its share, then the oldest overall.
      if (policy.maxContainers >= 0) {
        let total = kept.reduce((n, l) => n + l.length, 0);
        if (total > policy.maxContainers && kept.length > 0) {
          const share = Math.max(1, Math.floor(policy.maxContainers / kept.length));
          for (const l of kept) {
            while (l.length > share) {
              const c = l.pop();
              if (c && (await remove(c))) removed++;
              total--;
            }
          }
          const rest = kept.flat().sort((a, b) => a.createdAt - b.createdAt);
          for (const c of rest) {
            if (total <= policy.maxContainers) break;
            if (await remove(c)) removed++;
            total--;
          }
        }
      }
      // Sandboxes: not ready, not their pod's newest, and empty.
      let sandboxes = 0;
      const all = await runtime.listPodSandbox();
      const left = await runtime.listContainers();
      const byPod = new Map<string, typeof all>();
      for (const s of all) {
        const uid = s.labels[KUBERNETES_POD_UID_LABEL] ?? s.metadata.uid;
        byPod.set(uid, [...(byPod.get(uid) ?? []), s]);
      }
      for (const [uid, list] of byPod) {
        list.sort((a, b) => (a.createdAt === b.createdAt ? 0 : a.createdAt > b.createdAt ? -1 : 1));
        const candidates = opts.podActive(uid) ? list.slice(1) : list;
        for (const s of candidates) {
          if (s.state === 'SANDBOX_READY') continue;
          if (left.some((c) => c.podSandboxId === s.id)) continue;
          try {
            await runtime.removePodSandbox(s.id);
            sandboxes++;
          } catch (err) {
            log('dead sandbox not removed', { id: s.id, error: String(err) });
          }
        }
      }
      if (removed || sandboxes)
        log('removed dead containers and sandboxes', { containers: removed, sandboxes });
      return { containers: removed, sandboxes };
    },
  };
}
