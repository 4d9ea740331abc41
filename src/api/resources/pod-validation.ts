// PodSpec validation, after upstream's pkg/apis/core/validation
// (ValidatePodSpec and what it calls), plus the pod update rule. Every kind
// with a pod template runs validatePodSpec, so this is what most kubectl
// users meet. Paths and messages follow upstream, including its quirks
// (some errors name the list rather than the item, as upstream does).

import { deepCopy, type KubeObject } from '../meta.ts';
import { compareQuantity, milliValue, quantitySign, value } from '../quantity.ts';
import {
  duplicate,
  forbidden,
  formatBadValue,
  inclusiveRangeError,
  invalid,
  isDNS1123Subdomain,
  isQualifiedName,
  isValidIP,
  isValidLabelValue,
  isValidPortName,
  isValidPortNum,
  keyPath,
  nameIsDNSSubdomain,
  notSupported,
  required,
  tooLong,
  validateAnnotations,
} from '../validation.ts';
import {
  at,
  dns1123Label,
  dns1123Subdomain,
  type Errs,
  idx,
  invalidShown,
  isConfigMapKey,
  isObj,
  isRelaxedEnvVarName,
  isSet,
  labelName,
  labelSelector,
  labels,
  list,
  msgs,
  nonNegative,
  notFound,
  num,
  type Obj,
  obj,
  objs,
  qstr,
  quantity,
  quantityFormatError,
  semanticEqual,
  str,
  strings,
} from './checks.ts';
import { validatePersistentVolumeClaimSpec } from './storage-validation.ts';

export interface PodSpecOptions {
  /** The spec is a Pod's own (not a template's): a few rules are stricter. */
  isPod?: boolean;
  /** Volume names usable besides spec.volumes (a StatefulSet's volumeClaimTemplates). */
  extraVolumes?: readonly string[];
}

const MaxInt32 = 2 ** 31 - 1;
const fileModeErrorMsg = 'must be a number between 0 and 0777 (octal), both inclusive';

// ---- paths on disk ----

function pathNoBacksteps(p: string, field: string): Errs {
  return p.split('/').includes('..') ? [invalid(field, p, "must not contain '..'")] : [];
}

function localDescendingPath(p: string, field: string): Errs {
  const errs: Errs = p.startsWith('/') ? [invalid(field, p, 'must be a relative path')] : [];
  return [...errs, ...pathNoBacksteps(p, field)];
}

function localNonReservedPath(p: string, field: string): Errs {
  const errs = localDescendingPath(p, field);
  // The '..' element check already covers "../x".
  if (p.startsWith('..') && !p.startsWith('../')) errs.push(invalid(field, p, "must not start with '..'"));
  return errs;
}

function fileMode(v: unknown, field: string): Errs {
  const m = num(v);
  return m !== undefined && (m > 0o777 || m < 0) ? [invalid(field, m, fileModeErrorMsg)] : [];
}

function keyToPath(kp: Obj, field: string): Errs {
  const errs: Errs = [];
  if (!str(kp.key)) errs.push(required(at(field, 'key')));
  if (!str(kp.path)) errs.push(required(at(field, 'path')));
  errs.push(...localNonReservedPath(str(kp.path), at(field, 'path')));
  errs.push(...fileMode(kp.mode, at(field, 'mode')));
  return errs;
}

// ---- volumes ----

// Upstream's order decides which source gets "more than 1 volume type".
// The second element is the path segment upstream names in that error.
const volumeSources: ReadonlyArray<readonly [string, string]> = [
  ['emptyDir', 'emptyDir'],
  ['hostPath', 'hostPath'],
  ['gitRepo', 'gitRepo'],
  ['gcePersistentDisk', 'gcePersistentDisk'],
  ['awsElasticBlockStore', 'awsElasticBlockStore'],
  ['secret', 'secret'],
  ['nfs', 'nfs'],
  ['iscsi', 'iscsi'],
  ['glusterfs', 'glusterfs'],
  ['flocker', 'flocker'],
  ['persistentVolumeClaim', 'persistentVolumeClaim'],
  ['rbd', 'rbd'],
  ['cinder', 'cinder'],
  ['cephfs', 'cephFS'],
  ['quobyte', 'quobyte'],
  ['downwardAPI', 'downwarAPI'],
  ['fc', 'fc'],
  ['flexVolume', 'flexVolume'],
  ['configMap', 'configMap'],
  ['azureFile', 'azureFile'],
  ['vsphereVolume', 'vsphereVolume'],
  ['photonPersistentDisk', 'photonPersistentDisk'],
  ['portworxVolume', 'portworxVolume'],
  ['azureDisk', 'azureDisk'],
  ['storageos', 'storageos'],
  ['projected', 'projected'],
  ['scaleIO', 'scaleIO'],
  ['csi', 'csi'],
  ['ephemeral', 'ephemeral'],
  ['image', 'image'],
];

// The sources whose only rules Skiff checks are required fields.
const requiredSourceFields: Record<string, readonly string[]> = {
  gitRepo: ['repository'],
  gcePersistentDisk: ['pdName'],
  awsElasticBlockStore: ['volumeID'],
  iscsi: ['targetPortal', 'iqn'],
  glusterfs: ['endpoints', 'path'],
  rbd: ['monitors', 'image'],
  cinder: ['volumeID'],
  cephfs: ['monitors'],
  quobyte: ['registry', 'volume'],
  flexVolume: ['driver'],
  azureFile: ['secretName', 'shareName'],
  vsphereVolume: ['volumePath'],
  photonPersistentDisk: ['pdID'],
  portworxVolume: ['volumeID'],
  azureDisk: ['diskName', 'diskURI'],
  storageos: ['volumeName'],
  scaleIO: ['gateway', 'system', 'volumeName'],
};

const hostPathTypes = [
  '',
  'BlockDevice',
  'CharDevice',
  'Directory',
  'DirectoryOrCreate',
  'File',
  'FileOrCreate',
  'Socket',
];

export function hostPathSource(s: Obj, field: string): Errs {
  const p = str(s.path);
  if (!p) return [required(at(field, 'path'))];
  const errs = pathNoBacksteps(p, at(field, 'path'));
  if (isSet(s.type) && !hostPathTypes.includes(str(s.type)))
    errs.push(notSupported(at(field, 'type'), s.type, hostPathTypes));
  return errs;
}

export function nfsSource(s: Obj, field: string): Errs {
  const errs: Errs = [];
  if (!str(s.server)) errs.push(required(at(field, 'server')));
  if (!str(s.path)) errs.push(required(at(field, 'path')));
  if (!str(s.path).startsWith('/'))
    errs.push(invalid(at(field, 'path'), str(s.path), 'must be an absolute path'));
  return errs;
}

/** ValidateCSIDriverName. */
export function csiDriverName(driver: string, field: string): Errs {
  const errs: Errs = [];
  if (!driver) errs.push(required(field));
  if (driver.length > 63) errs.push(tooLong(field, driver, 63));
  errs.push(...isDNS1123Subdomain(driver.toLowerCase()).map((m) => invalid(field, driver, m)));
  return errs;
}

const downwardAPIVolumeFields = [
  'metadata.annotations',
  'metadata.labels',
  'metadata.name',
  'metadata.namespace',
  'metadata.uid',
];

function downwardAPIVolume(s: Obj, field: string): Errs {
  const errs = fileMode(s.defaultMode, at(field, 'defaultMode'));
  // Upstream reports the items' errors against the volume source, not the item.
  for (const file of objs(s.items)) {
    if (!str(file.path)) errs.push(required(at(field, 'path')));
    errs.push(...localNonReservedPath(str(file.path), at(field, 'path')));
    if (isSet(file.fieldRef)) {
      errs.push(...objectFieldSelector(obj(file.fieldRef), downwardAPIVolumeFields, at(field, 'fieldRef')));
      if (isSet(file.resourceFieldRef))
        errs.push(
          invalid(field, 'resource', 'fieldRef and resourceFieldRef can not be specified simultaneously'),
        );
    } else if (isSet(file.resourceFieldRef)) {
      errs.push(...resourceFieldSelector(obj(file.resourceFieldRef), at(field, 'resourceFieldRef'), true));
    } else {
      errs.push(required(field, 'one of fieldRef and resourceFieldRef is required'));
    }
    errs.push(...fileMode(file.mode, at(field, 'mode')));
  }
  return errs;
}

function projectedVolume(s: Obj, field: string): Errs {
  const errs: Errs = [];
  objs(s.sources).forEach((source, i) => {
    const p = idx(at(field, 'sources'), i);
    const present = [
      'secret',
      'configMap',
      'downwardAPI',
      'serviceAccountToken',
      'clusterTrustBundle',
    ].filter((k) => isSet(source[k]));
    for (const k of ['secret', 'configMap'] as const) {
      if (!isSet(source[k])) continue;
      const ref = obj(source[k]);
      if (!str(ref.name)) errs.push(required(at(p, k, 'name')));
      objs(ref.items).forEach((kp, j) => {
        errs.push(...keyToPath(kp, idx(at(p, k, 'items'), j)));
      });
    }
    if (isSet(source.serviceAccountToken)) {
      const t = obj(source.serviceAccountToken);
      const tp = at(p, 'serviceAccountToken');
      const exp = num(t.expirationSeconds);
      if (exp !== undefined && exp < 600)
        errs.push(
          invalid(at(tp, 'expirationSeconds'), exp, 'may not specify a duration less than 10 minutes'),
        );
      if (exp !== undefined && exp > 2 ** 32)
        errs.push(
          invalid(at(tp, 'expirationSeconds'), exp, 'may not specify a duration larger than 2^32 seconds'),
        );
      if (!str(t.path)) errs.push(required(at(tp, 'path')));
      else errs.push(...localNonReservedPath(str(t.path), at(tp, 'path')));
    }
    if (present.length > 1) errs.push(forbidden(p, 'may not specify more than 1 volume type per source'));
  });
  errs.push(...fileMode(s.defaultMode, at(field, 'defaultMode')));
  return errs;
}

function volumeSource(key: string, s: Obj, field: string, opts: PodSpecOptions): Errs {
  const errs: Errs = [];
  switch (key) {
    case 'emptyDir': {
      if (isSet(s.sizeLimit)) {
        const q = quantity(s.sizeLimit);
        if (!q) errs.push(invalid(at(field, 'sizeLimit'), s.sizeLimit, quantityFormatError));
        else if (q.unscaled < 0n)
          errs.push(forbidden(at(field, 'sizeLimit'), 'SizeLimit field must be a valid resource quantity'));
      }
      return errs;
    }
    case 'hostPath':
      return hostPathSource(s, field);
    case 'secret':
    case 'configMap': {
      const nameKey = key === 'secret' ? 'secretName' : 'name';
      if (!str(s[nameKey])) errs.push(required(at(field, nameKey)));
      errs.push(...fileMode(s.defaultMode, at(field, 'defaultMode')));
      objs(s.items).forEach((kp, i) => {
        errs.push(...keyToPath(kp, idx(at(field, 'items'), i)));
      });
      return errs;
    }
    case 'persistentVolumeClaim':
      return str(s.claimName) ? [] : [required(at(field, 'claimName'))];
    case 'nfs':
      return nfsSource(s, field);
    case 'downwardAPI':
      return downwardAPIVolume(s, field);
    case 'projected':
      return projectedVolume(s, field);
    case 'csi': {
      errs.push(...csiDriverName(str(s.driver), at(field, 'driver')));
      if (isSet(s.nodePublishSecretRef) && !str(obj(s.nodePublishSecretRef).name))
        errs.push(required(at(field, 'nodePublishSecretRef', 'name')));
      return errs;
    }
    case 'ephemeral': {
      if (!isObj(s.volumeClaimTemplate)) return [required(at(field, 'volumeClaimTemplate'))];
      const tpl = s.volumeClaimTemplate;
      const tp = at(field, 'volumeClaimTemplate');
      const meta = obj(tpl.metadata);
      errs.push(...validateAnnotations(stringMap(meta.annotations), at(tp, 'metadata', 'annotations')));
      errs.push(...labels(meta.labels, at(tp, 'metadata', 'labels')));
      for (const k of Object.keys(meta)) {
        if (k !== 'labels' && k !== 'annotations' && isSet(meta[k]))
          errs.push(forbidden(at(tp, 'metadata', k), 'cannot be set'));
      }
      errs.push(...validatePersistentVolumeClaimSpec(obj(tpl.spec), at(tp, 'spec')));
      return errs;
    }
    case 'image':
      return opts.isPod && !str(s.reference) ? [required(at(field, 'reference'))] : [];
  }
  for (const f of requiredSourceFields[key] ?? []) {
    const v = s[f];
    if (v === undefined || v === '' || (Array.isArray(v) && v.length === 0))
      errs.push(required(at(field, f)));
  }
  return errs;
}

const stringMap = (v: unknown): Record<string, string> =>
  Object.fromEntries(Object.entries(obj(v)).map(([k, val]) => [k, str(val)]));

/** ValidateVolumes: the usable volumes by name (with their source), and the errors. */
function validateVolumes(volumes: Obj[], field: string, opts: PodSpecOptions): [Map<string, string>, Errs] {
  const errs: Errs = [];
  const byName = new Map<string, string>();
  volumes.forEach((vol, i) => {
    const p = idx(field, i);
    const el: Errs = [];
    let kind = '';
    for (const [key, shown] of volumeSources) {
      if (!isSet(vol[key])) continue;
      if (kind) {
        el.push(forbidden(at(p, shown), 'may not specify more than 1 volume type'));
        continue;
      }
      kind = key;
      el.push(...volumeSource(key, obj(vol[key]), at(p, key), opts));
    }
    if (!kind) el.push(required(p, 'must specify a volume type'));
    const name = str(vol.name);
    if (!name) el.push(required(at(p, 'name')));
    else el.push(...dns1123Label(name, at(p, 'name')));
    if (byName.has(name)) el.push(duplicate(at(p, 'name'), name));
    if (el.length === 0) byName.set(name, kind);
    else errs.push(...el);
  });
  return [byName, errs];
}

// ---- containers ----

const envFieldPaths = [
  'metadata.name',
  'metadata.namespace',
  'metadata.uid',
  'spec.nodeName',
  'spec.serviceAccountName',
  'status.hostIP',
  'status.hostIPs',
  'status.podIP',
  'status.podIPs',
];

// What v1's downward API field label conversion accepts at all.
const convertibleFieldPaths = new Set([
  'metadata.annotations',
  'metadata.labels',
  'metadata.name',
  'metadata.namespace',
  'metadata.uid',
  'spec.nodeName',
  'spec.restartPolicy',
  'spec.serviceAccountName',
  'spec.schedulerName',
  'status.phase',
  'status.hostIP',
  'status.hostIPs',
  'status.podIP',
  'status.podIPs',
]);

// fieldpath.SplitMaybeSubscriptedPath: metadata.labels['key'].
function splitSubscript(p: string): [string, string] | undefined {
  const m = /^(.*)\['(.*)'\]$/.exec(p);
  return m ? [m[1] as string, m[2] as string] : undefined;
}

function objectFieldSelector(fs: Obj, expressions: readonly string[], field: string): Errs {
  if (!str(fs.apiVersion)) return [required(at(field, 'apiVersion'))];
  const fieldPath = str(fs.fieldPath);
  if (!fieldPath) return [required(at(field, 'fieldPath'))];
  const sub = splitSubscript(fieldPath);
  const convertible =
    str(fs.apiVersion) === 'v1' &&
    (convertibleFieldPaths.has(fieldPath) ||
      (sub !== undefined && (sub[0] === 'metadata.labels' || sub[0] === 'metadata.annotations')));
  if (!convertible) {
    const err =
      str(fs.apiVersion) === 'v1'
        ? `field label not supported: ${fieldPath}`
        : `unsupported pod version: ${str(fs.apiVersion)}`;
    return [invalid(at(field, 'fieldPath'), fieldPath, `error converting fieldPath: ${err}`)];
  }
  if (sub) {
    const [p, key] = sub;
    if (p === 'metadata.annotations')
      return msgs(field, key.toLowerCase(), isQualifiedName(key.toLowerCase()));
    if (p === 'metadata.labels') return msgs(field, key, isQualifiedName(key));
    return [invalid(field, p, 'does not support subscript')];
  }
  if (!expressions.includes(fieldPath)) return [notSupported(at(field, 'fieldPath'), fieldPath, expressions)];
  return [];
}

const containerResourceFields = [
  'limits.cpu',
  'limits.ephemeral-storage',
  'limits.memory',
  'requests.cpu',
  'requests.ephemeral-storage',
  'requests.memory',
];

function resourceFieldSelector(fs: Obj, field: string, volume: boolean): Errs {
  const resource = str(fs.resource);
  if (volume && !str(fs.containerName)) return [required(at(field, 'containerName'))];
  if (!resource) return [required(at(field, 'resource'))];
  const hugePages = resource.startsWith('requests.hugepages-') || resource.startsWith('limits.hugepages-');
  if (!containerResourceFields.includes(resource) && !hugePages)
    return [notSupported(at(field, 'resource'), resource, containerResourceFields)];
  return [];
}

function keySelector(s: Obj, field: string): Errs {
  const errs: Errs = nameIsDNSSubdomain(str(s.name), false).map((m) =>
    invalid(at(field, 'name'), str(s.name), m),
  );
  const key = str(s.key);
  if (!key) errs.push(required(at(field, 'key')));
  else errs.push(...msgs(at(field, 'key'), key, isConfigMapKey(key)));
  return errs;
}

function validateEnv(env: Obj[], field: string): Errs {
  const errs: Errs = [];
  env.forEach((ev, i) => {
    const p = idx(field, i);
    const name = str(ev.name);
    if (!name) errs.push(required(at(p, 'name')));
    else errs.push(...msgs(at(p, 'name'), name, isRelaxedEnvVarName(name)));
    if (!isSet(ev.valueFrom)) return;
    const vf = obj(ev.valueFrom);
    const vp = at(p, 'valueFrom');
    let sources = 0;
    if (isSet(vf.fieldRef)) {
      sources++;
      errs.push(...objectFieldSelector(obj(vf.fieldRef), envFieldPaths, at(vp, 'fieldRef')));
    }
    if (isSet(vf.resourceFieldRef)) {
      sources++;
      errs.push(...resourceFieldSelector(obj(vf.resourceFieldRef), at(vp, 'resourceFieldRef'), false));
    }
    if (isSet(vf.configMapKeyRef)) {
      sources++;
      errs.push(...keySelector(obj(vf.configMapKeyRef), at(vp, 'configMapKeyRef')));
    }
    if (isSet(vf.secretKeyRef)) {
      sources++;
      errs.push(...keySelector(obj(vf.secretKeyRef), at(vp, 'secretKeyRef')));
    }
    if (sources === 0) {
      errs.push(
        invalid(
          vp,
          '',
          'must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`',
        ),
      );
    } else if (str(ev.value)) {
      errs.push(invalid(vp, '', 'may not be specified when `value` is not empty'));
    } else if (sources > 1) {
      errs.push(invalid(vp, '', 'may not have more than one field specified at a time'));
    }
  });
  return errs;
}

function validateEnvFrom(envFrom: Obj[], field: string): Errs {
  const errs: Errs = [];
  envFrom.forEach((ev, i) => {
    const p = idx(field, i);
    const prefix = str(ev.prefix);
    if (prefix) errs.push(...msgs(at(p, 'prefix'), prefix, isRelaxedEnvVarName(prefix)));
    let sources = 0;
    for (const k of ['configMapRef', 'secretRef']) {
      if (!isSet(ev[k])) continue;
      sources++;
      const name = str(obj(ev[k]).name);
      if (!name) errs.push(required(at(p, k, 'name')));
      else errs.push(...nameIsDNSSubdomain(name, true).map((m) => invalid(at(p, k, 'name'), name, m)));
    }
    // Upstream names the list, not the entry, in these two.
    if (sources === 0) errs.push(invalid(field, '', 'must specify one of: `configMapRef` or `secretRef`'));
    else if (sources > 1)
      errs.push(invalid(field, '', 'may not have more than one field specified at a time'));
  });
  return errs;
}

function validateVolumeMounts(c: Obj, volumes: Map<string, string>, field: string): Errs {
  const errs: Errs = [];
  const devices = objs(c.volumeDevices);
  const deviceNames = new Set(devices.map((d) => str(d.name)));
  const devicePaths = new Set(devices.map((d) => str(d.devicePath)));
  const mountPoints = new Set<string>();
  objs(c.volumeMounts).forEach((m, i) => {
    const p = idx(field, i);
    const name = str(m.name);
    const mountPath = str(m.mountPath);
    if (!name) errs.push(required(at(p, 'name')));
    if (!volumes.has(name)) errs.push(notFound(at(p, 'name'), name));
    if (!mountPath) errs.push(required(at(p, 'mountPath')));
    if (mountPoints.has(mountPath)) errs.push(invalid(at(p, 'mountPath'), mountPath, 'must be unique'));
    mountPoints.add(mountPath);
    if (deviceNames.has(name))
      errs.push(invalid(at(p, 'name'), name, 'must not already exist in volumeDevices'));
    if (devicePaths.has(mountPath))
      errs.push(invalid(at(p, 'mountPath'), mountPath, 'must not already exist as a path in volumeDevices'));
    const subPath = str(m.subPath);
    const subPathExpr = str(m.subPathExpr);
    if (volumes.get(name) === 'image') {
      if (subPath) errs.push(invalid(at(p, 'subPath'), subPath, 'not allowed in image volume sources'));
      if (subPathExpr)
        errs.push(invalid(at(p, 'subPathExpr'), subPathExpr, 'not allowed in image volume sources'));
    }
    // Upstream reports these two against the list's path.
    if (subPath) errs.push(...localDescendingPath(subPath, at(field, 'subPath')));
    if (subPathExpr) {
      if (subPath)
        errs.push(
          invalid(at(p, 'subPathExpr'), subPathExpr, 'subPathExpr and subPath are mutually exclusive'),
        );
      errs.push(...localDescendingPath(subPathExpr, at(field, 'subPathExpr')));
    }
    if (isSet(m.mountPropagation)) {
      const mp = str(m.mountPropagation);
      const modes = ['Bidirectional', 'HostToContainer', 'None'];
      if (!modes.includes(mp))
        errs.push(notSupported(at(field, 'mountPropagation'), m.mountPropagation, modes));
      else if (mp === 'Bidirectional' && obj(c.securityContext).privileged !== true)
        errs.push(
          forbidden(
            at(field, 'mountPropagation'),
            'Bidirectional mount propagation is available only to privileged containers',
          ),
        );
    }
  });
  return errs;
}

function validateVolumeDevices(c: Obj, volumes: Map<string, string>, field: string): Errs {
  const errs: Errs = [];
  const mounts = objs(c.volumeMounts);
  const mountNames = new Set(mounts.map((m) => str(m.name)));
  const mountPaths = new Set(mounts.map((m) => str(m.mountPath)));
  const names = new Set<string>();
  const paths = new Set<string>();
  objs(c.volumeDevices).forEach((d, i) => {
    const p = idx(field, i);
    const name = str(d.name);
    const devicePath = str(d.devicePath);
    const source = volumes.get(name);
    if (!name) errs.push(required(at(p, 'name')));
    if (names.has(name)) errs.push(invalid(at(p, 'name'), name, 'must be unique'));
    if (source !== undefined && source !== 'persistentVolumeClaim' && source !== 'ephemeral')
      errs.push(
        invalid(
          at(p, 'name'),
          name,
          'can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode',
        ),
      );
    if (source === undefined) errs.push(notFound(at(p, 'name'), name));
    if (!devicePath) errs.push(required(at(p, 'devicePath')));
    if (paths.has(devicePath)) errs.push(invalid(at(p, 'devicePath'), devicePath, 'must be unique'));
    if (devicePath.split('/').includes('..'))
      errs.push(invalid(at(p, 'devicePath'), devicePath, "can not contain backsteps ('..')"));
    else paths.add(devicePath);
    if (mountNames.has(name))
      errs.push(invalid(at(p, 'name'), name, 'must not already exist in volumeMounts'));
    if (mountPaths.has(devicePath))
      errs.push(invalid(at(p, 'devicePath'), devicePath, 'must not already exist as a path in volumeMounts'));
    if (name) names.add(name);
  });
  return errs;
}

function validateContainerPorts(ports: Obj[], field: string): Errs {
  const errs: Errs = [];
  const names = new Set<string>();
  ports.forEach((port, i) => {
    const p = idx(field, i);
    const name = str(port.name);
    if (name) {
      const bad = isValidPortName(name);
      if (bad.length) errs.push(...msgs(at(p, 'name'), name, bad));
      else if (names.has(name)) errs.push(duplicate(at(p, 'name'), name));
      else names.add(name);
    }
    const containerPort = num(port.containerPort) ?? 0;
    if (containerPort === 0) errs.push(required(at(p, 'containerPort')));
    else errs.push(...msgs(at(p, 'containerPort'), containerPort, isValidPortNum(containerPort)));
    const hostPort = num(port.hostPort) ?? 0;
    if (hostPort !== 0) errs.push(...msgs(at(p, 'hostPort'), hostPort, isValidPortNum(hostPort)));
    errs.push(...protocol(port.protocol, at(p, 'protocol')));
  });
  return errs;
}

export const protocols = ['SCTP', 'TCP', 'UDP'];

export function protocol(v: unknown, field: string): Errs {
  const s = str(v);
  if (!s) return [required(field)];
  return protocols.includes(s) ? [] : [notSupported(field, v, protocols)];
}

/** ValidatePortNumOrName for an IntOrString port. */
export function portNumOrName(v: unknown, field: string): Errs {
  if (typeof v === 'string') return msgs(field, v, isValidPortName(v));
  return msgs(field, num(v) ?? 0, isValidPortNum(num(v) ?? 0));
}

// ---- resources ----

const standardContainerResources = new Set(['cpu', 'memory', 'ephemeral-storage']);
const standardResources = new Set([
  'cpu',
  'memory',
  'ephemeral-storage',
  'requests.cpu',
  'requests.memory',
  'requests.ephemeral-storage',
  'limits.cpu',
  'limits.memory',
  'limits.ephemeral-storage',
  'pods',
  'services',
  'replicationcontrollers',
  'resourcequotas',
  'secrets',
  'configmaps',
  'persistentvolumeclaims',
  'storage',
  'requests.storage',
  'services.nodeports',
  'services.loadbalancers',
]);
const integerResources = new Set([
  'pods',
  'services',
  'replicationcontrollers',
  'resourcequotas',
  'secrets',
  'configmaps',
  'persistentvolumeclaims',
  'services.nodeports',
  'services.loadbalancers',
]);

const isHugePages = (n: string) => n.startsWith('hugepages-');
const isNativeResource = (n: string) => !n.includes('/') || n.includes('kubernetes.io/');
const isExtendedResource = (n: string) =>
  !isNativeResource(n) && !n.startsWith('requests.') && isQualifiedName(`requests.${n}`).length === 0;
const overcommitAllowed = (n: string) => isNativeResource(n) && !isHugePages(n);
const isIntegerResource = (n: string) => integerResources.has(n) || isExtendedResource(n);

function containerResourceName(name: string, field: string): Errs {
  const errs = msgs(field, name, isQualifiedName(name));
  if (errs.length) return errs;
  if (!name.includes('/')) {
    if (!standardResources.has(name) && !isHugePages(name))
      errs.push(invalid(field, name, 'must be a standard resource type or fully qualified'));
    if (!standardContainerResources.has(name) && !isHugePages(name))
      errs.push(invalid(field, name, 'must be a standard resource for containers'));
  } else if (!isNativeResource(name) && !isExtendedResource(name)) {
    errs.push(invalid(field, name, "doesn't follow extended resource name standard"));
  }
  return errs;
}

/** ValidateResourceQuantityValue, plus the huge page size rule. */
export function quantityValue(name: string, v: unknown, field: string): Errs {
  const q = quantity(v);
  if (!q) return [invalid(field, v, quantityFormatError)];
  const errs: Errs = [];
  if (quantitySign(q) < 0) errs.push(invalid(field, qstr(q), 'must be greater than or equal to 0'));
  // Quantity implements Stringer, so upstream prints it unquoted here.
  if (isIntegerResource(name) && milliValue(q) % 1000n !== 0n)
    errs.push(invalidShown(field, qstr(q), 'must be an integer'));
  if (isHugePages(name)) {
    const page = quantity(name.slice('hugepages-'.length));
    const pageBytes = page ? value(page) : 0n;
    if (pageBytes <= 0n || milliValue(q) % (pageBytes * 1000n) !== 0n)
      errs.push(invalid(field, qstr(q), `${qstr(q)} is not positive integer multiple of ${name}`));
  }
  return errs;
}

function validateResources(res: Obj, field: string, podClaims: ReadonlySet<string>): Errs {
  const errs: Errs = [];
  const limits = obj(res.limits);
  const requests = obj(res.requests);
  const limPath = at(field, 'limits');
  const reqPath = at(field, 'requests');
  let cpuOrMemory = false;
  let hugePages = false;
  // Upstream walks Go maps; sorted keys keep the order stable.
  for (const name of Object.keys(limits).sort()) {
    const p = keyPath(limPath, name);
    errs.push(...containerResourceName(name, p), ...quantityValue(name, limits[name], p));
    if (isHugePages(name)) hugePages = true;
    if (name === 'cpu' || name === 'memory') cpuOrMemory = true;
  }
  for (const name of Object.keys(requests).sort()) {
    const p = keyPath(reqPath, name);
    errs.push(...containerResourceName(name, p), ...quantityValue(name, requests[name], p));
    const req = quantity(requests[name]);
    if (Object.hasOwn(limits, name)) {
      const lim = quantity(limits[name]);
      if (req && lim) {
        const cmp = compareQuantity(req, lim);
        if (cmp !== 0 && !overcommitAllowed(name))
          errs.push(invalid(reqPath, qstr(req), `must be equal to ${name} limit of ${qstr(lim)}`));
        else if (cmp > 0)
          errs.push(
            invalid(reqPath, qstr(req), `must be less than or equal to ${name} limit of ${qstr(lim)}`),
          );
      }
    } else if (!overcommitAllowed(name)) {
      errs.push(required(limPath, 'Limit must be set for non overcommitable resources'));
    }
    if (isHugePages(name)) hugePages = true;
    if (name === 'cpu' || name === 'memory') cpuOrMemory = true;
  }
  if (!cpuOrMemory && hugePages) errs.push(forbidden(field, 'HugePages require cpu or memory'));
  const claimNames = new Set<string>();
  objs(res.claims).forEach((claim, i) => {
    const p = idx(at(field, 'claims'), i);
    const name = str(claim.name);
    if (!name) {
      errs.push(required(p));
      return;
    }
    const key = claim.request ? `${name}/${str(claim.request)}` : name;
    if (claimNames.has(key)) errs.push(duplicate(p, key));
    claimNames.add(key);
    if (!podClaims.has(name)) {
      const names = [...podClaims].sort();
      const detail = `must be one of the names in pod.spec.resourceClaims${names.length ? `: ${names.join(', ')}` : ' which is empty'}`;
      errs.push(notFound(p, name, detail));
    }
  });
  return errs;
}

// ---- probes and lifecycle handlers ----

function validateHandler(h: Obj, field: string, grace: number | undefined, kinds: readonly string[]): Errs {
  const errs: Errs = [];
  let handlers = 0;
  for (const k of kinds) {
    if (!isSet(h[k])) continue;
    if (handlers > 0) {
      errs.push(forbidden(at(field, k), 'may not specify more than 1 handler type'));
      continue;
    }
    handlers++;
    const a = obj(h[k]);
    const p = at(field, k);
    switch (k) {
      case 'exec':
        if (list(a.command).length === 0) errs.push(required(at(p, 'command')));
        break;
      case 'httpGet': {
        if (!str(a.path)) errs.push(required(at(p, 'path')));
        errs.push(...portNumOrName(a.port, at(p, 'port')));
        const schemes = ['HTTP', 'HTTPS'];
        if (!schemes.includes(str(a.scheme)))
          errs.push(notSupported(at(p, 'scheme'), str(a.scheme), schemes));
        for (const header of objs(a.httpHeaders)) {
          const hn = str(header.name);
          if (!/^[-A-Za-z0-9]+$/.test(hn)) {
            errs.push(
              invalid(
                at(p, 'httpHeaders'),
                hn,
                "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')",
              ),
            );
          }
        }
        break;
      }
      case 'tcpSocket':
        errs.push(...portNumOrName(a.port, at(p, 'port')));
        break;
      case 'grpc':
        errs.push(...portNumOrName(num(a.port) ?? 0, at(p, 'port')));
        break;
      case 'sleep': {
        const seconds = num(a.seconds) ?? 0;
        // AllowPodLifecycleSleepActionZeroValue is still alpha in 1.32.
        if (grace !== undefined && (seconds <= 0 || seconds > grace)) {
          errs.push(
            invalid(
              p,
              seconds,
              `must be greater than 0 and less than terminationGracePeriodSeconds (${grace}). Enable AllowPodLifecycleSleepActionZeroValue feature gate for zero sleep.`,
            ),
          );
        }
        break;
      }
    }
  }
  if (handlers === 0) errs.push(required(field, 'must specify a handler type'));
  return errs;
}

const probeHandlers = ['exec', 'httpGet', 'tcpSocket', 'grpc'];
const lifecycleHandlers = ['exec', 'httpGet', 'tcpSocket', 'sleep'];

function validateProbe(
  probe: unknown,
  kind: 'liveness' | 'readiness' | 'startup',
  field: string,
  grace?: number,
): Errs {
  if (!isSet(probe)) return [];
  const pr = obj(probe);
  const errs = validateHandler(pr, field, grace, probeHandlers);
  for (const f of [
    'initialDelaySeconds',
    'timeoutSeconds',
    'periodSeconds',
    'successThreshold',
    'failureThreshold',
  ])
    errs.push(...nonNegative(at(field, f), pr[f]));
  const tgps = num(pr.terminationGracePeriodSeconds);
  if (tgps !== undefined && tgps <= 0)
    errs.push(invalid(at(field, 'terminationGracePeriodSeconds'), tgps, 'must be greater than 0'));
  if (kind !== 'readiness' && (num(pr.successThreshold) ?? 0) !== 1)
    errs.push(invalid(at(field, 'successThreshold'), num(pr.successThreshold) ?? 0, 'must be 1'));
  if (kind === 'readiness' && isSet(pr.terminationGracePeriodSeconds))
    errs.push(
      invalid(
        at(field, 'terminationGracePeriodSeconds'),
        pr.terminationGracePeriodSeconds,
        'must not be set for readinessProbes',
      ),
    );
  return errs;
}

function validateLifecycle(c: Obj, field: string, grace?: number): Errs {
  if (!isSet(c.lifecycle)) return [];
  const lc = obj(c.lifecycle);
  const errs: Errs = [];
  for (const k of ['postStart', 'preStop']) {
    if (isSet(lc[k]))
      errs.push(...validateHandler(obj(lc[k]), at(field, 'lifecycle', k), grace, lifecycleHandlers));
  }
  return errs;
}

function validateProbes(c: Obj, field: string, grace?: number): Errs {
  return [
    ...validateLifecycle(c, field, grace),
    ...validateProbe(c.livenessProbe, 'liveness', at(field, 'livenessProbe'), grace),
    ...validateProbe(c.readinessProbe, 'readiness', at(field, 'readinessProbe'), grace),
    ...validateProbe(c.startupProbe, 'startup', at(field, 'startupProbe'), grace),
  ];
}

function validateContainerCommon(
  c: Obj,
  volumes: Map<string, string>,
  podClaims: ReadonlySet<string>,
  field: string,
  opts: PodSpecOptions,
): Errs {
  const errs: Errs = [];
  const name = str(c.name);
  if (!name) errs.push(required(at(field, 'name')));
  else errs.push(...dns1123Label(name, at(field, 'name')));
  const image = str(c.image);
  if (!image) errs.push(required(at(field, 'image')));
  else if (opts.isPod && image.trim() !== image)
    errs.push(invalid(at(field, 'image'), image, 'must not have leading or trailing whitespace'));
  const tmp = str(c.terminationMessagePolicy);
  if (!tmp) errs.push(required(at(field, 'terminationMessagePolicy')));
  else if (tmp !== 'File' && tmp !== 'FallbackToLogsOnError')
    errs.push(notSupported(at(field, 'terminationMessagePolicy'), tmp, ['File', 'FallbackToLogsOnError']));
  errs.push(...validateContainerPorts(objs(c.ports), at(field, 'ports')));
  errs.push(...validateEnv(objs(c.env), at(field, 'env')));
  errs.push(...validateEnvFrom(objs(c.envFrom), at(field, 'envFrom')));
  errs.push(...validateVolumeMounts(c, volumes, at(field, 'volumeMounts')));
  errs.push(...validateVolumeDevices(c, volumes, at(field, 'volumeDevices')));
  const pull = str(c.imagePullPolicy);
  if (!pull) errs.push(required(at(field, 'imagePullPolicy')));
  else if (!['Always', 'IfNotPresent', 'Never'].includes(pull))
    errs.push(notSupported(at(field, 'imagePullPolicy'), pull, ['Always', 'IfNotPresent', 'Never']));
  errs.push(...validateResources(obj(c.resources), at(field, 'resources'), podClaims));
  errs.push(...securityContext(obj(c.securityContext), at(field, 'securityContext')));
  return errs;
}

function securityContext(sc: Obj, field: string): Errs {
  const errs: Errs = [];
  for (const k of ['runAsUser', 'runAsGroup']) {
    const v = num(sc[k]);
    if (v !== undefined && (v < 0 || v > 0xffffffff))
      errs.push(invalid(at(field, k), v, inclusiveRangeError(0, 0xffffffff)));
  }
  if (sc.allowPrivilegeEscalation === false && sc.privileged === true)
    errs.push(invalid(field, sc, 'cannot set `allowPrivilegeEscalation` to false and `privileged` to true'));
  return errs;
}

/** AccumulateUniqueHostPorts: protocol/hostIP/hostPort must be unique. */
function hostPortConflicts(containers: Obj[], field: string, seen = new Set<string>()): Errs {
  const errs: Errs = [];
  containers.forEach((c, i) => {
    objs(c.ports).forEach((port, j) => {
      const hostPort = num(port.hostPort) ?? 0;
      if (hostPort === 0) return;
      const key = `${str(port.protocol)}/${str(port.hostIP)}/${hostPort}`;
      if (seen.has(key)) errs.push(duplicate(at(idx(at(idx(field, i), 'ports'), j), 'hostPort'), key));
      else seen.add(key);
    });
  });
  return errs;
}

function validateContainers(
  containers: Obj[],
  volumes: Map<string, string>,
  podClaims: ReadonlySet<string>,
  grace: number | undefined,
  field: string,
  opts: PodSpecOptions,
): Errs {
  if (containers.length === 0) return [required(field)];
  const errs: Errs = [];
  const names = new Set<string>();
  containers.forEach((c, i) => {
    const p = idx(field, i);
    errs.push(...validateContainerCommon(c, volumes, podClaims, p, opts));
    const name = str(c.name);
    if (names.has(name)) errs.push(duplicate(at(p, 'name'), name));
    else names.add(name);
    errs.push(...validateProbes(c, p, grace));
    if (isSet(c.restartPolicy))
      errs.push(forbidden(at(p, 'restartPolicy'), 'may not be set for non-init containers'));
  });
  errs.push(...hostPortConflicts(containers, field));
  return errs;
}

function validateInitContainers(
  inits: Obj[],
  containers: Obj[],
  volumes: Map<string, string>,
  podClaims: ReadonlySet<string>,
  grace: number | undefined,
  field: string,
  opts: PodSpecOptions,
): Errs {
  const errs: Errs = [];
  const names = new Set(containers.map((c) => str(c.name)));
  inits.forEach((c, i) => {
    const p = idx(field, i);
    errs.push(...validateContainerCommon(c, volumes, podClaims, p, opts));
    let restartAlways = false;
    if (isSet(c.restartPolicy)) {
      if (c.restartPolicy !== 'Always')
        errs.push(notSupported(at(p, 'restartPolicy'), c.restartPolicy, ['Always']));
      restartAlways = c.restartPolicy === 'Always';
    }
    const name = str(c.name);
    if (names.has(name)) errs.push(duplicate(at(p, 'name'), name));
    else if (name) names.add(name);
    // Init containers run one by one, so only conflicts within one count.
    errs.push(...hostPortConflicts([c], field));
    if (restartAlways) {
      errs.push(...validateProbes(c, p, grace));
    } else {
      for (const k of ['lifecycle', 'livenessProbe', 'readinessProbe', 'startupProbe']) {
        if (isSet(c[k]))
          errs.push(forbidden(at(p, k), 'may not be set for init containers without restartPolicy=Always'));
      }
    }
    if (list(c.resizePolicy).length > 0)
      errs.push(invalid(at(p, 'resizePolicy'), c.resizePolicy, 'must not be set for init containers'));
  });
  return errs;
}

// ---- ephemeral containers ----

// Upstream's allowedEphemeralContainerFields, the fields it forbids: an
// ephemeral container must not become part of the pod's workload (no ports,
// probes, lifecycle hooks or resources of its own).
const forbiddenEphemeralContainerFields = [
  'ports',
  'resources',
  'livenessProbe',
  'readinessProbe',
  'startupProbe',
  'lifecycle',
  'resizePolicy',
  'restartPolicy',
];

// Go's zero value test (validateFieldAllowList): the defaulted `resources: {}`
// is the zero ResourceRequirements, any other set field is not.
function ephemeralFieldSet(c: Obj, k: string): boolean {
  if (k === 'resources') return Object.values(obj(c.resources)).some(isSet);
  return isSet(c[k]);
}

/** Upstream validateEphemeralContainers: the common container rules, unique names, a target that exists. */
function validateEphemeralContainers(
  ephemerals: Obj[],
  containers: Obj[],
  inits: Obj[],
  volumes: Map<string, string>,
  podClaims: ReadonlySet<string>,
  field: string,
  opts: PodSpecOptions,
): Errs {
  const errs: Errs = [];
  const others = new Set([...containers, ...inits].map((c) => str(c.name)));
  const names = new Set(others);
  ephemerals.forEach((c, i) => {
    const p = idx(field, i);
    errs.push(...validateContainerCommon(c, volumes, podClaims, p, { ...opts, isPod: true }));
    const name = str(c.name);
    if (names.has(name)) errs.push(duplicate(at(p, 'name'), name));
    else names.add(name);
    const target = str(c.targetContainerName);
    if (target && !others.has(target)) errs.push(notFound(at(p, 'targetContainerName'), target));
    for (const k of forbiddenEphemeralContainerFields) {
      if (ephemeralFieldSet(c, k)) errs.push(forbidden(at(p, k), 'cannot be set for an Ephemeral Container'));
    }
    // Sub paths are bind mounts that outlive the container until the pod goes.
    objs(c.volumeMounts).forEach((m, j) => {
      for (const k of ['subPath', 'subPathExpr']) {
        if (str(m[k]))
          errs.push(
            forbidden(at(idx(at(p, 'volumeMounts'), j), k), 'cannot be set for an Ephemeral Container'),
          );
      }
    });
  });
  return errs;
}

/**
 * Upstream ValidatePodEphemeralContainersUpdate, the validation of a write
 * to pods/ephemeralcontainers: the whole spec as for any pod, a static pod
 * takes none, and an ephemeral container, once added, is never removed or
 * changed (order aside: a patch may reorder the list).
 */
export function validatePodEphemeralContainersUpdate(pod: KubeObject, old: KubeObject): Errs {
  if (old.metadata.annotations?.['kubernetes.io/config.mirror'] !== undefined)
    return [forbidden('', 'static pods do not support ephemeral containers')];
  const errs = validatePodSpec(obj(pod.spec), 'spec', { isPod: true });
  const field = 'spec.ephemeralContainers';
  const next = new Map(objs(obj(pod.spec).ephemeralContainers).map((c) => [str(c.name), c]));
  for (const before of objs(obj(old.spec).ephemeralContainers)) {
    const name = str(before.name);
    const after = next.get(name);
    if (!after) {
      errs.push(forbidden(field, `existing ephemeral containers "${name}" may not be removed\n`));
    } else if (!semanticEqual(before, after)) {
      const diff: string[] = [];
      specDiff(before, after, `${field}[${name}]`, diff);
      errs.push(
        forbidden(
          `${field}[${name}]`,
          `existing ephemeral containers "${name}" may not be changed\n${diff.join('\n')}`,
        ),
      );
    }
  }
  return errs;
}

// ---- scheduling ----

export const tolerationOperators = ['Equal', 'Exists'];
export const taintEffects = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];

export function validateTolerations(tolerations: Obj[], field: string): Errs {
  const errs: Errs = [];
  tolerations.forEach((t, i) => {
    const p = idx(field, i);
    const key = str(t.key);
    const op = str(t.operator);
    const effect = str(t.effect);
    const value = str(t.value);
    if (key) errs.push(...labelName(key, at(p, 'key')));
    if (!key && op !== 'Exists')
      errs.push(
        invalid(
          at(p, 'operator'),
          op,
          'operator must be Exists when `key` is empty, which means "match all values and all keys"',
        ),
      );
    if (isSet(t.tolerationSeconds) && effect !== 'NoExecute')
      errs.push(
        invalid(at(p, 'effect'), effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"),
      );
    switch (op) {
      case 'Equal':
      case '': {
        const bad = isValidLabelValue(value);
        if (bad.length) errs.push(invalid(at(p, 'operator'), value, bad.join(';')));
        break;
      }
      case 'Exists':
        if (value)
          errs.push(invalid(at(p, 'operator'), value, "value must be empty when `operator` is 'Exists'"));
        break;
      default:
        errs.push(notSupported(at(p, 'operator'), op, tolerationOperators));
    }
    if (effect && !taintEffects.includes(effect))
      errs.push(notSupported(at(p, 'effect'), effect, taintEffects));
  });
  return errs;
}

function nodeSelectorRequirement(rq: Obj, field: string): Errs {
  const errs: Errs = [];
  const values = strings(rq.values);
  switch (str(rq.operator)) {
    case 'In':
    case 'NotIn':
      if (values.length === 0)
        errs.push(required(at(field, 'values'), "must be specified when `operator` is 'In' or 'NotIn'"));
      break;
    case 'Exists':
    case 'DoesNotExist':
      if (values.length > 0)
        errs.push(
          forbidden(
            at(field, 'values'),
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
          ),
        );
      break;
    case 'Gt':
    case 'Lt':
      if (values.length !== 1)
        errs.push(
          required(at(field, 'values'), "must be specified single value when `operator` is 'Lt' or 'Gt'"),
        );
      break;
    default:
      errs.push(invalid(at(field, 'operator'), str(rq.operator), 'not a valid selector operator'));
  }
  errs.push(...labelName(str(rq.key), at(field, 'key')));
  values.forEach((v, i) => {
    errs.push(...msgs(idx(at(field, 'values'), i), v, isValidLabelValue(v)));
  });
  return errs;
}

function nodeSelectorTerm(term: Obj, field: string, allowInvalidValues = false): Errs {
  const errs: Errs = [];
  objs(term.matchExpressions).forEach((rq, j) => {
    const e = nodeSelectorRequirement(rq, idx(at(field, 'matchExpressions'), j));
    errs.push(...(allowInvalidValues ? e.filter((x) => !/\.values\[\d+\]$/.test(x.field)) : e));
  });
  objs(term.matchFields).forEach((rq, j) => {
    const p = idx(at(field, 'matchFields'), j);
    const op = str(rq.operator);
    if (op === 'In' || op === 'NotIn') {
      if (strings(rq.values).length !== 1)
        errs.push(
          required(
            at(p, 'values'),
            "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
          ),
        );
    } else {
      errs.push(invalid(at(p, 'operator'), op, 'not a valid selector operator'));
    }
    if (str(rq.key) !== 'metadata.name')
      errs.push(invalid(at(p, 'key'), str(rq.key), 'not a valid field selector key'));
    else
      strings(rq.values).forEach((v, k) => {
        errs.push(...dns1123Subdomain(v, idx(at(p, 'values'), k)));
      });
  });
  return errs;
}

/** ValidateNodeSelector (required node affinity, a PersistentVolume's nodeAffinity). */
export function nodeSelector(ns: Obj, field: string): Errs {
  const terms = objs(ns.nodeSelectorTerms);
  const tp = at(field, 'nodeSelectorTerms');
  if (terms.length === 0) return [required(tp, 'must have at least one node selector term')];
  return terms.flatMap((t, i) => nodeSelectorTerm(t, idx(tp, i)));
}

function podAffinityTerm(term: Obj, field: string): Errs {
  const errs = labelSelector(term.labelSelector, at(field, 'labelSelector'));
  errs.push(...labelSelector(term.namespaceSelector, at(field, 'namespaceSelector')));
  for (const ns of strings(term.namespaces)) errs.push(...dns1123Label(ns, at(field, 'namespace')));
  const key = str(term.topologyKey);
  if (!key) errs.push(required(at(field, 'topologyKey'), 'can not be empty'));
  errs.push(...labelName(key, at(field, 'topologyKey')));
  return errs;
}

function weight(v: unknown, field: string): Errs {
  const w = num(v) ?? 0;
  return w <= 0 || w > 100 ? [invalid(field, w, 'must be in the range 1-100')] : [];
}

function validateAffinity(a: Obj, field: string): Errs {
  const errs: Errs = [];
  if (isSet(a.nodeAffinity)) {
    const na = obj(a.nodeAffinity);
    const np = at(field, 'nodeAffinity');
    if (isSet(na.requiredDuringSchedulingIgnoredDuringExecution))
      errs.push(
        ...nodeSelector(
          obj(na.requiredDuringSchedulingIgnoredDuringExecution),
          at(np, 'requiredDuringSchedulingIgnoredDuringExecution'),
        ),
      );
    objs(na.preferredDuringSchedulingIgnoredDuringExecution).forEach((t, i) => {
      const p = idx(at(np, 'preferredDuringSchedulingIgnoredDuringExecution'), i);
      errs.push(...weight(t.weight, at(p, 'weight')));
      // Preferred terms may name label values that are not valid (upstream allows it).
      errs.push(...nodeSelectorTerm(obj(t.preference), at(p, 'preference'), true));
    });
  }
  for (const k of ['podAffinity', 'podAntiAffinity']) {
    if (!isSet(a[k])) continue;
    const pa = obj(a[k]);
    const pp = at(field, k);
    objs(pa.requiredDuringSchedulingIgnoredDuringExecution).forEach((t, i) => {
      errs.push(...podAffinityTerm(t, idx(at(pp, 'requiredDuringSchedulingIgnoredDuringExecution'), i)));
    });
    objs(pa.preferredDuringSchedulingIgnoredDuringExecution).forEach((t, i) => {
      const p = idx(at(pp, 'preferredDuringSchedulingIgnoredDuringExecution'), i);
      errs.push(...weight(t.weight, at(p, 'weight')));
      errs.push(...podAffinityTerm(obj(t.podAffinityTerm), at(p, 'podAffinityTerm')));
    });
  }
  return errs;
}

function topologySpreadConstraints(constraints: Obj[], field: string): Errs {
  const errs: Errs = [];
  const seen = new Set<string>();
  constraints.forEach((c, i) => {
    const p = idx(field, i);
    const maxSkew = num(c.maxSkew) ?? 0;
    if (maxSkew <= 0) errs.push(invalid(at(p, 'maxSkew'), maxSkew, 'must be greater than zero'));
    const key = str(c.topologyKey);
    if (!key) errs.push(required(at(p, 'topologyKey'), 'can not be empty'));
    else errs.push(...labelName(key, at(p, 'topologyKey')));
    const when = str(c.whenUnsatisfiable);
    const whens = ['DoNotSchedule', 'ScheduleAnyway'];
    if (!whens.includes(when)) errs.push(notSupported(at(p, 'whenUnsatisfiable'), when, whens));
    const pair = `{${key}, ${when}}`;
    if (seen.has(pair)) errs.push(duplicate(p, pair));
    seen.add(pair);
    if (isSet(c.minDomains)) {
      const md = num(c.minDomains) ?? 0;
      if (md <= 0) errs.push(invalid(at(p, 'minDomains'), md, 'must be greater than 0'));
      else if (when !== 'DoNotSchedule')
        errs.push(
          invalid(
            at(p, 'minDomains'),
            md,
            'can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ScheduleAnyway',
          ),
        );
    }
    errs.push(...labelSelector(c.labelSelector, at(p, 'labelSelector')));
  });
  return errs;
}

export const dnsPolicies = ['ClusterFirstWithHostNet', 'ClusterFirst', 'Default', 'None'];
export const restartPolicies = ['Always', 'OnFailure', 'Never'];

function dnsConfig(spec: Obj, field: string): Errs {
  const errs: Errs = [];
  const cfg = spec.dnsConfig;
  if (spec.dnsPolicy === 'None') {
    if (!isSet(cfg)) return [required(field, 'must provide `dnsConfig` when `dnsPolicy` is None')];
    if (list(obj(cfg).nameservers).length === 0)
      return [
        required(
          at(field, 'nameservers'),
          'must provide at least one DNS nameserver when `dnsPolicy` is None',
        ),
      ];
  }
  if (!isSet(cfg)) return errs;
  const c = obj(cfg);
  const nameservers = strings(c.nameservers);
  if (nameservers.length > 3)
    errs.push(invalid(at(field, 'nameservers'), nameservers, 'must not have more than 3 nameservers'));
  nameservers.forEach((ns, i) => {
    errs.push(...msgs(idx(at(field, 'nameservers'), i), ns, isValidIP(ns)));
  });
  const searches = strings(c.searches);
  if (searches.length > 32)
    errs.push(invalid(at(field, 'searches'), searches, 'must not have more than 32 search paths'));
  if (searches.join(' ').length > 2048)
    errs.push(
      invalid(
        at(field, 'searches'),
        searches,
        'must not have more than 2048 characters (including spaces) in the search list',
      ),
    );
  searches.forEach((s, i) => {
    // RelaxedDNSSearchValidation is alpha in 1.32: plain subdomains only.
    const trimmed = s.endsWith('.') ? s.slice(0, -1) : s;
    errs.push(...dns1123Subdomain(trimmed, idx(at(field, 'searches'), i)));
  });
  objs(c.options).forEach((o, i) => {
    if (!str(o.name)) errs.push(required(idx(at(field, 'options'), i), 'must not be empty'));
  });
  return errs;
}

/** ValidatePodSpec. */
export function validatePodSpec(spec: Obj, field: string, opts: PodSpecOptions = {}): Errs {
  const errs: Errs = [];
  const tgps = at(field, 'terminationGracePeriodSeconds');
  if (!isSet(spec.terminationGracePeriodSeconds)) errs.push(required(tgps));
  else errs.push(...nonNegative(tgps, spec.terminationGracePeriodSeconds));
  const grace = num(spec.terminationGracePeriodSeconds);

  const [volumes, volumeErrs] = validateVolumes(objs(spec.volumes), at(field, 'volumes'), opts);
  errs.push(...volumeErrs);
  for (const name of opts.extraVolumes ?? [])
    if (!volumes.has(name)) volumes.set(name, 'persistentVolumeClaim');

  const podClaims = new Set<string>();
  objs(spec.resourceClaims).forEach((claim, i) => {
    const p = idx(at(field, 'resourceClaims'), i);
    const name = str(claim.name);
    if (!name) errs.push(required(at(p, 'name')));
    else if (podClaims.has(name)) errs.push(duplicate(at(p, 'name'), name));
    else {
      errs.push(...dns1123Label(name, at(p, 'name')));
      podClaims.add(name);
    }
    const byName = isSet(claim.resourceClaimName);
    const byTemplate = isSet(claim.resourceClaimTemplateName);
    if (byName && byTemplate)
      errs.push(
        invalid(
          p,
          claim,
          'at most one of `resourceClaimName` or `resourceClaimTemplateName` may be specified',
        ),
      );
    if (!byName && !byTemplate)
      errs.push(invalid(p, claim, 'must specify one of: `resourceClaimName`, `resourceClaimTemplateName`'));
  });

  const containers = objs(spec.containers);
  errs.push(...validateContainers(containers, volumes, podClaims, grace, at(field, 'containers'), opts));
  errs.push(
    ...validateInitContainers(
      objs(spec.initContainers),
      containers,
      volumes,
      podClaims,
      grace,
      at(field, 'initContainers'),
      opts,
    ),
  );
  errs.push(
    ...validateEphemeralContainers(
      objs(spec.ephemeralContainers),
      containers,
      objs(spec.initContainers),
      volumes,
      podClaims,
      at(field, 'ephemeralContainers'),
      opts,
    ),
  );

  // With hostNetwork a pod's hostPort must equal its containerPort; a
  // template may leave it 0, to be defaulted when its pods are created.
  if (spec.hostNetwork === true) {
    containers.forEach((c, i) => {
      objs(c.ports).forEach((port, j) => {
        const hp = num(port.hostPort) ?? 0;
        const cp = num(port.containerPort) ?? 0;
        if ((opts.isPod || hp !== 0) && hp !== cp)
          errs.push(
            invalid(
              at(idx(at(idx(at(field, 'containers'), i), 'ports'), j), 'hostPort'),
              hp,
              'must match `containerPort` when `hostNetwork` is true',
            ),
          );
      });
    });
  }

  const rp = str(spec.restartPolicy);
  if (!rp) errs.push(required(at(field, 'restartPolicy')));
  else if (!restartPolicies.includes(rp))
    errs.push(notSupported(at(field, 'restartPolicy'), rp, restartPolicies));
  const dp = str(spec.dnsPolicy);
  if (!dp) errs.push(required(at(field, 'dnsPolicy')));
  else if (!dnsPolicies.includes(dp)) errs.push(notSupported(at(field, 'dnsPolicy'), dp, dnsPolicies));
  errs.push(...labels(spec.nodeSelector, at(field, 'nodeSelector')));
  errs.push(...securityContext(obj(spec.securityContext), at(field, 'securityContext')));
  objs(spec.imagePullSecrets).forEach((s, i) => {
    if (Object.keys(s).some((k) => k !== 'name' && isSet(s[k])))
      errs.push(invalid(idx(at(field, 'imagePullSecrets'), i), s, 'only name may be set'));
  });
  errs.push(...validateAffinity(obj(spec.affinity), at(field, 'affinity')));
  errs.push(...dnsConfig(spec, at(field, 'dnsConfig')));
  objs(spec.readinessGates).forEach((g, i) => {
    errs.push(
      ...msgs(
        at(idx(at(field, 'readinessGates'), i), 'conditionType'),
        str(g.conditionType),
        isQualifiedName(str(g.conditionType)),
      ),
    );
  });
  const gates = new Set<string>();
  objs(spec.schedulingGates).forEach((g, i) => {
    const p = idx(at(field, 'schedulingGates'), i);
    const name = str(g.name);
    errs.push(...msgs(p, name, isQualifiedName(name)));
    if (gates.has(name)) errs.push(duplicate(p, name));
    gates.add(name);
  });
  errs.push(
    ...topologySpreadConstraints(
      objs(spec.topologySpreadConstraints),
      at(field, 'topologySpreadConstraints'),
    ),
  );
  for (const k of ['serviceAccountName', 'nodeName', 'priorityClassName']) {
    const v = str(spec[k]);
    if (v) errs.push(...dns1123Subdomain(v, at(field, k)));
  }
  if (isSet(spec.activeDeadlineSeconds)) {
    const v = num(spec.activeDeadlineSeconds) ?? 0;
    if (v < 1 || v > MaxInt32)
      errs.push(invalid(at(field, 'activeDeadlineSeconds'), v, inclusiveRangeError(1, MaxInt32)));
  }
  for (const k of ['hostname', 'subdomain']) {
    const v = str(spec[k]);
    if (v) errs.push(...dns1123Label(v, at(field, k)));
  }
  errs.push(...validateTolerations(objs(spec.tolerations), at(field, 'tolerations')));
  objs(spec.hostAliases).forEach((ha, i) => {
    const p = idx(at(field, 'hostAliases'), i);
    errs.push(...msgs(at(p, 'ip'), str(ha.ip), isValidIP(str(ha.ip))));
    strings(ha.hostnames).forEach((h, j) => {
      errs.push(...dns1123Subdomain(h, idx(at(p, 'hostnames'), j)));
    });
  });
  if (isSet(spec.runtimeClassName))
    errs.push(...dns1123Subdomain(str(spec.runtimeClassName), at(field, 'runtimeClassName')));
  if (isSet(spec.preemptionPolicy))
    errs.push(...preemptionPolicy(spec.preemptionPolicy, at(field, 'preemptionPolicy')));
  if (isSet(spec.os)) {
    const name = str(obj(spec.os).name);
    if (!name) errs.push(required(at(field, 'os', 'name')));
    else if (name !== 'linux' && name !== 'windows')
      errs.push(notSupported(at(field, 'os', 'name'), name, ['linux', 'windows']));
  }
  return errs;
}

export function preemptionPolicy(v: unknown, field: string): Errs {
  const p = str(v);
  if (!p) return [required(field)];
  const policies = ['PreemptLowerPriority', 'Never'];
  return policies.includes(p) ? [] : [notSupported(field, v, policies)];
}

/** ValidatePodTemplateSpec: template metadata and spec, at `field` (e.g. spec.template). */
export function validatePodTemplateSpec(template: Obj, field: string, opts: PodSpecOptions = {}): Errs {
  const meta = obj(template.metadata);
  // Upstream names template labels and annotations without "metadata".
  const errs = labels(meta.labels, at(field, 'labels'));
  errs.push(...validateAnnotations(stringMap(meta.annotations), at(field, 'annotations')));
  const spec = obj(template.spec);
  errs.push(...validatePodSpec(spec, at(field, 'spec'), opts));
  if (list(spec.ephemeralContainers).length > 0)
    errs.push(
      forbidden(at(field, 'spec', 'ephemeralContainers'), 'ephemeral containers not allowed in pod template'),
    );
  return errs;
}

/** What ValidatePodCreate adds to the spec rules for a Pod's own spec. */
export function validatePodCreate(pod: KubeObject): Errs {
  const spec = obj(pod.spec);
  const errs = validatePodSpec(spec, 'spec', { isPod: true });
  if (list(spec.ephemeralContainers).length > 0)
    errs.push(forbidden('spec.ephemeralContainers', 'cannot be set on create'));
  if (str(spec.nodeName) && list(spec.schedulingGates).length > 0)
    errs.push(forbidden('spec.nodeName', 'cannot be set until all schedulingGates have been cleared'));
  return errs;
}

// ---- pod updates ----

const updatablePodSpecFields = [
  '`spec.containers[*].image`',
  '`spec.initContainers[*].image`',
  '`spec.activeDeadlineSeconds`',
  '`spec.tolerations` (only additions to existing tolerations)',
  '`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
];

// Upstream appends a Go cmp.Diff of the two specs; Skiff lists the changed
// fields instead, which says the same in JSON terms.
function specDiff(before: unknown, after: unknown, field: string, out: string[]): void {
  if (out.length >= 20 || semanticEqual(before, after)) return;
  if (isObj(before) && isObj(after)) {
    for (const k of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort())
      specDiff(before[k], after[k], at(field, k), out);
    return;
  }
  if (Array.isArray(before) && Array.isArray(after) && before.length === after.length) {
    before.forEach((b, i) => {
      specDiff(b, after[i], idx(field, i), out);
    });
    return;
  }
  if (before !== undefined) out.push(`- ${field}: ${formatBadValue(before)}`);
  if (after !== undefined) out.push(`+ ${field}: ${formatBadValue(after)}`);
}

/** ValidatePodUpdate's rules on what may change (the new spec is validated separately). */
export function validatePodUpdate(pod: KubeObject, old: KubeObject): Errs {
  const spec = obj(pod.spec);
  const oldSpec = obj(old.spec);
  const errs: Errs = [];
  for (const k of ['containers', 'initContainers']) {
    if (list(spec[k]).length !== list(oldSpec[k]).length) {
      errs.push(forbidden(at('spec', k), 'pod updates may not add or remove containers'));
      return errs;
    }
  }
  const ads = 'spec.activeDeadlineSeconds';
  if (isSet(spec.activeDeadlineSeconds)) {
    const v = num(spec.activeDeadlineSeconds) ?? 0;
    if (v < 0 || v > MaxInt32) return [...errs, invalid(ads, v, inclusiveRangeError(0, MaxInt32))];
    const before = num(oldSpec.activeDeadlineSeconds);
    if (before !== undefined && before < v)
      return [...errs, invalid(ads, v, 'must be less than or equal to previous value')];
  } else if (isSet(oldSpec.activeDeadlineSeconds)) {
    errs.push(invalid(ads, null, 'must not update from a positive integer to nil value'));
  }
  // Tolerations may only be added (and tolerationSeconds changed).
  const tolerations = objs(spec.tolerations);
  for (const t of objs(oldSpec.tolerations)) {
    if (!tolerations.some((n) => semanticEqual({ ...t, tolerationSeconds: n.tolerationSeconds }, n))) {
      errs.push(
        forbidden('spec.tolerations', 'existing toleration can not be modified except its tolerationSeconds'),
      );
      break;
    }
  }
  // Scheduling gates may only be removed.
  const oldGates = new Set(objs(oldSpec.schedulingGates).map((g) => str(g.name)));
  objs(spec.schedulingGates).forEach((g, i) => {
    const name = str(g.name);
    if (!oldGates.has(name))
      errs.push(
        forbidden(
          at(idx('spec.schedulingGates', i), 'name'),
          `only deletion is allowed, but found new scheduling gate '${name}'`,
        ),
      );
  });
  if (semanticEqual(spec, oldSpec)) return errs;

  const munged: Obj = deepCopy(spec);
  for (const k of ['containers', 'initContainers']) {
    const before = list(oldSpec[k]);
    list(munged[k]).forEach((c, i) => {
      if (isObj(c)) c.image = obj(before[i]).image;
    });
  }
  munged.activeDeadlineSeconds = oldSpec.activeDeadlineSeconds;
  munged.schedulingGates = oldSpec.schedulingGates;
  munged.tolerations = oldSpec.tolerations;
  const oldGrace = num(oldSpec.terminationGracePeriodSeconds);
  if (oldGrace !== undefined && oldGrace < 0 && munged.terminationGracePeriodSeconds === 1)
    munged.terminationGracePeriodSeconds = oldGrace;
  // Skiff binds pods (pods/binding) with an ordinary update, so setting the
  // node of an unscheduled pod is allowed here; upstream's binding storage
  // bypasses this rule instead.
  if (!str(oldSpec.nodeName)) {
    munged.nodeName = oldSpec.nodeName;
    if (str(spec.nodeName) && list(spec.schedulingGates).length > 0)
      errs.push(forbidden('spec.nodeName', 'cannot be set until all schedulingGates have been cleared'));
  }
  if (!semanticEqual(munged, oldSpec)) {
    const diff: string[] = [];
    specDiff(oldSpec, munged, 'spec', diff);
    errs.push(
      forbidden(
        'spec',
        `pod updates may not change fields other than ${updatablePodSpecFields.join(',')}\n${diff.join('\n')}`,
      ),
    );
  }
  return errs;
}
