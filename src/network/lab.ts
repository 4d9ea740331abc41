// A throwaway multi-host network for the overlay's contract suite and its
// benchmark, built from network namespaces so the machine's own links,
// routes and tables are never touched:
//
//   wire netns: bridge `wire` ─┬─ host 1 (eth0 198.18.41.11/24) ── cni0 10.98.1.1/24 ── pods 10.98.1.11 ...
//                              ├─ host 2 (eth0 198.18.41.12/24) ── cni0 10.98.2.1/24 ── pods 10.98.2.11 ...
//                              └─ ext    (eth0 198.18.41.100/24): off-cluster, the hosts' default gateway
//
// A host is what an agent's node is: its own namespace, a pod bridge for
// its podCIDR, the safety routes (the whole cluster and service ranges
// unreachable), forwarding on. The backend under test programs the host
// namespaces. 198.18.41.0/24 (a benchmarking range, RFC 2544) and the `sko-`
// prefix are this lab's own, apart from the multi-host harness's
// 198.18.0.0/24. Pods and ext run a small TCP server that answers who it is
// and the client address it saw. destroy() removes every namespace (and so
// every link, route and table in them), also after a failed test.

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { type Exec, hostExec } from '../proxy/backend.ts';

export const LAB_CLUSTER_CIDR = '10.98.0.0/16';
export const LAB_SERVICE_CIDR = '10.97.0.0/16';
export const LAB_SUBNET = '198.18.41';
export const LAB_EXT_IP = `${LAB_SUBNET}.100`;
/** The port pods' and ext's servers answer on. */
export const LAB_PORT = 8080;

export interface LabPod {
  name: string;
  netns: string;
  ip: string;
}

export interface LabHost {
  /** The Node's name. */
  name: string;
  netns: string;
  /** Its InternalIP on the wire. */
  ip: string;
  podCIDR: string;
  pods: LabPod[];
  exec: Exec;
}

export interface ConnectResult {
  /** `<server name> <client address as the server saw it>`. */
  reply?: string;
  error?: string;
}

export interface OverlayLab {
  hosts: LabHost[];
  ext: { netns: string; ip: string };
  /** One TCP connection from namespace `from` to ip:port. */
  connect(from: string, ip: string, port?: number, timeoutMs?: number): Promise<ConnectResult>;
  /** Sets the pods' MTU on a host (their eth0 and the host's veth), as CNI would from the backend's. */
  setPodMTU(host: LabHost, mtu: number): Promise<void>;
  destroy(): Promise<void>;
}

const SERVER = `
const net = require('node:net');
const name = process.argv[1];
net.createServer((s) => s.end(name + ' ' + s.remoteAddress.replace('::ffff:', '') + '\\n'))
  .listen(${LAB_PORT}, '0.0.0.0', () => process.stdout.write('ready\\n'));
`;

const CLIENT = `
const net = require('node:net');
const [ip, port, timeout] = process.argv.slice(1);
const out = (r) => { process.stdout.write(JSON.stringify(r)); process.exit(0); };
const s = net.connect({ host: ip, port: Number(port) });
let data = '';
s.on('data', (d) => (data += d));
s.on('end', () => out({ reply: data.trim() }));
s.on('error', (e) => out({ error: e.code || String(e) }));
setTimeout(() => out({ error: 'TIMEOUT' }), Number(timeout));
`;

export interface OverlayLabOptions {
  hosts?: number;
  podsPerHost?: number;
}

export async function createOverlayLab(opts: OverlayLabOptions = {}): Promise<OverlayLab> {
  const id = randomBytes(3).toString('hex');
  const sh = hostExec();
  const ns = (suffix: string) => `sko-${id}-${suffix}`;
  const wire = ns('wire');
  const ext = { netns: ns('ext'), ip: LAB_EXT_IP };
  const hosts: LabHost[] = Array.from({ length: opts.hosts ?? 2 }, (_, i) => {
    const n = i + 1;
    return {
      name: `node-${n}`,
      netns: ns(`h${n}`),
      ip: `${LAB_SUBNET}.${10 + n}`,
      podCIDR: `10.98.${n}.0/24`,
      pods: Array.from({ length: opts.podsPerHost ?? 1 }, (_, j) => ({
        name: `pod-${n}-${j + 1}`,
        netns: ns(`h${n}p${j + 1}`),
        ip: `10.98.${n}.${11 + j}`,
      })),
      exec: hostExec(ns(`h${n}`)),
    };
  });
  const namespaces = [wire, ext.netns, ...hosts.flatMap((h) => [h.netns, ...h.pods.map((p) => p.netns)])];
  const servers: ChildProcess[] = [];
  const ip = (netns: string, ...args: string[]) => sh('ip', ['-n', netns, ...args]);

  const destroy = async () => {
    for (const s of servers) s.kill('SIGKILL');
    for (const n of namespaces) await sh('ip', ['netns', 'del', n]).catch(() => undefined);
  };

  /** A veth from the wire's bridge into `netns` as eth0 with `address`. */
  const plug = async (netns: string, port: string, address: string) => {
    await ip(wire, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns);
    await ip(wire, 'link', 'set', port, 'master', 'wire', 'up');
    await ip(netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
    await ip(netns, 'link', 'set', 'eth0', 'up');
  };
  const serve = async (netns: string, name: string) => {
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', SERVER, name], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    servers.push(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`${name}'s server exited ${code}`)));
    });
  };

  try {
    for (const n of namespaces) {
      await sh('ip', ['netns', 'add', n]);
      await ip(n, 'link', 'set', 'lo', 'up');
    }
    await ip(wire, 'link', 'add', 'wire', 'type', 'bridge');
    await ip(wire, 'link', 'set', 'wire', 'up');
    await plug(ext.netns, 'ext', ext.ip);
    for (const [i, h] of hosts.entries()) {
      await plug(h.netns, `h${i + 1}`, h.ip);
      await ip(h.netns, 'route', 'add', 'default', 'via', ext.ip);
      await h.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
      // As the agent does (cni.ts ensureSafetyRoutes).
      await ip(h.netns, 'route', 'add', 'unreachable', LAB_CLUSTER_CIDR);
      await ip(h.netns, 'route', 'add', 'unreachable', LAB_SERVICE_CIDR);
      await ip(h.netns, 'link', 'add', 'cni0', 'type', 'bridge');
      await ip(h.netns, 'addr', 'add', `${h.podCIDR.replace(/\.0\/24$/, '.1')}/24`, 'dev', 'cni0');
      await ip(h.netns, 'link', 'set', 'cni0', 'up');
      for (const [j, pod] of h.pods.entries()) {
        const veth = `veth${j + 1}`;
        await ip(h.netns, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.netns);
        await ip(h.netns, 'link', 'set', veth, 'master', 'cni0', 'up');
        await ip(pod.netns, 'addr', 'add', `${pod.ip}/24`, 'dev', 'eth0');
        await ip(pod.netns, 'link', 'set', 'eth0', 'up');
        await ip(pod.netns, 'route', 'add', 'default', 'via', h.podCIDR.replace(/\.0\/24$/, '.1'));
        await serve(pod.netns, pod.name);
      }
    }
    await serve(ext.netns, 'ext');
  } catch (err) {
    await destroy();
    throw err;
  }

  return {
    hosts,
    ext,
    async connect(from, address, port = LAB_PORT, timeoutMs = 3000) {
      const out = await hostExec(from)(process.execPath, [
        '-e',
        CLIENT,
        address,
        String(port),
        String(timeoutMs),
      ]);
      return JSON.parse(out) as ConnectResult;
    },
    async setPodMTU(host, mtu) {
      for (const [j, pod] of host.pods.entries()) {
        await ip(host.netns, 'link', 'set', `veth${j + 1}`, 'mtu', String(mtu));
        await ip(pod.netns, 'link', 'set', 'eth0', 'mtu', String(mtu));
      }
    },
    destroy,
  };
}
