// PodSpec defaulting, shared by pods and every kind with a pod template
// (upstream pkg/apis/core/v1/defaults.go: SetDefaults_PodSpec, _Container,
// _Probe and friends). A few defaults apply to Pods only, as upstream's
// SetDefaults_Pod: requests copied from limits, enableServiceLinks, and
// hostPorts under hostNetwork.

import { asObj, type Obj } from './printers.ts';

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
/** The objects in a list (defaulting must not trip over anything else a client sent). */
const arr = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);

// Go defaulting treats an empty string like an unset field.
function dflt(o: Obj, key: string, value: unknown): void {
  if (o[key] === undefined || o[key] === null || o[key] === '') o[key] = value;
}

// A zero number is Go's "unset" for the probe's non-pointer ints.
function dfltNum(o: Obj, key: string, value: number): void {
  if (o[key] === undefined || o[key] === null || o[key] === 0) o[key] = value;
}

/** Always for `:latest` or untagged images, IfNotPresent otherwise (upstream's rule). */
export function defaultPullPolicy(image: unknown): string {
  if (typeof image !== 'string') return 'IfNotPresent';
  if (image.includes('@')) return 'IfNotPresent';
  const lastSegment = image.slice(image.lastIndexOf('/') + 1);
  const colon = lastSegment.lastIndexOf(':');
  const tag = colon === -1 ? '' : lastSegment.slice(colon + 1);
  return tag === '' || tag === 'latest' ? 'Always' : 'IfNotPresent';
}

function httpGetDefaults(handler: Obj): void {
  if (!isObj(handler.httpGet)) return;
  dflt(handler.httpGet, 'path', '/');
  dflt(handler.httpGet, 'scheme', 'HTTP');
}

function fieldRefDefaults(holder: Obj): void {
  if (isObj(holder.fieldRef)) dflt(holder.fieldRef, 'apiVersion', 'v1');
}

function containerDefaults(c: Obj): void {
  dflt(c, 'imagePullPolicy', defaultPullPolicy(c.image));
  dflt(c, 'terminationMessagePath', '/dev/termination-log');
  dflt(c, 'terminationMessagePolicy', 'File');
  c.resources ??= {};
  for (const p of arr(c.ports)) dflt(p, 'protocol', 'TCP');
  for (const e of arr(c.env)) if (isObj(e.valueFrom)) fieldRefDefaults(e.valueFrom);
  for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
    const p = c[probe];
    if (!isObj(p)) continue;
    dfltNum(p, 'timeoutSeconds', 1);
    dfltNum(p, 'periodSeconds', 10);
    dfltNum(p, 'successThreshold', 1);
    dfltNum(p, 'failureThreshold', 3);
    httpGetDefaults(p);
  }
  if (isObj(c.lifecycle)) {
    for (const h of ['postStart', 'preStop']) if (isObj(c.lifecycle[h])) httpGetDefaults(c.lifecycle[h]);
  }
}

function volumeDefaults(v: Obj): void {
  for (const source of ['configMap', 'secret', 'downwardAPI', 'projected']) {
    const s = v[source];
    if (isObj(s)) dflt(s, 'defaultMode', 420);
  }
  if (isObj(v.hostPath)) v.hostPath.type ??= '';
  if (isObj(v.downwardAPI)) for (const item of arr(v.downwardAPI.items)) fieldRefDefaults(item);
  if (isObj(v.projected)) {
    for (const source of arr(v.projected.sources)) {
      if (isObj(source.downwardAPI)) for (const item of arr(source.downwardAPI.items)) fieldRefDefaults(item);
      if (isObj(source.serviceAccountToken)) source.serviceAccountToken.expirationSeconds ??= 3600;
    }
  }
  // A volume that names no source is an emptyDir.
  if (v.emptyDir === undefined && Object.keys(v).length === 1) v.emptyDir = {};
}

export function applyPodSpecDefaults(spec: Obj): Obj {
  dflt(spec, 'restartPolicy', 'Always');
  dflt(spec, 'dnsPolicy', 'ClusterFirst');
  dflt(spec, 'schedulerName', 'default-scheduler');
  spec.terminationGracePeriodSeconds ??= 30;
  spec.securityContext ??= {};
  for (const c of arr(spec.containers)) containerDefaults(c);
  for (const c of arr(spec.initContainers)) containerDefaults(c);
  // SetDefaults_EphemeralContainer: an ephemeral container is defaulted as a container.
  for (const c of arr(spec.ephemeralContainers)) containerDefaults(c);
  for (const v of arr(spec.volumes)) volumeDefaults(v);
  return spec;
}

/** SetDefaults_Pod: what a Pod gets beyond its PodSpec's defaults. */
export function applyPodDefaults(spec: Obj): Obj {
  applyPodSpecDefaults(spec);
  spec.enableServiceLinks ??= true;
  for (const list of [spec.containers, spec.initContainers]) {
    for (const c of arr(list)) {
      // Limits without requests: requests default to the limits.
      const res = asObj(c.resources);
      const limits = asObj(res.limits);
      if (Object.keys(limits).length > 0) {
        const requests = asObj(res.requests);
        for (const [k, v] of Object.entries(limits)) requests[k] ??= v;
        res.requests = requests;
        c.resources = res;
      }
      // With the host's network, a container port is also the host port.
      if (spec.hostNetwork === true) {
        for (const p of arr(c.ports))
          if (!p.hostPort && typeof p.containerPort === 'number') p.hostPort = p.containerPort;
      }
    }
  }
  return spec;
}

/** Defaults a PodTemplateSpec ({metadata, spec}) in place. */
export function podTemplateDefaults(template: Obj): void {
  template.metadata ??= {};
  template.spec = applyPodSpecDefaults(asObj(template.spec));
}
