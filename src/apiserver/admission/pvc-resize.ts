// PersistentVolumeClaimResize: the built-in admission plugin (upstream
// plugin/pkg/admission/storage/persistentvolume/resize) that lets a claim
// grow only where that can happen: the claim is Bound, and its StorageClass
// (the same before and after) says allowVolumeExpansion: true. Shrinking and
// the other fields are validation's business (storage-validation.ts); this
// only looks at an update that asks for more storage.

import { ApiError } from '../../api/errors.ts';
import { compareQuantity, parseQuantity } from '../../api/quantity.ts';
import type { PersistentVolumeClaim } from '../../api/types/core-v1.ts';
import type { StorageClass } from '../../api/types/storage-v1.ts';
import type { ValidatingPlugin } from './admission.ts';

export interface PVCResizeOptions {
  getStorageClass(name: string): Promise<StorageClass | undefined>;
}

const requested = (pvc: PersistentVolumeClaim) => pvc.spec?.resources?.requests?.storage;
/** The claim's class: spec.storageClassName, else the beta annotation (upstream GetPersistentVolumeClaimClass). */
const classOf = (pvc: PersistentVolumeClaim) =>
  pvc.spec?.storageClassName ?? pvc.metadata.annotations?.['volume.beta.kubernetes.io/storage-class'] ?? '';

export function pvcResizePlugin(opts: PVCResizeOptions): ValidatingPlugin {
  return {
    name: 'PersistentVolumeClaimResize',
    handles: (a) =>
      a.operation === 'UPDATE' &&
      a.group === '' &&
      a.resource === 'persistentvolumeclaims' &&
      a.subresource === '',
    async validate(a) {
      const pvc = a.object as PersistentVolumeClaim | undefined;
      const old = a.oldObject as PersistentVolumeClaim | undefined;
      const [now, before] = [pvc && requested(pvc), old && requested(old)];
      if (!pvc || !old || !now || !before) return undefined;
      let grows: boolean;
      try {
        grows = compareQuantity(parseQuantity(now), parseQuantity(before)) > 0;
      } catch {
        return undefined; // a malformed quantity is validation's error
      }
      if (!grows) return undefined;
      const forbid = (why: string) =>
        new ApiError(403, 'Forbidden', `persistentvolumeclaims "${pvc.metadata.name}" is forbidden: ${why}`, {
          name: pvc.metadata.name ?? '',
          kind: 'persistentvolumeclaims',
        });
      if (old.status?.phase !== 'Bound') throw forbid('Only bound persistent volume claims can be expanded');
      const cls = classOf(pvc);
      const sc = cls && cls === classOf(old) ? await opts.getStorageClass(cls) : undefined;
      if (sc?.allowVolumeExpansion !== true)
        throw forbid(
          'only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize',
        );
      return undefined;
    },
  };
}
