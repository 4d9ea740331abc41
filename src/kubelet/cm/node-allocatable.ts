// Node allocatable, as upstream's GetNodeAllocatableReservation
// (pkg/kubelet/cm/node_container_manager_linux.go):
//
//   allocatable = capacity - kube-reserved - system-reserved - hard eviction thresholds
//
// The scheduler places pods against allocatable. What kubepods is capped at
// (--enforce-node-allocatable=pods) leaves the eviction thresholds out, so
// the kubelet evicts before the kernel's OOM killer has to step in.

import { milliValue, parseQuantity, value as quantityValue } from '../../api/quantity.ts';
import type { EvictionThreshold, KubeletConfig } from '../config.ts';

export interface Capacity {
  cpuMilli: number;
  memoryBytes: number;
  ephemeralStorageBytes: number;
  pids?: number;
}

type Reservable = 'cpu' | 'memory' | 'ephemeral-storage' | 'pid';

const reserved = (list: Record<string, string>, name: Reservable): number => {
  const q = list[name];
  if (!q) return 0;
  return name === 'cpu' ? Number(milliValue(parseQuantity(q))) : Number(quantityValue(parseQuantity(q)));
};

/** A threshold's amount of a signal whose whole is `capacity`. */
export function thresholdAmount(t: EvictionThreshold, capacity: number): number {
  if (t.percentage !== undefined) return Math.floor(capacity * t.percentage);
  return t.quantity ? Number(quantityValue(parseQuantity(t.quantity))) : 0;
}

type ReservationConfig = Pick<KubeletConfig, 'kubeReserved' | 'systemReserved' | 'evictionHard'>;

/** Capacity less kube- and system-reserved: kubepods' cap when enforced. */
export function enforcedAllocatable(cap: Capacity, c: ReservationConfig): Capacity {
  const less = (n: Reservable) => reserved(c.kubeReserved, n) + reserved(c.systemReserved, n);
  return {
    cpuMilli: Math.max(0, cap.cpuMilli - less('cpu')),
    memoryBytes: Math.max(0, cap.memoryBytes - less('memory')),
    ephemeralStorageBytes: Math.max(0, cap.ephemeralStorageBytes - less('ephemeral-storage')),
    ...(cap.pids !== undefined ? { pids: Math.max(0, cap.pids - less('pid')) } : {}),
  };
}

/** Allocatable as the Node reports it: the enforced amount less the hard eviction thresholds too. */
export function nodeAllocatable(cap: Capacity, c: ReservationConfig): Capacity {
  const a = enforcedAllocatable(cap, c);
  const hard = (signal: string, whole: number) => {
    const t = c.evictionHard.find((x) => x.signal === signal);
    return t ? thresholdAmount(t, whole) : 0;
  };
  return {
    ...a,
    memoryBytes: Math.max(0, a.memoryBytes - hard('memory.available', cap.memoryBytes)),
    ephemeralStorageBytes: Math.max(
      0,
      a.ephemeralStorageBytes - hard('nodefs.available', cap.ephemeralStorageBytes),
    ),
  };
}

/** Millicores as the Node shows them: whole CPUs as "2", else "1500m". */
export const formatCPU = (milli: number): string => (milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`);
