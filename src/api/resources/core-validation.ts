// Validation of the core/v1 kinds other than pods and volumes: Services,
// ConfigMaps, Secrets, Namespaces, ReplicationControllers and PodTemplates,
// after upstream's pkg/apis/core/validation.

import type { KubeObject } from '../meta.ts';
import {
  duplicate,
  forbidden,
  invalid,
  isCIDR,
  isDNS1123Subdomain,
  isQualifiedName,
  isValidIP,
  keyPath,
  notSupported,
  required,
  tooLong,
} from '../validation.ts';
import {
  at,
  dns1123Label,
  type Errs,
  idx,
  isConfigMapKey,
  isSet,
  labels,
  list,
  msgs,
  nonNegative,
  num,
  type Obj,
  obj,
  objs,
  qualifiedName,
  semanticEqual,
  str,
  strings,
} from './checks.ts';
import { goJSONMapError } from './go-json.ts';
import { portNumOrName, protocol, validatePodTemplateSpec } from './pod-validation.ts';

// ---- Service ----

export const serviceTypes = ['ClusterIP', 'ExternalName', 'LoadBalancer', 'NodePort'];
const trafficPolicies = ['Cluster', 'Local'];

const isHeadless = (spec: Obj) => {
  const ips = strings(spec.clusterIPs);
  return ips.length > 0 ? ips.length === 1 && ips[0] === 'None' : spec.clusterIP === 'None';
};

function externallyAccessible(spec: Obj): boolean {
  const type = str(spec.type);
  return (
    type === 'LoadBalancer' ||
    type === 'NodePort' ||
    (type === 'ClusterIP' && list(spec.externalIPs).length > 0)
  );
}

// ValidateNonSpecialIP, for the IPv4 and the common IPv6 cases.
function nonSpecialIP(ip: string, field: string): Errs {
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  const a = v4 ? Number(v4[1]) : -1;
  const b = v4 ? Number(v4[2]) : -1;
  const c = v4 ? Number(v4[3]) : -1;
  const lower = ip.toLowerCase();
  const errs: Errs = [];
  if ((v4 && a === 0 && b === 0 && c === 0 && Number(v4[4]) === 0) || /^[0:]+$/.test(lower))
    errs.push(invalid(field, ip, `may not be unspecified (${ip})`));
  if (a === 127 || lower === '::1')
    errs.push(invalid(field, ip, 'may not be in the loopback range (127.0.0.0/8, ::1/128)'));
  if ((a === 169 && b === 254) || /^fe[89ab][0-9a-f]?:/.test(lower))
    errs.push(invalid(field, ip, 'may not be in the link-local range (169.254.0.0/16, fe80::/10)'));
  if ((a === 224 && b === 0 && c === 0) || lower.startsWith('ff02:'))
    errs.push(invalid(field, ip, 'may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)'));
  return errs;
}

// Upstream reports a duplicate (protocol, port) with Go's %#v of the
// internal ServicePort it keys on.
const servicePortKey = (proto: string, port: number) =>
  `core.ServicePort{Name:"", Protocol:${JSON.stringify(proto)}, AppProtocol:(*string)(nil), Port:${port}, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}`;

/** ValidateService (and ValidateServiceUpdate's extra rules when old is set). */
export function validateService(svc: KubeObject, old?: KubeObject): Errs {
  const spec = obj(svc.spec);
  const errs: Errs = [];
  const type = str(spec.type);
  const headless = isHeadless(spec);
  const ports = objs(spec.ports);
  if (ports.length === 0 && !headless && type !== 'ExternalName') errs.push(required('spec.ports'));
  if ((type === 'LoadBalancer' || type === 'NodePort') && headless)
    errs.push(invalid('spec.clusterIPs[0]', 'None', `may not be set to 'None' for ${type} services`));
  if (type === 'ExternalName') {
    if (list(spec.clusterIPs).length > 0 || str(spec.clusterIP))
      errs.push(forbidden('spec.clusterIPs', 'may not be set for ExternalName services'));
    if (list(spec.ipFamilies).length > 0)
      errs.push(forbidden('spec.ipFamilies', 'may not be set for ExternalName services'));
    if (isSet(spec.ipFamilyPolicy))
      errs.push(forbidden('spec.ipFamilyPolicy', 'may not be set for ExternalName services'));
    // A CNAME may end in a dot to mark it fully qualified.
    const cname = str(spec.externalName).replace(/\.$/, '');
    if (cname) errs.push(...msgs('spec.externalName', cname, isDNS1123Subdomain(cname)));
    else errs.push(required('spec.externalName'));
  }

  const names = new Set<string>();
  ports.forEach((p, i) => {
    const pp = idx('spec.ports', i);
    const name = str(p.name);
    if (ports.length > 1 && !name) errs.push(required(at(pp, 'name')));
    else if (name) {
      errs.push(...dns1123Label(name, at(pp, 'name')));
      if (names.has(name)) errs.push(duplicate(at(pp, 'name'), name));
      else names.add(name);
    }
    errs.push(...portNumOrName(num(p.port) ?? 0, at(pp, 'port')));
    errs.push(...protocol(p.protocol, at(pp, 'protocol')));
    errs.push(...portNumOrName(p.targetPort, at(pp, 'targetPort')));
    if (isSet(p.appProtocol)) errs.push(...qualifiedName(str(p.appProtocol), at(pp, 'appProtocol')));
  });

  if (isSet(spec.selector)) errs.push(...labels(spec.selector, 'spec.selector'));

  const affinity = str(spec.sessionAffinity);
  if (!affinity) errs.push(required('spec.sessionAffinity'));
  else if (affinity !== 'ClientIP' && affinity !== 'None')
    errs.push(notSupported('spec.sessionAffinity', affinity, ['ClientIP', 'None']));
  const cfgPath = 'spec.sessionAffinityConfig';
  if (affinity === 'ClientIP') {
    const when = 'when session affinity type is ClientIP';
    const cfg = obj(spec.sessionAffinityConfig);
    if (!isSet(spec.sessionAffinityConfig)) errs.push(required(cfgPath, when));
    else if (!isSet(cfg.clientIP)) errs.push(required(at(cfgPath, 'clientIP'), when));
    else {
      const timeout = obj(cfg.clientIP).timeoutSeconds;
      const tp = at(cfgPath, 'clientIP', 'timeoutSeconds');
      if (!isSet(timeout)) errs.push(required(tp, when));
      else if ((num(timeout) ?? 0) <= 0 || (num(timeout) ?? 0) > 86400)
        errs.push(invalid(tp, num(timeout) ?? 0, 'must be greater than 0 and less than 86400'));
    }
  } else if (affinity === 'None' && isSet(spec.sessionAffinityConfig)) {
    errs.push(forbidden(cfgPath, 'must not be set when session affinity is None'));
  }

  strings(spec.externalIPs).forEach((ip, i) => {
    const p = idx('spec.externalIPs', i);
    const bad = isValidIP(ip);
    errs.push(...(bad.length ? msgs(p, ip, bad) : nonSpecialIP(ip, p)));
  });

  if (!type) errs.push(required('spec.type'));
  else if (!serviceTypes.includes(type)) errs.push(notSupported('spec.type', type, serviceTypes));

  if (type === 'ClusterIP') {
    ports.forEach((p, i) => {
      if (num(p.nodePort))
        errs.push(
          forbidden(at(idx('spec.ports', i), 'nodePort'), "may not be used when `type` is 'ClusterIP'"),
        );
    });
  }
  const nodePorts = new Set<string>();
  const keys = new Set<string>();
  ports.forEach((p, i) => {
    const proto = str(p.protocol);
    const nodePort = num(p.nodePort) ?? 0;
    if (nodePort !== 0) {
      const key = `${proto}/${nodePort}`;
      if (nodePorts.has(key)) errs.push(duplicate(at(idx('spec.ports', i), 'nodePort'), nodePort));
      nodePorts.add(key);
    }
    const port = num(p.port) ?? 0;
    const key = `${proto}/${port}`;
    if (keys.has(key))
      errs.push({
        type: 'FieldValueDuplicate',
        field: idx('spec.ports', i),
        message: `Duplicate value: ${servicePortKey(proto, port)}`,
      });
    keys.add(key);
  });

  const ranges = strings(spec.loadBalancerSourceRanges);
  if (ranges.length > 0) {
    // Upstream spells this path with a capital L.
    const p = 'spec.LoadBalancerSourceRanges';
    if (type !== 'LoadBalancer') errs.push(forbidden(p, "may only be used when `type` is 'LoadBalancer'"));
    ranges.forEach((r, i) => {
      // Space padding is tolerated for historical reasons.
      errs.push(...msgs(idx(p, i), r.trim(), isCIDR(r.trim())));
    });
  }
  if (isSet(spec.allocateLoadBalancerNodePorts) && type !== 'LoadBalancer')
    errs.push(
      forbidden('spec.allocateLoadBalancerNodePorts', "may only be used when `type` is 'LoadBalancer'"),
    );
  // Upstream names this one without "spec.".
  if (type === 'LoadBalancer' && !isSet(spec.allocateLoadBalancerNodePorts))
    errs.push(required('allocateLoadBalancerNodePorts'));
  if (isSet(spec.loadBalancerClass) && type !== 'LoadBalancer')
    errs.push(forbidden('spec.loadBalancerClass', "may only be used when `type` is 'LoadBalancer'"));

  const etp = str(spec.externalTrafficPolicy);
  if (!externallyAccessible(spec)) {
    if (etp)
      errs.push(
        invalid('spec.externalTrafficPolicy', etp, 'may only be set for externally-accessible services'),
      );
  } else if (!etp) {
    errs.push(required('spec.externalTrafficPolicy'));
  } else if (!trafficPolicies.includes(etp)) {
    errs.push(notSupported('spec.externalTrafficPolicy', etp, trafficPolicies));
  }
  const hcnp = num(spec.healthCheckNodePort) ?? 0;
  const needsHealthCheck = type === 'LoadBalancer' && etp === 'Local';
  if (!needsHealthCheck && hcnp !== 0)
    errs.push(
      invalid(
        'spec.healthCheckNodePort',
        hcnp,
        "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
      ),
    );
  if (needsHealthCheck && hcnp !== 0) errs.push(...portNumOrName(hcnp, 'spec.healthCheckNodePort'));

  const itp = spec.internalTrafficPolicy;
  if (!isSet(itp)) {
    // Not required of ExternalName Services, for historical reasons.
    if (type === 'ClusterIP' || type === 'NodePort' || type === 'LoadBalancer')
      errs.push(required('spec.internalTrafficPolicy'));
  } else if (!trafficPolicies.includes(str(itp))) {
    errs.push(notSupported('spec.internalTrafficPolicy', itp, trafficPolicies));
  }
  if (isSet(spec.trafficDistribution) && spec.trafficDistribution !== 'PreferClose')
    errs.push(notSupported('spec.trafficDistribution', spec.trafficDistribution, ['PreferClose']));

  if (old) {
    const before = obj(old.spec);
    const needed = (s: Obj) => s.type === 'LoadBalancer' && s.externalTrafficPolicy === 'Local';
    if (needed(before) && needed(spec) && (num(before.healthCheckNodePort) ?? 0) !== hcnp)
      errs.push(forbidden('spec.healthCheckNodePort', 'field is immutable'));
    if (
      before.type === 'LoadBalancer' &&
      type === 'LoadBalancer' &&
      isSet(before.loadBalancerClass) &&
      !semanticEqual(before.loadBalancerClass, spec.loadBalancerClass)
    )
      errs.push(invalid('spec.loadBalancerClass', spec.loadBalancerClass ?? null, 'may not change once set'));
  }
  return errs;
}

const needsClusterIP = (s: Obj) => s.type !== 'ExternalName';
const needsNodePort = (s: Obj) => s.type === 'NodePort' || s.type === 'LoadBalancer';
const needsHealthCheckNodePort = (s: Obj) => s.type === 'LoadBalancer' && s.externalTrafficPolicy === 'Local';

/**
 * Upstream's dropTypeDependentFields: when an update changes the type, fields
 * the old type had (and that were likely filled in for it) are cleared if
 * the client left them as they were, so that the new type validates.
 */
export function dropTypeDependentFields(svc: KubeObject, old: KubeObject): void {
  const spec = obj(svc.spec);
  const before = obj(old.spec);
  if (needsClusterIP(before) && !needsClusterIP(spec)) {
    if (semanticEqual(spec.clusterIPs, before.clusterIPs) && spec.clusterIP === before.clusterIP) {
      delete spec.clusterIP;
      delete spec.clusterIPs;
    }
    if (semanticEqual(spec.ipFamilies, before.ipFamilies)) delete spec.ipFamilies;
    if (spec.ipFamilyPolicy === before.ipFamilyPolicy) delete spec.ipFamilyPolicy;
  }
  if (needsNodePort(before) && !needsNodePort(spec)) {
    const same = semanticEqual(
      objs(spec.ports).map((p) => p.nodePort),
      objs(before.ports).map((p) => p.nodePort),
    );
    if (same) for (const p of objs(spec.ports)) delete p.nodePort;
  }
  if (needsHealthCheckNodePort(before) && !needsHealthCheckNodePort(spec)) {
    if (spec.healthCheckNodePort === before.healthCheckNodePort) delete spec.healthCheckNodePort;
  }
  if (before.type === 'LoadBalancer' && spec.type !== 'LoadBalancer') {
    if (semanticEqual(spec.allocateLoadBalancerNodePorts, before.allocateLoadBalancerNodePorts))
      delete spec.allocateLoadBalancerNodePorts;
    if (semanticEqual(spec.loadBalancerClass, before.loadBalancerClass)) delete spec.loadBalancerClass;
  }
  if (externallyAccessible(before) && !externallyAccessible(spec)) {
    if (spec.externalTrafficPolicy === before.externalTrafficPolicy) delete spec.externalTrafficPolicy;
  }
}

// ---- ConfigMap and Secret ----

/** core.MaxSecretSize, the limit for ConfigMaps too. */
export const MaxSecretSize = 1024 * 1024;

const decoded = (v: unknown): Buffer => Buffer.from(str(v), 'base64');

export function validateConfigMap(cm: KubeObject): Errs {
  const errs: Errs = [];
  const data = obj(cm.data);
  const binaryData = obj(cm.binaryData);
  let size = 0;
  // Upstream walks Go maps; sorted keys keep the order stable.
  for (const key of Object.keys(data).sort()) {
    const p = keyPath('data', key);
    errs.push(...msgs(p, key, isConfigMapKey(key)));
    if (Object.hasOwn(binaryData, key)) errs.push(invalid(p, key, 'duplicate of key present in binaryData'));
    size += Buffer.byteLength(str(data[key]));
  }
  for (const key of Object.keys(binaryData).sort()) {
    errs.push(...msgs(keyPath('binaryData', key), key, isConfigMapKey(key)));
    size += decoded(binaryData[key]).length;
  }
  // The whole object is at fault, so upstream gives no field.
  if (size > MaxSecretSize) errs.push(tooLong('', '', MaxSecretSize));
  return errs;
}

export function validateSecret(s: KubeObject): Errs {
  const errs: Errs = [];
  const data = obj(s.data);
  let size = 0;
  for (const key of Object.keys(data).sort()) {
    errs.push(...msgs(keyPath('data', key), key, isConfigMapKey(key)));
    size += decoded(data[key]).length;
  }
  if (size > MaxSecretSize) errs.push(tooLong('data', '', MaxSecretSize));
  const has = (k: string) => Object.hasOwn(data, k);
  const dockerKey = (key: string) => {
    if (!has(key)) return errs.push(required(keyPath('data', key)));
    const err = goJSONMapError(decoded(data[key]).toString('utf8'));
    if (err) errs.push(invalid(keyPath('data', key), '<secret contents redacted>', err));
  };
  switch (str(s.type)) {
    case 'kubernetes.io/service-account-token':
      // The token controller fills in the rest; the account must be named.
      if (!s.metadata.annotations?.['kubernetes.io/service-account.name'])
        errs.push(required('metadata.annotations[kubernetes.io/service-account.name]'));
      break;
    case 'kubernetes.io/dockercfg':
      dockerKey('.dockercfg');
      break;
    case 'kubernetes.io/dockerconfigjson':
      dockerKey('.dockerconfigjson');
      break;
    case 'kubernetes.io/basic-auth':
      // Either may be empty, but one of them must be there.
      if (!has('username') && !has('password'))
        errs.push(required('data[username]'), required('data[password]'));
      break;
    case 'kubernetes.io/ssh-auth':
      if (decoded(data['ssh-privatekey']).length === 0) errs.push(required('data[ssh-privatekey]'));
      break;
    case 'kubernetes.io/tls':
      if (!has('tls.crt')) errs.push(required('data[tls.crt]'));
      if (!has('tls.key')) errs.push(required('data[tls.key]'));
      break;
  }
  return errs;
}

// ---- Namespace ----

/** validateFinalizerName for a Namespace's spec.finalizers (upstream names the list, not the item). */
export function validateNamespaceFinalizers(ns: KubeObject): Errs {
  const errs: Errs = [];
  for (const f of strings(obj(ns.spec).finalizers)) {
    errs.push(...msgs('spec.finalizers', f, isQualifiedName(f)));
    if (!f.includes('/') && f !== 'kubernetes')
      errs.push(
        invalid('spec.finalizers', f, 'name is neither a standard finalizer name nor is it fully qualified'),
      );
  }
  return errs;
}

// ---- ReplicationController and PodTemplate ----

export function validateReplicationController(rc: KubeObject): Errs {
  const spec = obj(rc.spec);
  const errs: Errs = [
    ...nonNegative('spec.minReadySeconds', spec.minReadySeconds),
    ...(Object.keys(obj(spec.selector)).length === 0 ? [required('spec.selector')] : []),
    ...nonNegative('spec.replicas', spec.replicas),
  ];
  if (!isSet(spec.template)) return [...errs, required('spec.template')];
  const template = obj(spec.template);
  const selector = obj(spec.selector);
  const templateLabels = obj(obj(template.metadata).labels);
  if (Object.keys(selector).length > 0 && Object.entries(selector).some(([k, v]) => templateLabels[k] !== v))
    errs.push(
      invalid('spec.template.metadata.labels', templateLabels, '`selector` does not match template `labels`'),
    );
  errs.push(...validatePodTemplateSpec(template, 'spec.template'));
  const tspec = obj(template.spec);
  if (tspec.restartPolicy !== 'Always')
    errs.push(notSupported('spec.template.spec.restartPolicy', str(tspec.restartPolicy), ['Always']));
  if (isSet(tspec.activeDeadlineSeconds))
    errs.push(
      forbidden(
        'spec.template.spec.activeDeadlineSeconds',
        'activeDeadlineSeconds in ReplicationController is not Supported',
      ),
    );
  return errs;
}

export function validatePodTemplateObject(pt: KubeObject): Errs {
  return validatePodTemplateSpec(obj(pt.template), 'template');
}
