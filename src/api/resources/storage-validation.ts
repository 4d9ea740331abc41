// PersistentVolume and PersistentVolumeClaim validation, after upstream's
// ValidatePersistentVolumeSpec, ValidatePersistentVolumeClaimSpec and their
// update rules. The claim spec is shared with ephemeral volumes.

import type { KubeObject } from '../meta.ts';
import { compareQuantity, quantitySign, value } from '../quantity.ts';
import {
  forbidden,
  formatBadValue,
  invalid,
  isDNS1123Subdomain,
  keyPath,
  notSupported,
  required,
} from '../validation.ts';
import {
  at,
  dns1123Label,
  dns1123Subdomain,
  type Errs,
  immutableField,
  invalidShown,
  isObj,
  isSet,
  labelSelector,
  type Obj,
  obj,
  qstr,
  quantity,
  quantityFormatError,
  semanticEqual,
  str,
  strings,
} from './checks.ts';
import { csiDriverName, hostPathSource, nfsSource, nodeSelector } from './pod-validation.ts';

export const accessModes = ['ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOnce', 'ReadWriteOncePod'];
const volumeModes = ['Block', 'Filesystem'];

function validateAccessModes(modes: string[], field: string): Errs {
  const errs: Errs = [];
  let rwop = false;
  let other = false;
  for (const mode of modes) {
    if (!accessModes.includes(mode)) errs.push(notSupported(field, mode, accessModes));
    else if (mode === 'ReadWriteOncePod') rwop = true;
    else other = true;
  }
  if (rwop && other) errs.push(forbidden(field, 'may not use ReadWriteOncePod with other access modes'));
  return errs;
}

/** ValidatePositiveQuantityValue plus the basic resource checks, for a storage size. */
function positiveQuantity(v: unknown, field: string): Errs {
  const q = quantity(v);
  if (!q) return [invalid(field, v, quantityFormatError)];
  if (quantitySign(q) <= 0) return [invalid(field, qstr(q), 'must be greater than zero')];
  return [];
}

function dataSource(ds: Obj, field: string, ref: boolean): Errs {
  const errs: Errs = [];
  if (!str(ds.name)) errs.push(required(at(field, 'name')));
  if (!str(ds.kind)) errs.push(required(at(field, 'kind')));
  const group = str(ds.apiGroup);
  if (!group && ds.kind !== 'PersistentVolumeClaim')
    errs.push(
      invalid(field, str(ds.kind), "must be 'PersistentVolumeClaim' when referencing the default apiGroup"),
    );
  if (group) errs.push(...dns1123Subdomain(group, at(field, 'apiGroup')));
  if (ref && str(ds.namespace)) errs.push(...dns1123Label(str(ds.namespace), at(field, 'namespace')));
  return errs;
}

/** ValidatePersistentVolumeClaimSpec. */
export function validatePersistentVolumeClaimSpec(spec: Obj, field: string): Errs {
  const errs: Errs = [];
  const modes = strings(spec.accessModes);
  if (modes.length === 0) errs.push(required(at(field, 'accessModes'), 'at least 1 access mode is required'));
  errs.push(...labelSelector(spec.selector, at(field, 'selector')));
  errs.push(...validateAccessModes(modes, at(field, 'accessModes')));
  const requests = obj(obj(spec.resources).requests);
  const storagePath = keyPath(at(field, 'resources'), 'storage');
  if (!Object.hasOwn(requests, 'storage')) errs.push(required(storagePath));
  else errs.push(...positiveQuantity(requests.storage, storagePath));
  const sc = str(spec.storageClassName);
  if (sc) errs.push(...dns1123Subdomain(sc, at(field, 'storageClassName')));
  if (isSet(spec.volumeMode) && !volumeModes.includes(str(spec.volumeMode)))
    errs.push(notSupported(at(field, 'volumeMode'), spec.volumeMode, volumeModes));
  if (isSet(spec.dataSource)) errs.push(...dataSource(obj(spec.dataSource), at(field, 'dataSource'), false));
  if (isSet(spec.dataSourceRef))
    errs.push(...dataSource(obj(spec.dataSourceRef), at(field, 'dataSourceRef'), true));
  const ds = obj(spec.dataSource);
  const dsr = obj(spec.dataSourceRef);
  // Upstream passes the field path itself as the bad value, printed bare.
  if (isSet(spec.dataSourceRef) && str(dsr.namespace)) {
    if (isSet(spec.dataSource))
      errs.push(
        invalidShown(
          field,
          at(field, 'dataSource'),
          'may not be specified when dataSourceRef.namespace is specified',
        ),
      );
  } else if (isSet(spec.dataSource) && isSet(spec.dataSourceRef)) {
    if ((ds.apiGroup ?? null) !== (dsr.apiGroup ?? null) || ds.kind !== dsr.kind || ds.name !== dsr.name)
      errs.push(invalidShown(field, at(field, 'dataSource'), 'must match dataSourceRef'));
  }
  return errs;
}

function storageSize(pvc: KubeObject | Obj, where: 'spec' | 'status') {
  const o = obj(pvc[where]);
  return quantity(where === 'spec' ? obj(obj(o.resources).requests).storage : obj(o.capacity).storage);
}

// Upstream appends a Go cmp.Diff; Skiff lists the changed fields in JSON terms.
function changedFields(before: unknown, after: unknown, field: string, out: string[] = []): string[] {
  if (out.length >= 20 || semanticEqual(before, after)) return out;
  if (isObj(before) && isObj(after)) {
    for (const k of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort())
      changedFields(before[k], after[k], at(field, k), out);
    return out;
  }
  if (before !== undefined) out.push(`- ${field}: ${formatBadValue(before)}`);
  if (after !== undefined) out.push(`+ ${field}: ${formatBadValue(after)}`);
  return out;
}

/** ValidatePersistentVolumeClaimUpdate's immutability rules. */
export function validatePersistentVolumeClaimUpdate(pvc: KubeObject, old: KubeObject): Errs {
  const errs: Errs = [];
  const spec: Obj = structuredClone(obj(pvc.spec));
  const oldSpec: Obj = structuredClone(obj(old.spec));
  // The volume binder sets volumeName once.
  if (!str(oldSpec.volumeName)) oldSpec.volumeName = spec.volumeName;
  // A claim without a class may be given one (the class annotation's value, if it has one).
  const annotation = old.metadata.annotations?.['volume.beta.kubernetes.io/storage-class'];
  if (!isSet(oldSpec.storageClassName) && isSet(spec.storageClassName)) {
    if (annotation === undefined || spec.storageClassName === annotation)
      oldSpec.storageClassName = spec.storageClassName;
  }
  // A bound claim may be resized.
  if (obj(pvc.status).phase === 'Bound') {
    const requests = obj(obj(spec.resources).requests);
    const oldStorage = obj(obj(oldSpec.resources).requests).storage;
    if (oldStorage === undefined) delete requests.storage;
    else requests.storage = oldStorage;
    if (isObj(spec.resources)) spec.resources.requests = requests;
  }
  if (!semanticEqual(spec, oldSpec)) {
    const diff = changedFields(oldSpec, spec, 'spec');
    errs.push(
      forbidden(
        'spec',
        `spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n${diff.join('\n')}`,
      ),
    );
  }
  const newSize = storageSize(pvc, 'spec');
  const oldSize = storageSize(old, 'spec');
  if (newSize && oldSize && compareQuantity(newSize, oldSize) < 0) {
    // RecoverVolumeExpansionFailure (beta in 1.32): shrinking is allowed down
    // to just above what the volume actually has.
    const statusSize = storageSize(old, 'status');
    if (!statusSize || compareQuantity(newSize, statusSize) <= 0)
      errs.push(forbidden('spec.resources.requests.storage', 'field can not be less than status.capacity'));
  }
  // Upstream names this one without "spec.".
  errs.push(...immutableField(obj(pvc.spec).volumeMode, obj(old.spec).volumeMode, 'volumeMode'));
  return errs;
}

// ---- PersistentVolume ----

// Upstream's order; the second element is the segment it names in the
// "more than 1 volume type" error.
const pvSources: ReadonlyArray<readonly [string, string]> = [
  ['hostPath', 'hostPath'],
  ['gcePersistentDisk', 'gcePersistentDisk'],
  ['awsElasticBlockStore', 'awsElasticBlockStore'],
  ['glusterfs', 'glusterfs'],
  ['flocker', 'flocker'],
  ['nfs', 'nfs'],
  ['rbd', 'rbd'],
  ['quobyte', 'quobyte'],
  ['cephfs', 'cephFS'],
  ['iscsi', 'iscsi'],
  ['cinder', 'cinder'],
  ['fc', 'fc'],
  ['flexVolume', 'flexVolume'],
  ['azureFile', 'azureFile'],
  ['vsphereVolume', 'vsphereVolume'],
  ['photonPersistentDisk', 'photonPersistentDisk'],
  ['portworxVolume', 'portworxVolume'],
  ['azureDisk', 'azureDisk'],
  ['scaleIO', 'scaleIO'],
  ['local', 'local'],
  ['storageos', 'storageos'],
  ['csi', 'csi'],
];

const pvRequiredFields: Record<string, readonly string[]> = {
  gcePersistentDisk: ['pdName'],
  awsElasticBlockStore: ['volumeID'],
  glusterfs: ['endpoints', 'path'],
  rbd: ['monitors', 'image'],
  quobyte: ['registry', 'volume'],
  cephfs: ['monitors'],
  iscsi: ['targetPortal', 'iqn'],
  cinder: ['volumeID'],
  flexVolume: ['driver'],
  azureFile: ['secretName', 'shareName'],
  vsphereVolume: ['volumePath'],
  photonPersistentDisk: ['pdID'],
  portworxVolume: ['volumeID'],
  azureDisk: ['diskName', 'diskURI'],
  scaleIO: ['gateway', 'system', 'volumeName'],
  storageos: ['volumeName'],
};

const reclaimPolicies = ['Delete', 'Recycle', 'Retain'];

function pvSource(key: string, s: Obj, field: string): Errs {
  switch (key) {
    case 'hostPath':
      return hostPathSource(s, field);
    case 'nfs':
      return nfsSource(s, field);
    case 'local': {
      const p = str(s.path);
      if (!p) return [required(at(field, 'path'))];
      return p.split('/').includes('..') ? [invalid(at(field, 'path'), p, "must not contain '..'")] : [];
    }
    case 'csi': {
      const errs = csiDriverName(str(s.driver), at(field, 'driver'));
      if (!str(s.volumeHandle)) errs.push(required(at(field, 'volumeHandle')));
      for (const k of [
        'controllerPublishSecretRef',
        'controllerExpandSecretRef',
        'nodePublishSecretRef',
        'nodeExpandSecretRef',
      ]) {
        if (!isSet(s[k])) continue;
        const ref = obj(s[k]);
        const p = at(field, k);
        if (!str(ref.name)) errs.push(required(at(p, 'name')));
        else
          errs.push(
            ...isDNS1123Subdomain(str(ref.name)).map((m) => invalid(at(p, 'name'), str(ref.name), m)),
          );
        if (!str(ref.namespace)) errs.push(required(at(p, 'namespace')));
        else errs.push(...dns1123Label(str(ref.namespace), at(p, 'namespace')));
      }
      return errs;
    }
  }
  const errs: Errs = [];
  for (const f of pvRequiredFields[key] ?? []) {
    const v = s[f];
    if (v === undefined || v === '' || (Array.isArray(v) && v.length === 0))
      errs.push(required(at(field, f)));
  }
  return errs;
}

/** ValidatePersistentVolumeSpec (for a PersistentVolume object, not an inline spec). */
export function validatePersistentVolumeSpec(spec: Obj, field: string): Errs {
  const errs: Errs = [];
  const modes = strings(spec.accessModes);
  if (modes.length === 0) errs.push(required(at(field, 'accessModes')));
  errs.push(...validateAccessModes(modes, at(field, 'accessModes')));
  const capacity = obj(spec.capacity);
  const capPath = at(field, 'capacity');
  const names = Object.keys(capacity);
  if (names.length === 0) errs.push(required(capPath));
  if (!Object.hasOwn(capacity, 'storage') || names.length > 1)
    errs.push(notSupported(capPath, capacity, ['storage']));
  for (const name of names.sort()) {
    const p = keyPath(capPath, name);
    const q = quantity(capacity[name]);
    if (!q) {
      errs.push(invalid(p, capacity[name], quantityFormatError));
      continue;
    }
    if (value(q) < 0n) errs.push(invalid(p, Number(value(q)), 'must be a valid resource quantity'));
    if (quantitySign(q) <= 0) errs.push(invalid(p, qstr(q), 'must be greater than zero'));
  }
  const policy = str(spec.persistentVolumeReclaimPolicy);
  if (policy && !reclaimPolicies.includes(policy))
    errs.push(notSupported(at(field, 'persistentVolumeReclaimPolicy'), policy, reclaimPolicies));
  let nodeAffinity = false;
  if (isSet(spec.nodeAffinity)) {
    const na = obj(spec.nodeAffinity);
    const np = at(field, 'nodeAffinity');
    if (!isSet(na.required))
      errs.push(required(at(np, 'required'), 'must specify required node constraints'));
    else {
      nodeAffinity = true;
      errs.push(...nodeSelector(obj(na.required), at(np, 'required')));
    }
  }
  let kind = '';
  for (const [key, shown] of pvSources) {
    if (!isSet(spec[key])) continue;
    // Upstream never refuses flexVolume as a second source.
    if (kind && key !== 'flexVolume') {
      errs.push(forbidden(at(field, shown), 'may not specify more than 1 volume type'));
      continue;
    }
    kind ||= key;
    errs.push(...pvSource(key, obj(spec[key]), at(field, key)));
    if (key === 'local' && !nodeAffinity)
      errs.push(required(at(field, 'nodeAffinity'), 'Local volume requires node affinity'));
  }
  if (!kind) errs.push(required(field, 'must specify a volume type'));
  const hostPath = str(obj(spec.hostPath).path);
  if (
    isSet(spec.hostPath) &&
    hostPath.replace(/\/+$/, '') === '' &&
    hostPath.startsWith('/') &&
    policy === 'Recycle'
  )
    errs.push(
      forbidden(
        at(field, 'persistentVolumeReclaimPolicy'),
        "may not be 'recycle' for a hostPath mount of '/'",
      ),
    );
  const sc = str(spec.storageClassName);
  if (sc) errs.push(...dns1123Subdomain(sc, at(field, 'storageClassName')));
  if (isSet(spec.volumeMode) && !volumeModes.includes(str(spec.volumeMode)))
    errs.push(notSupported(at(field, 'volumeMode'), spec.volumeMode, volumeModes));
  return errs;
}

/** ValidatePersistentVolumeUpdate's immutability rules. */
export function validatePersistentVolumeUpdate(pv: KubeObject, old: KubeObject): Errs {
  const spec = obj(pv.spec);
  const oldSpec = obj(old.spec);
  const errs: Errs = [];
  const source = (s: Obj) => {
    const out: Obj = {};
    for (const [key] of pvSources) if (isSet(s[key])) out[key] = s[key];
    return out;
  };
  const now = source(spec);
  const before = source(oldSpec);
  // A CSI volume may gain a controllerExpandSecretRef.
  if (isObj(now.csi) && isObj(before.csi) && !isSet(before.csi.controllerExpandSecretRef)) {
    now.csi = { ...now.csi };
    delete (now.csi as Obj).controllerExpandSecretRef;
  }
  if (!semanticEqual(now, before)) {
    const diff = changedFields(before, now, 'spec');
    errs.push(
      forbidden(
        'spec.persistentvolumesource',
        `spec.persistentvolumesource is immutable after creation\n${diff.join('\n')}`,
      ),
    );
  }
  errs.push(...immutableField(spec.volumeMode, oldSpec.volumeMode, 'volumeMode'));
  if (isSet(oldSpec.nodeAffinity) && !semanticEqual(spec.nodeAffinity, oldSpec.nodeAffinity))
    errs.push(
      invalid(
        'nodeAffinity',
        spec.nodeAffinity ?? null,
        'field is immutable, except for updating from beta label to GA',
      ),
    );
  return errs;
}
