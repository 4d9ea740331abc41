// StorageObjectInUseProtection: the admission plugin that gives every new
// PersistentVolumeClaim the kubernetes.io/pvc-protection finalizer and every
// new PersistentVolume kubernetes.io/pv-protection, as upstream's
// plugin/pkg/admission/storage/storageobjectinuseprotection. The
// pvc-protection and pv-protection controllers remove them once the claim
// is used by no pod and the volume is bound to no claim, so neither
// disappears from under a pod that still writes to it.

import type { KubeObject } from '../../api/meta.ts';
import { PV_PROTECTION_FINALIZER, PVC_PROTECTION_FINALIZER } from '../../api/pv-util.ts';
import type { MutatingPlugin } from './admission.ts';

const FINALIZERS: Record<string, string> = {
  persistentvolumeclaims: PVC_PROTECTION_FINALIZER,
  persistentvolumes: PV_PROTECTION_FINALIZER,
};

export function storageObjectInUseProtectionPlugin(): MutatingPlugin {
  return {
    name: 'StorageObjectInUseProtection',
    handles: (a) =>
      a.operation === 'CREATE' && a.group === '' && a.subresource === '' && a.resource in FINALIZERS,
    async admit(a) {
      const obj = a.object as KubeObject | undefined;
      const finalizer = FINALIZERS[a.resource];
      if (!obj || !finalizer) return undefined;
      const finalizers = obj.metadata.finalizers ?? [];
      if (!finalizers.includes(finalizer)) obj.metadata.finalizers = [...finalizers, finalizer];
      return undefined;
    },
  };
}
