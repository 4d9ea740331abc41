// A throwaway network for proxy tests and the benchmark, built from network
// namespaces so the host's own tables and routes are never touched:
//
//   ext (192.168.77.2) ── vext ─┐
//                               node netns: 192.168.77.1 (its "node address"),
//                               bridge br0 10.99.0.1/24 (the podCIDR)
//   pod1 (10.99.0.11) ─ veth ───┤ hairpin on, as the CNI bridge plugin sets it
//   pod2 (10.99.0.12) ─ veth ───┘
//
// Pods run a small server that answers who it is and who it saw; clients run
// inside any namespace. `externalAddresses` puts more addresses on ext,
// routed to it from the node (outside peers, or pods of another node when
// they are in the cluster CIDR), and a client may pick its source address. Everything is torn down by destroy(), including on
// a test's failure (the suite calls it from `after`).

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { type Exec, hostExec } from './backend.ts';

export const LAB_CLUSTER_CIDR = '10.99.0.0/16';
export const LAB_SERVICE_CIDR = '10.43.0.0/16';
export const LAB_NODE_IP = '192.168.77.1';
export const LAB_EXTERNAL_IP = '192.168.77.2';

export interface LabPod {
  name: string;
  netns: string;
  ip: string;
}

export interface ConnectResult {
  /** The server's answer: `<pod name>:<port> <client address as the server saw it>`. */
  reply?: string;
  /** The error code (ECONNREFUSED, EHOSTUNREACH, TIMEOUT ...). */
  error?: string;
  ms: number;
}

export interface Lab {
  node: string;
  ext: string;
  pods: LabPod[];
  /** Runs commands in the node namespace (what the backend under test uses). */
  exec: Exec;
  /**
   * Opens `count` connections (TCP) or exchanges (UDP) from namespace `from`
   * to ip:port, one after another, each with its own socket (bound to
   * `sourceAddress` when given).
   */
  connect(
    from: string,
    protocol: 'tcp' | 'udp',
    ip: string,
    port: number,
    count?: number,
    timeoutMs?: number,
    sourceAddress?: string,
  ): Promise<ConnectResult[]>;
  destroy(): Promise<void>;
}

/** The pods' server: TCP on 8080 and 9090, UDP on 5353; it answers its name and the peer's address. */
const SERVER = `
const net = require('node:net'), dgram = require('node:dgram');
const name = process.argv[1];
for (const port of [8080, 9090]) net.createServer((s) => s.end(name + ':' + port + ' ' + s.remoteAddress.replace('::ffff:', '') + '\\n')).listen(port, '0.0.0.0');
const u = dgram.createSocket('udp4');
u.on('message', (_m, r) => u.send(name + ':5353 ' + r.address + '\\n', r.port, r.address));
u.bind(5353, '0.0.0.0', () => process.stdout.write('ready\\n'));
`;

/** The client: prints one JSON result per attempt. */
const CLIENT = `
const net = require('node:net'), dgram = require('node:dgram');
const [proto, ip, port, count, timeout, source] = process.argv.slice(1);
const once = () => new Promise((resolve) => {
  const t0 = Date.now();
  const done = (r) => { clearTimeout(timer); resolve({ ...r, ms: Date.now() - t0 }); };
  let timer;
  if (proto === 'tcp') {
    const s = net.connect({ host: ip, port: Number(port), ...(source ? { localAddress: source } : {}) });
    let data = '';
    s.on('data', (d) => (data += d));
    s.on('end', () => { s.destroy(); done({ reply: data.trim() }); });
    s.on('error', (e) => { s.destroy(); done({ error: e.code || String(e) }); });
    timer = setTimeout(() => { s.destroy(); done({ error: 'TIMEOUT' }); }, Number(timeout));
  } else {
    const s = dgram.createSocket('udp4');
    s.on('message', (m) => { s.close(); done({ reply: String(m).trim() }); });
    s.on('error', (e) => { s.close(); done({ error: e.code || String(e) }); });
    const go = () => s.connect(Number(port), ip, () => s.send('hello'));
    if (source) s.bind(0, source, go); else go();
    timer = setTimeout(() => { try { s.close(); } catch {} done({ error: 'TIMEOUT' }); }, Number(timeout));
  }
});
(async () => {
  const out = [];
  for (let i = 0; i < Number(count); i++) out.push(await once());
  process.stdout.write(JSON.stringify(out));
})();
`;

export interface LabOptions {
  /** The network namespaces' name prefix (default skq); each suite its own, as suites run at once. */
  prefix?: string;
  /** More addresses of ext (each routed to it from the node as a /32). */
  externalAddresses?: string[];
}

export async function createLab(podCount = 2, opts: LabOptions = {}): Promise<Lab> {
  const id = randomBytes(3).toString('hex');
  const host = hostExec();
  const prefix = opts.prefix ?? 'skq';
  const node = `${prefix}-${id}-node`;
  const ext = `${prefix}-${id}-ext`;
  const pods: LabPod[] = Array.from({ length: podCount }, (_, i) => ({
    name: `pod${i + 1}`,
    netns: `${prefix}-${id}-pod${i + 1}`,
    ip: `10.99.0.${11 + i}`,
  }));
  const namespaces = [node, ext, ...pods.map((p) => p.netns)];
  const servers: ChildProcess[] = [];
  const ip = (ns: string, ...args: string[]) => host('ip', ['-n', ns, ...args]);

  const destroy = async () => {
    for (const s of servers) s.kill('SIGKILL');
    for (const ns of namespaces) await host('ip', ['netns', 'del', ns]).catch(() => undefined);
  };
  try {
    for (const ns of namespaces) {
      await host('ip', ['netns', 'add', ns]);
      await ip(ns, 'link', 'set', 'lo', 'up');
    }
    await ip(node, 'link', 'add', 'br0', 'type', 'bridge');
    await ip(node, 'addr', 'add', '10.99.0.1/24', 'dev', 'br0');
    await ip(node, 'link', 'set', 'br0', 'up');
    // As the agent does (src/network/cni.ts): the cluster and service ranges
    // routed nowhere; the proxy takes the service range over.
    await ip(node, 'route', 'add', 'unreachable', LAB_CLUSTER_CIDR);
    await ip(node, 'route', 'add', 'unreachable', LAB_SERVICE_CIDR);
    for (const [i, pod] of pods.entries()) {
      const veth = `veth${i + 1}`;
      await ip(node, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.netns);
      await ip(node, 'link', 'set', veth, 'master', 'br0');
      await ip(node, 'link', 'set', veth, 'type', 'bridge_slave', 'hairpin', 'on');
      await ip(node, 'link', 'set', veth, 'up');
      await ip(pod.netns, 'addr', 'add', `${pod.ip}/24`, 'dev', 'eth0');
      await ip(pod.netns, 'link', 'set', 'eth0', 'up');
      await ip(pod.netns, 'route', 'add', 'default', 'via', '10.99.0.1');
    }
    await ip(node, 'link', 'add', 'vext', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ext);
    await ip(node, 'addr', 'add', `${LAB_NODE_IP}/24`, 'dev', 'vext');
    await ip(node, 'link', 'set', 'vext', 'up');
    await ip(ext, 'addr', 'add', `${LAB_EXTERNAL_IP}/24`, 'dev', 'eth0');
    await ip(ext, 'link', 'set', 'eth0', 'up');
    await ip(ext, 'route', 'add', 'default', 'via', LAB_NODE_IP);
    for (const address of opts.externalAddresses ?? []) {
      await ip(ext, 'addr', 'add', `${address}/32`, 'dev', 'eth0');
      await ip(node, 'route', 'add', `${address}/32`, 'via', LAB_EXTERNAL_IP);
    }
    for (const pod of pods) {
      const child = spawn('ip', ['netns', 'exec', pod.netns, process.execPath, '-e', SERVER, pod.name], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      servers.push(child);
      await new Promise<void>((resolve, reject) => {
        child.stdout!.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`${pod.name}'s server exited ${code}`)));
      });
    }
  } catch (err) {
    await destroy();
    throw err;
  }
  return {
    node,
    ext,
    pods,
    exec: hostExec(node),
    async connect(from, protocol, address, port, count = 1, timeoutMs = 3000, sourceAddress = '') {
      const out = await hostExec(from)(process.execPath, [
        '-e',
        CLIENT,
        protocol,
        address,
        String(port),
        String(count),
        String(timeoutMs),
        sourceAddress,
      ]);
      return JSON.parse(out) as ConnectResult[];
    },
    destroy,
  };
}
