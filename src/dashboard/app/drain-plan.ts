// Which pods a drain evicts, which it leaves, and which stop it: the filters
// of kubectl drain (k8s.io/kubectl/pkg/drain), as pure functions. No DOM and
// no API here, so the rules are unit-tested in Node.

export interface DrainOptions {
  /** kubectl drain --ignore-daemonsets: DaemonSet pods are left (their controller would recreate them). */
  ignoreDaemonSets: boolean;
  /** --delete-emptydir-data: pods with emptyDir volumes are evicted, and their data lost. */
  deleteEmptyDirData: boolean;
  /** --force: pods that no controller will recreate are evicted too. */
  force: boolean;
}

export interface DrainPod {
  metadata: {
    name: string;
    namespace?: string;
    deletionTimestamp?: string;
    annotations?: Record<string, string>;
    ownerReferences?: { kind: string; name: string; controller?: boolean }[];
  };
  spec?: { volumes?: { emptyDir?: unknown }[] };
  status?: { phase?: string };
}

export interface DrainPlan<P extends DrainPod = DrainPod> {
  evict: P[];
  /** Left on the node, with why (kubectl prints these as warnings). */
  skipped: { pod: P; reason: string }[];
  /** Each of these stops the drain until an option allows it (kubectl's errors). */
  blocked: { pod: P; reason: string }[];
}

const MIRROR = 'kubernetes.io/config.mirror';

const controllerOf = (p: DrainPod) => p.metadata.ownerReferences?.find((o) => o.controller);
const finished = (p: DrainPod) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';

/** One pod's fate: evict, skip or block, with kubectl's words for the last two. */
function judge(p: DrainPod, o: DrainOptions): { verdict: 'evict' | 'skip' | 'block'; reason?: string } {
  if (p.metadata.deletionTimestamp) return { verdict: 'skip', reason: 'already terminating' };
  if (p.metadata.annotations?.[MIRROR] !== undefined) return { verdict: 'skip', reason: 'mirror pod' };
  if (controllerOf(p)?.kind === 'DaemonSet')
    return o.ignoreDaemonSets
      ? { verdict: 'skip', reason: 'DaemonSet-managed' }
      : {
          verdict: 'block',
          reason: 'cannot delete DaemonSet-managed Pods (allow "Ignore DaemonSets")',
        };
  if (finished(p)) return { verdict: 'evict' };
  if (!o.deleteEmptyDirData && p.spec?.volumes?.some((v) => v.emptyDir !== undefined))
    return {
      verdict: 'block',
      reason: 'cannot delete Pods with local storage (allow "Delete emptyDir data")',
    };
  if (!controllerOf(p) && !o.force)
    return { verdict: 'block', reason: 'cannot delete Pods that declare no controller (allow "Force")' };
  return { verdict: 'evict' };
}

export function planDrain<P extends DrainPod>(pods: P[], options: DrainOptions): DrainPlan<P> {
  const plan: DrainPlan<P> = { evict: [], skipped: [], blocked: [] };
  for (const pod of pods) {
    const { verdict, reason = '' } = judge(pod, options);
    if (verdict === 'evict') plan.evict.push(pod);
    else if (verdict === 'skip') plan.skipped.push({ pod, reason });
    else plan.blocked.push({ pod, reason });
  }
  return plan;
}

/** The blocked pods as one message, grouped by reason as kubectl reports them. */
export function blockedMessage(blocked: DrainPlan['blocked']): string {
  const byReason = new Map<string, string[]>();
  for (const { pod, reason } of blocked)
    byReason.set(reason, [...(byReason.get(reason) ?? []), `${pod.metadata.namespace}/${pod.metadata.name}`]);
  return [...byReason].map(([reason, names]) => `${reason}: ${names.join(', ')}`).join('; ');
}
