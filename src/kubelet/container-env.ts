// A container's environment, as upstream's makeEnvironmentVariables
// (pkg/kubelet/kubelet_pods.go): envFrom sources first, then env in order
// (later entries win), each value expanded with $(VAR) references to the
// ones before it and to the service variables; then the service variables
// (docker-link style, for every service of the namespace when
// enableServiceLinks, and the master `kubernetes` service always) for the
// names not already set.

import { milliValue, parseQuantity, value as quantityValue } from '../api/quantity.ts';
import type {
  ConfigMap,
  Container as ContainerSpec,
  EnvVar,
  Pod,
  Secret,
  Service,
} from '../api/types/core-v1.ts';
import type { KeyValue } from './runtime/runtime.ts';

/** A container cannot be configured (a missing configMap or secret): CreateContainerConfigError. */
export class ContainerConfigError extends Error {
  override name = 'ContainerConfigError';
}

export interface EnvSources {
  getConfigMap(namespace: string, name: string): Promise<ConfigMap | undefined>;
  getSecret(namespace: string, name: string): Promise<Secret | undefined>;
  /** Every service the kubelet knows (filtered here by namespace). */
  services(): Service[];
  podIPs: string[];
  hostIPs: string[];
  /** For resourceFieldRef limits a container leaves unset (upstream uses node allocatable). */
  nodeAllocatable: Record<string, string>;
  /** Events about skipped envFrom keys. */
  warn?(reason: string, message: string): void;
}

const envVarName = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

export async function makeEnvironmentVariables(
  pod: Pod,
  container: ContainerSpec,
  src: EnvSources,
): Promise<KeyValue[]> {
  const namespace = pod.metadata.namespace ?? 'default';
  const serviceEnv = serviceEnvironment(src.services(), namespace, pod.spec?.enableServiceLinks ?? true);
  const env = new Map<string, string>();
  const lookup = (name: string) => env.get(name) ?? serviceEnv.get(name);

  for (const from of container.envFrom ?? []) {
    const prefix = from.prefix ?? '';
    let data: Record<string, string> = {};
    if (from.configMapRef) {
      const name = from.configMapRef.name ?? '';
      const cm = await src.getConfigMap(namespace, name);
      if (!cm) {
        if (from.configMapRef.optional) continue;
        throw new ContainerConfigError(`configmap "${name}" not found`);
      }
      data = cm.data ?? {};
    } else if (from.secretRef) {
      const name = from.secretRef.name ?? '';
      const secret = await src.getSecret(namespace, name);
      if (!secret) {
        if (from.secretRef.optional) continue;
        throw new ContainerConfigError(`secret "${name}" not found`);
      }
      data = decodeSecret(secret);
    }
    const invalid: string[] = [];
    for (const [k, v] of Object.entries(data)) {
      const key = prefix + k;
      if (!envVarName.test(key)) {
        invalid.push(key);
        continue;
      }
      env.set(key, v);
    }
    if (invalid.length) {
      src.warn?.(
        'InvalidEnvironmentVariableNames',
        `Keys [${invalid.sort().join(', ')}] from the EnvFrom ${from.configMapRef ? 'configMap' : 'secret'} ${namespace}/${from.configMapRef?.name ?? from.secretRef?.name} were skipped since they are considered invalid environment variable names.`,
      );
    }
  }

  for (const v of container.env ?? []) {
    const value = await envValue(pod, container, v, src, lookup);
    // An optional configMap or secret reference that finds nothing leaves the
    // variable out altogether, as upstream's makeEnvironmentVariables
    // (`if optional { continue }`), rather than setting it empty.
    if (value !== undefined) env.set(v.name ?? '', value);
  }

  const out: KeyValue[] = [...env].map(([key, value]) => ({ key, value }));
  for (const [key, value] of serviceEnv) if (!env.has(key)) out.push({ key, value });
  return out;
}

async function envValue(
  pod: Pod,
  container: ContainerSpec,
  v: EnvVar,
  src: EnvSources,
  lookup: (name: string) => string | undefined,
): Promise<string | undefined> {
  const namespace = pod.metadata.namespace ?? 'default';
  if (v.value) return expand(v.value, lookup);
  const from = v.valueFrom;
  if (!from) return '';
  if (from.fieldRef) return podFieldValue(pod, from.fieldRef.fieldPath ?? '', src);
  if (from.resourceFieldRef) {
    const ref = from.resourceFieldRef;
    const target = ref.containerName
      ? [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].find(
          (c) => c.name === ref.containerName,
        )
      : container;
    return containerResourceValue(target ?? container, ref.resource ?? '', ref.divisor, src.nodeAllocatable);
  }
  if (from.configMapKeyRef) {
    const { name = '', key = '', optional } = from.configMapKeyRef;
    const cm = await src.getConfigMap(namespace, name);
    if (!cm) {
      if (optional) return undefined;
      throw new ContainerConfigError(`configmap "${name}" not found`);
    }
    const value = cm.data?.[key];
    if (value === undefined) {
      if (optional) return undefined;
      throw new ContainerConfigError(`couldn't find key ${key} in ConfigMap ${namespace}/${name}`);
    }
    return value;
  }
  if (from.secretKeyRef) {
    const { name = '', key = '', optional } = from.secretKeyRef;
    const secret = await src.getSecret(namespace, name);
    if (!secret) {
      if (optional) return undefined;
      throw new ContainerConfigError(`secret "${name}" not found`);
    }
    const value = decodeSecret(secret)[key];
    if (value === undefined) {
      if (optional) return undefined;
      throw new ContainerConfigError(`couldn't find key ${key} in Secret ${namespace}/${name}`);
    }
    return value;
  }
  return '';
}

function decodeSecret(secret: Secret): Record<string, string> {
  const out: Record<string, string> = { ...secret.stringData };
  for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  return out;
}

/** The downward API's fieldRef paths (upstream podFieldSelectorRuntimeValue). */
export function podFieldValue(pod: Pod, fieldPath: string, src: Pick<EnvSources, 'podIPs' | 'hostIPs'>) {
  const sub = /^metadata\.(labels|annotations)\['(.*)'\]$/.exec(fieldPath);
  if (sub)
    return (sub[1] === 'labels' ? pod.metadata.labels : pod.metadata.annotations)?.[sub[2] ?? ''] ?? '';
  switch (fieldPath) {
    case 'metadata.name':
      return pod.metadata.name ?? '';
    case 'metadata.namespace':
      return pod.metadata.namespace ?? '';
    case 'metadata.uid':
      return pod.metadata.uid ?? '';
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? '';
    case 'status.hostIP':
      return src.hostIPs[0] ?? '';
    case 'status.hostIPs':
      return src.hostIPs.join(',');
    case 'status.podIP':
      return src.podIPs[0] ?? '';
    case 'status.podIPs':
      return src.podIPs.join(',');
    default:
      throw new ContainerConfigError(`unsupported fieldPath: ${fieldPath}`);
  }
}

/**
 * resourceFieldRef (upstream ExtractContainerResourceValue): cpu rounds up
 * to whole divisors, others too; unset limits read as node allocatable.
 */
export function containerResourceValue(
  container: ContainerSpec,
  resource: string,
  divisor: string | undefined,
  nodeAllocatable: Record<string, string>,
): string {
  const [kind, name = ''] = resource.split(/\.(.*)/s);
  const set = kind === 'limits' ? container.resources?.limits : container.resources?.requests;
  let raw = set?.[name];
  if (raw === undefined && kind === 'limits') raw = nodeAllocatable[name];
  const q = parseQuantity(raw ?? '0');
  const d = parseQuantity(divisor && divisor !== '0' ? divisor : '1');
  if (name === 'cpu') return String(ceilDiv(milliValue(q), milliValue(d)));
  return String(ceilDiv(quantityValue(q), quantityValue(d)));
}

const ceilDiv = (a: bigint, b: bigint): bigint => (b === 0n ? 0n : (a + b - 1n) / b);

/**
 * $(VAR) expansion (upstream third_party/forked/golang/expansion): a known
 * name is replaced, an unknown one kept as written, and $$ escapes a $.
 */
export function expand(input: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  for (let i = 0; i < input.length; i++) {
    const ch = input[i];
    if (ch !== '$' || i + 1 >= input.length) {
      out += ch;
      continue;
    }
    const next = input[i + 1];
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '(') {
      const close = input.indexOf(')', i + 2);
      if (close < 0) {
        out += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, close);
      const value = lookup(name);
      out += value ?? `$(${name})`;
      i = close;
    } else {
      out += ch;
    }
  }
  return out;
}

/** The docker-link style service variables (upstream envvars.FromServices). */
export function serviceEnvironment(
  services: Service[],
  namespace: string,
  enableServiceLinks: boolean,
): Map<string, string> {
  const out = new Map<string, string>();
  const chosen = new Map<string, Service>();
  for (const svc of services) {
    const ip = svc.spec?.clusterIP;
    if (!ip || ip === 'None') continue;
    const ns = svc.metadata.namespace;
    // The master service is always there; others only with service links.
    if (ns === 'default' && svc.metadata.name === 'kubernetes') {
      if (!chosen.has('kubernetes') || namespace === 'default') chosen.set('kubernetes', svc);
    } else if (enableServiceLinks && ns === namespace) {
      chosen.set(svc.metadata.name ?? '', svc);
    }
  }
  for (const svc of chosen.values()) {
    const name = (svc.metadata.name ?? '').toUpperCase().replace(/-/g, '_');
    const ip = svc.spec?.clusterIP ?? '';
    const ports = svc.spec?.ports ?? [];
    const first = ports[0];
    out.set(`${name}_SERVICE_HOST`, ip);
    if (first) out.set(`${name}_SERVICE_PORT`, String(first.port));
    for (const p of ports) {
      if (p.name) out.set(`${name}_SERVICE_PORT_${p.name.toUpperCase().replace(/-/g, '_')}`, String(p.port));
    }
    if (first) {
      const proto = (first.protocol ?? 'TCP').toLowerCase();
      out.set(`${name}_PORT`, `${proto}://${ip}:${first.port}`);
    }
    for (const p of ports) {
      const proto = p.protocol ?? 'TCP';
      const prefix = `${name}_PORT_${p.port}_${proto.toUpperCase()}`;
      out.set(prefix, `${proto.toLowerCase()}://${ip}:${p.port}`);
      out.set(`${prefix}_PROTO`, proto.toLowerCase());
      out.set(`${prefix}_PORT`, String(p.port));
      out.set(`${prefix}_ADDR`, ip);
    }
  }
  return out;
}
