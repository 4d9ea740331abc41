// ClusterIP and NodePort allocation for Services.
//
// The set of addresses and ports in use is derived from the Services that
// exist (the watch cache) plus reservations for creates in flight, so there
// is no separate allocation map that could drift from the objects: after a
// restart, or after a crash between allocating and writing, the "range" is
// repaired by construction. A reservation is released once the create has
// either been written (and so shows up in the cache) or failed.

import { ApiError } from '../api/errors.ts';
import type { KubeObject } from '../api/meta.ts';

interface ServicePort {
  port?: number;
  protocol?: string;
  nodePort?: number;
  name?: string;
}

interface ServiceSpec {
  type?: string;
  clusterIP?: string;
  clusterIPs?: string[];
  ports?: ServicePort[];
  ipFamilies?: string[];
  ipFamilyPolicy?: string;
  allocateLoadBalancerNodePorts?: boolean;
}

function parseIPv4(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

const formatIPv4 = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

export class ServiceAllocator {
  readonly #base: number;
  readonly #size: number;
  readonly #cidr: string;
  readonly #ports: [number, number];
  readonly #services: () => KubeObject[];
  readonly #reservedIPs = new Set<string>();
  readonly #reservedPorts = new Set<number>();

  constructor(cidr: string, nodePorts: [number, number], services: () => KubeObject[]) {
    const [addr = '', bits = ''] = cidr.split('/');
    const base = parseIPv4(addr);
    const prefix = Number(bits);
    if (base === undefined || !(prefix >= 8 && prefix <= 30)) throw new Error(`invalid service CIDR ${cidr}`);
    this.#size = 2 ** (32 - prefix);
    this.#base = (base & ~(this.#size - 1)) >>> 0;
    this.#cidr = cidr;
    this.#ports = nodePorts;
    this.#services = services;
  }

  /** The first address of the range: the `kubernetes` Service's ClusterIP. */
  get firstIP(): string {
    return formatIPv4(this.#base + 1);
  }

  /** The cluster DNS address, by convention the tenth (10.43.0.10). */
  get dnsIP(): string {
    return formatIPv4(this.#base + 10);
  }

  #inUse(exclude?: string): { ips: Set<string>; ports: Set<number> } {
    const ips = new Set(this.#reservedIPs);
    const ports = new Set(this.#reservedPorts);
    for (const svc of this.#services()) {
      if (exclude && svc.metadata.uid === exclude) continue;
      const spec = (svc.spec ?? {}) as ServiceSpec;
      for (const ip of spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : [])) ips.add(ip);
      for (const p of spec.ports ?? []) if (p.nodePort) ports.add(p.nodePort);
    }
    return { ips, ports };
  }

  /**
   * Fills in spec.clusterIP(s) and nodePorts of a Service being created
   * (current undefined) or updated, reserving them until the returned release
   * function runs. Throws 422 for a requested address or port that is taken
   * or out of range, and for an attempt to change an allocated ClusterIP.
   */
  allocate(svc: KubeObject, current: KubeObject | undefined): () => void {
    const spec = (svc.spec ?? {}) as ServiceSpec;
    svc.spec = spec;
    const type = spec.type ?? 'ClusterIP';
    const name = svc.metadata.name ?? '';
    const cur = (current?.spec ?? {}) as ServiceSpec;
    const { ips, ports } = this.#inUse(current?.metadata.uid);
    const reservedIPs: string[] = [];
    const reservedPorts: number[] = [];
    const fail = (field: string, value: unknown, detail: string) =>
      new ApiError(
        422,
        'Invalid',
        `Service "${name}" is invalid: ${field}: Invalid value: ${JSON.stringify(value)}: ${detail}`,
        {
          name,
          group: '',
          kind: 'Service',
          causes: [
            {
              reason: 'FieldValueInvalid',
              message: `Invalid value: ${JSON.stringify(value)}: ${detail}`,
              field,
            },
          ],
        },
      );

    if (type === 'ExternalName') {
      delete spec.clusterIP;
      delete spec.clusterIPs;
    } else if (current && cur.clusterIP) {
      // ClusterIP is immutable once allocated.
      if (spec.clusterIP && spec.clusterIP !== cur.clusterIP) {
        throw fail('spec.clusterIPs[0]', spec.clusterIP, 'may not change once set');
      }
      spec.clusterIP = cur.clusterIP;
      spec.clusterIPs = cur.clusterIPs ?? [cur.clusterIP];
    } else if (spec.clusterIP === 'None') {
      spec.clusterIPs = ['None'];
    } else if (spec.clusterIP) {
      const n = parseIPv4(spec.clusterIP);
      if (n === undefined || n <= this.#base || n >= this.#base + this.#size - 1) {
        throw fail(
          'spec.clusterIPs',
          [spec.clusterIP],
          `failed to allocate IP ${spec.clusterIP}: the provided IP (${spec.clusterIP}) is not in the valid range. The range of valid IPs is ${this.#cidr}`,
        );
      }
      if (ips.has(spec.clusterIP)) {
        throw fail(
          'spec.clusterIPs',
          [spec.clusterIP],
          `failed to allocate IP ${spec.clusterIP}: provided IP is already allocated`,
        );
      }
      spec.clusterIPs = [spec.clusterIP];
      reservedIPs.push(spec.clusterIP);
    } else {
      const ip = this.#pickIP(ips);
      if (!ip)
        throw new ApiError(
          500,
          'InternalError',
          `Internal error occurred: failed to allocate a serviceIP: range is full`,
        );
      spec.clusterIP = ip;
      spec.clusterIPs = [ip];
      reservedIPs.push(ip);
    }
    if (type !== 'ExternalName') {
      spec.ipFamilies ??= ['IPv4'];
      spec.ipFamilyPolicy ??= 'SingleStack';
    }

    const wantsNodePorts =
      type === 'NodePort' || (type === 'LoadBalancer' && spec.allocateLoadBalancerNodePorts !== false);
    (spec.ports ?? []).forEach((p, i) => {
      // Not a NodePort: leave any nodePort for validation to refuse, as
      // upstream does (a type change clears them in the strategy).
      if (!wantsNodePorts) return;
      const existing = cur.ports?.find(
        (c) => c.port === p.port && (c.protocol ?? 'TCP') === (p.protocol ?? 'TCP'),
      )?.nodePort;
      if (!p.nodePort && existing) {
        p.nodePort = existing;
        return;
      }
      if (p.nodePort) {
        if (p.nodePort === existing) return;
        if (p.nodePort < this.#ports[0] || p.nodePort > this.#ports[1]) {
          throw fail(
            `spec.ports[${i}].nodePort`,
            p.nodePort,
            `provided port is not in the valid range. The range of valid ports is ${this.#ports[0]}-${this.#ports[1]}`,
          );
        }
        if (ports.has(p.nodePort) || reservedPorts.includes(p.nodePort)) {
          throw fail(`spec.ports[${i}].nodePort`, p.nodePort, 'provided port is already allocated');
        }
        reservedPorts.push(p.nodePort);
        return;
      }
      const port = this.#pickPort(ports, reservedPorts);
      if (!port)
        throw new ApiError(
          500,
          'InternalError',
          'Internal error occurred: failed to allocate a nodePort: range is full',
        );
      p.nodePort = port;
      reservedPorts.push(port);
    });

    for (const ip of reservedIPs) this.#reservedIPs.add(ip);
    for (const port of reservedPorts) this.#reservedPorts.add(port);
    return () => {
      for (const ip of reservedIPs) this.#reservedIPs.delete(ip);
      for (const port of reservedPorts) this.#reservedPorts.delete(port);
    };
  }

  // Random probing like upstream's bitmap allocator, skipping the network and
  // broadcast addresses and the first address (the kubernetes Service), and
  // the low addresses reserved for static assignment (the DNS service).
  #pickIP(inUse: Set<string>): string | undefined {
    const first = 1;
    const last = this.#size - 2;
    const start = first + Math.floor(Math.random() * (last - first + 1));
    for (let i = 0; i <= last - first; i++) {
      const offset = first + ((start - first + i) % (last - first + 1));
      if (offset <= 10 && this.#size > 64) continue;
      const ip = formatIPv4(this.#base + offset);
      if (!inUse.has(ip)) return ip;
    }
    return undefined;
  }

  #pickPort(inUse: Set<number>, reserved: number[]): number | undefined {
    const [lo, hi] = this.#ports;
    const span = hi - lo + 1;
    const start = Math.floor(Math.random() * span);
    for (let i = 0; i < span; i++) {
      const port = lo + ((start + i) % span);
      if (!inUse.has(port) && !reserved.includes(port)) return port;
    }
    return undefined;
  }
}
