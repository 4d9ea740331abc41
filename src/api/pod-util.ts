// Questions every component asks of a pod, as upstream's pkg/api/v1/pod
// (podutil) answers them: is it ready, available, active, finished, and what
// are its IPs.

import type { Pod, PodCondition } from './types/core-v1.ts';

export const readyCondition = (pod: Pod): PodCondition | undefined =>
  pod.status?.conditions?.find((c) => c.type === 'Ready');

/** podutil.IsPodReady */
export const isPodReady = (pod: Pod): boolean => readyCondition(pod)?.status === 'True';

/** podutil.IsPodAvailable: Ready for at least minReadySeconds as of `now`. */
export function isPodAvailable(pod: Pod, minReadySeconds: number, now: Date): boolean {
  if (!isPodReady(pod)) return false;
  if (minReadySeconds <= 0) return true;
  const since = Date.parse(readyCondition(pod)?.lastTransitionTime ?? '');
  return Number.isFinite(since) && since + minReadySeconds * 1000 < now.getTime();
}

/** podutil.IsPodTerminal: Succeeded or Failed. */
export const isPodTerminal = (pod: Pod): boolean =>
  pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';

/** controller.IsPodActive: neither finished nor being deleted. */
export const isPodActive = (pod: Pod): boolean => !isPodTerminal(pod) && !pod.metadata.deletionTimestamp;

/** The pod's IPs: status.podIPs, or status.podIP alone when only that is set. */
export function podIPs(pod: Pod): string[] {
  const ips = (pod.status?.podIPs ?? []).map((p) => p.ip ?? '').filter(Boolean);
  if (ips.length === 0 && pod.status?.podIP) ips.push(pod.status.podIP);
  return ips;
}
