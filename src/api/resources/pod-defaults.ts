// PodSpec defaulting, shared by pods and every kind with a pod template
// (upstream pkg/apis/core/v1/defaults.go: SetDefaults_PodSpec, _Container).

import { arr } from './printers.ts';

type Obj = Record<string, unknown>;

const asObj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});

/** Always for `:latest` or untagged images, IfNotPresent otherwise (upstream's rule). */
export function defaultPullPolicy(image: unknown): string {
  if (typeof image !== 'string') return 'IfNotPresent';
  if (image.includes('@')) return 'IfNotPresent';
  const lastSegment = image.slice(image.lastIndexOf('/') + 1);
  const colon = lastSegment.lastIndexOf(':');
  const tag = colon === -1 ? '' : lastSegment.slice(colon + 1);
  return tag === '' || tag === 'latest' ? 'Always' : 'IfNotPresent';
}

function containerDefaults(c: Obj): void {
  c.imagePullPolicy ??= defaultPullPolicy(c.image);
  c.terminationMessagePath ??= '/dev/termination-log';
  c.terminationMessagePolicy ??= 'File';
  c.resources ??= {};
  for (const p of arr(c.ports)) p.protocol ??= 'TCP';
  for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
    const pr = c[probe];
    if (!pr || typeof pr !== 'object') continue;
    const p = pr as Obj;
    p.timeoutSeconds ??= 1;
    p.periodSeconds ??= 10;
    p.successThreshold ??= 1;
    p.failureThreshold ??= 3;
    const http = p.httpGet as Obj | undefined;
    if (http) {
      http.path ??= '/';
      http.scheme ??= 'HTTP';
    }
  }
  // Limits without requests: requests default to the limits.
  const res = asObj(c.resources);
  const limits = asObj(res.limits);
  if (Object.keys(limits).length > 0) {
    const requests = asObj(res.requests);
    for (const [k, v] of Object.entries(limits)) requests[k] ??= v;
    res.requests = requests;
  }
}

export function applyPodSpecDefaults(spec: Obj): Obj {
  spec.restartPolicy ??= 'Always';
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.securityContext ??= {};
  spec.enableServiceLinks ??= true;
  for (const c of arr(spec.containers)) containerDefaults(c);
  for (const c of arr(spec.initContainers)) containerDefaults(c);
  for (const v of arr(spec.volumes)) {
    for (const source of ['configMap', 'secret', 'downwardAPI', 'projected']) {
      const s = v[source];
      if (s && typeof s === 'object') (s as Obj).defaultMode ??= 420;
    }
    if (v.emptyDir === undefined && Object.keys(v).length === 1) v.emptyDir = {};
  }
  return spec;
}

/** Defaults a PodTemplateSpec ({metadata, spec}) in place. */
export function podTemplateDefaults(template: Obj): void {
  template.metadata ??= {};
  template.spec = applyPodSpecDefaults(asObj(template.spec));
}
