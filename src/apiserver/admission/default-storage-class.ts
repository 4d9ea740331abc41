// DefaultStorageClass: the built-in admission plugin that gives a new
// PersistentVolumeClaim which asks for no class the cluster's default one,
// as upstream's plugin/pkg/admission/storage/storageclass/setdefault with
// pkg/volume/util GetDefaultClass.
//
// "Asks for no class" means spec.storageClassName is absent (nil) and the
// old volume.beta.kubernetes.io/storage-class annotation is not there
// either. `storageClassName: ""` is a request for no class at all (a claim
// to bind to a class-less PV), so it is kept. The default is the class
// annotated storageclass.kubernetes.io/is-default-class: "true" (or the beta
// storageclass.beta.kubernetes.io/ annotation). Should several be, the
// newest wins, then the first by name, as upstream since 1.26 (before, two
// defaults refused the claim). Without a default the claim is left alone;
// the PV controller gives it one later, should a default appear (KEP-3333).
// Only creates are looked at, never subresources.

import type { ObjectMeta } from '../../api/meta.ts';
import type { PersistentVolumeClaim } from '../../api/types/core-v1.ts';
import type { StorageClass } from '../../api/types/storage-v1.ts';
import type { MutatingPlugin } from './admission.ts';

export const IS_DEFAULT_STORAGE_CLASS_ANNOTATION = 'storageclass.kubernetes.io/is-default-class';
export const BETA_IS_DEFAULT_STORAGE_CLASS_ANNOTATION = 'storageclass.beta.kubernetes.io/is-default-class';
/** The claim's class before spec.storageClassName existed; it still counts as asking for one. */
const BETA_STORAGE_CLASS_ANNOTATION = 'volume.beta.kubernetes.io/storage-class';

export interface DefaultStorageClassOptions {
  /** Every StorageClass (from the watch cache in the server, as upstream's lister). */
  listStorageClasses(): Promise<StorageClass[]>;
}

export function defaultStorageClassPlugin(opts: DefaultStorageClassOptions): MutatingPlugin {
  return {
    name: 'DefaultStorageClass',
    handles: (a) =>
      a.operation === 'CREATE' &&
      a.group === '' &&
      a.resource === 'persistentvolumeclaims' &&
      a.subresource === '',
    async admit(a) {
      const pvc = a.object as PersistentVolumeClaim | undefined;
      if (!pvc || claimHasClass(pvc)) return undefined;
      const def = defaultStorageClass(await opts.listStorageClasses());
      if (!def?.metadata.name) return undefined;
      pvc.spec ??= {};
      pvc.spec.storageClassName = def.metadata.name;
      return undefined;
    },
  };
}

/** Upstream's IsDefaultAnnotation: either annotation, exactly "true". */
export function isDefaultStorageClass(meta: ObjectMeta): boolean {
  const a = meta.annotations ?? {};
  return (
    a[IS_DEFAULT_STORAGE_CLASS_ANNOTATION] === 'true' ||
    a[BETA_IS_DEFAULT_STORAGE_CLASS_ANNOTATION] === 'true'
  );
}

/** Upstream's PersistentVolumeClaimHasClass: the beta annotation, or a storageClassName set (even ""). */
function claimHasClass(pvc: PersistentVolumeClaim): boolean {
  if (pvc.metadata.annotations?.[BETA_STORAGE_CLASS_ANNOTATION] !== undefined) return true;
  return pvc.spec?.storageClassName !== undefined && pvc.spec.storageClassName !== null;
}

/** The default class, or undefined: of those marked default, the newest, then the first by name. */
export function defaultStorageClass(classes: readonly StorageClass[]): StorageClass | undefined {
  const created = (sc: StorageClass) => {
    const t = Date.parse(sc.metadata.creationTimestamp ?? '');
    return Number.isNaN(t) ? 0 : t;
  };
  let best: StorageClass | undefined;
  for (const sc of classes) {
    if (!isDefaultStorageClass(sc.metadata)) continue;
    if (
      !best ||
      created(sc) > created(best) ||
      (created(sc) === created(best) && (sc.metadata.name ?? '') < (best.metadata.name ?? ''))
    )
      best = sc;
  }
  return best;
}
