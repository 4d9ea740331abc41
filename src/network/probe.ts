// Network diagnostics: each agent probes its overlay peers and publishes
// what it found, so "why can't my pods talk?" has an answer in the API
// (k3s's users often cannot tell why VXLAN is broken).
//
// The probe is one UDP datagram to the peer's overlay address (its VTEP for
// vxlan, its pod gateway for host-gw) on a port nothing listens on. The peer's
// kernel answers with ICMP port unreachable, which a connected UDP socket
// reports as ECONNREFUSED: the path works both ways (there and back over the
// overlay). No answer within the timeout is an unreachable peer. No listener,
// no raw socket, no ping binary needed.
//
// Published on the Node:
//   - the NetworkUnavailable condition (the one upstream's route controller
//     and CNI plugins set): False with reason OverlayPeersReachable, or True
//     with reason OverlayPeersUnreachable and a message naming the peers;
//   - the annotation skiff.io/network-probe: the backend, the MTU and every
//     peer's result, which `skiff check network` prints as a table.
// Only a peer whose Node is Ready counts against this node: a host that is
// down is its own Node's NotReady, not every other node's network problem
// (which would taint the whole cluster network-unavailable at once).

import type { Node, NodeCondition } from '../api/types/core-v1.ts';
import type { Clientset } from '../client/clientset.ts';
import type { Exec } from '../proxy/backend.ts';
import type { Log } from '../util/log.ts';
import type { OverlayBackend, OverlayPeer } from './overlay.ts';

export const PROBE_ANNOTATION = 'skiff.io/network-probe';
/** Where probes go: a port no Skiff component listens on. */
export const PROBE_PORT = 8474;

export interface PeerProbe {
  /** The address probed (the peer's VTEP or pod gateway). */
  address: string;
  reachable: boolean;
  /** Why not: TIMEOUT, or the socket's error code. */
  error?: string;
}

/** What a node publishes (skiff.io/network-probe). */
export interface ProbeReport {
  backend: string;
  mtu: number;
  peers: Record<string, PeerProbe>;
}

/** The probe, run as its own process (on the host, or in a test's namespace): prints {address: error|"ok"}. */
const PROBE_SCRIPT = `
const dgram = require('node:dgram');
const [port, timeout, ...addrs] = process.argv.slice(1);
const one = (a) => new Promise((resolve) => {
  const s = dgram.createSocket('udp4');
  const done = (r) => { clearTimeout(t); try { s.close(); } catch {} resolve([a, r]); };
  const t = setTimeout(() => done('TIMEOUT'), Number(timeout));
  s.on('error', (e) => done(e.code === 'ECONNREFUSED' ? 'ok' : e.code || String(e)));
  s.on('message', () => done('ok'));
  s.connect(Number(port), a, (e) => e ? done(e.code || String(e)) : s.send('skiff-probe'));
});
Promise.all(addrs.map(one)).then((r) => process.stdout.write(JSON.stringify(Object.fromEntries(r))));
`;

/** Probes every address at once; answers address → result. */
export async function probeAddresses(
  exec: Exec,
  addresses: string[],
  timeoutMs = 1000,
): Promise<Record<string, string>> {
  if (addresses.length === 0) return {};
  const out = await exec(process.execPath, [
    '-e',
    PROBE_SCRIPT,
    String(PROBE_PORT),
    String(timeoutMs),
    ...addresses,
  ]);
  return JSON.parse(out) as Record<string, string>;
}

/** The report from the peers and their probe results (pure). */
export function probeReport(
  backend: OverlayBackend,
  peers: OverlayPeer[],
  results: Record<string, string>,
): ProbeReport {
  const out: Record<string, PeerProbe> = {};
  for (const p of peers) {
    const address = backend.probeAddress(p);
    const r = results[address] ?? 'TIMEOUT';
    out[p.name] = r === 'ok' ? { address, reachable: true } : { address, reachable: false, error: r };
  }
  return { backend: backend.type, mtu: backend.mtu(), peers: out };
}

const isReady = (n: Node | undefined) =>
  n?.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';

/** The NetworkUnavailable condition for a report (pure; no timestamps). */
export function networkCondition(
  report: ProbeReport,
  nodeOf: (name: string) => Node | undefined,
): Pick<NodeCondition, 'type' | 'status' | 'reason' | 'message'> {
  const names = Object.keys(report.peers).sort();
  const down = names.filter((n) => !report.peers[n]!.reachable);
  const counted = down.filter((n) => isReady(nodeOf(n)));
  const via = `${report.backend}, MTU ${report.mtu}`;
  if (counted.length === 0) {
    const notReady = down.length ? `; not Ready, so not counted: ${down.join(', ')}` : '';
    return {
      type: 'NetworkUnavailable',
      status: 'False',
      reason: 'OverlayPeersReachable',
      message: `${names.length - down.length} of ${names.length} overlay peers reachable (${via})${notReady}`,
    };
  }
  const detail = counted.map((n) => `${n} (${report.peers[n]!.address}: ${report.peers[n]!.error})`);
  return {
    type: 'NetworkUnavailable',
    status: 'True',
    reason: 'OverlayPeersUnreachable',
    message: `overlay peers unreachable over ${via}: ${detail.join(', ')}`,
  };
}

export interface NetworkProberOptions {
  clients: Clientset;
  nodeName: string;
  backend: OverlayBackend;
  /** The peers programmed now (the overlay controller's). */
  peers: () => OverlayPeer[];
  /** A peer's Node as last seen (its Ready condition). */
  nodeOf: (name: string) => Node | undefined;
  exec: Exec;
  intervalMs?: number;
  timeoutMs?: number;
  now?: () => Date;
  log?: Log;
}

export interface NetworkProber {
  /** Probes once and publishes (what the loop does every interval). */
  probe(): Promise<ProbeReport>;
  /** Probes now and then every interval. */
  start(): void;
  stop(): void;
}

/** Probes the peers and publishes the condition and report when they change. */
export function createNetworkProber(opts: NetworkProberOptions): NetworkProber {
  const now = opts.now ?? (() => new Date());
  let last = '';
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const publish = async (report: ProbeReport) => {
    const condition = networkCondition(report, opts.nodeOf);
    const key = JSON.stringify([report, condition]);
    const own = opts.nodeOf(opts.nodeName) ?? (await opts.clients.nodes.get(undefined, opts.nodeName));
    const before = own.status?.conditions?.find((c) => c.type === 'NetworkUnavailable');
    // Written again when the Node lost it (a status write racing ours), not only when it changed.
    const onNode = before?.status === condition.status && before?.message === condition.message;
    if (key === last && onNode) return;
    const t = now()
      .toISOString()
      .replace(/\.\d+Z$/, 'Z');
    const cond: NodeCondition = {
      ...condition,
      lastHeartbeatTime: t,
      lastTransitionTime:
        before?.status === condition.status && before?.lastTransitionTime ? before.lastTransitionTime : t,
    };
    // Strategic merge: conditions merge by type, so the kubelet's stay.
    await opts.clients.nodes.patch(
      undefined,
      opts.nodeName,
      'strategic',
      { status: { conditions: [cond] } },
      {
        subresource: 'status',
      },
    );
    await opts.clients.nodes.patch(undefined, opts.nodeName, 'merge', {
      metadata: { annotations: { [PROBE_ANNOTATION]: JSON.stringify(report) } },
    });
    last = key;
    if (condition.status === 'True')
      opts.log?.warn('overlay peers unreachable', { message: condition.message });
  };

  const probe = async () => {
    const peers = opts.peers();
    const results = await probeAddresses(
      opts.exec,
      peers.map((p) => opts.backend.probeAddress(p)),
      opts.timeoutMs,
    );
    const report = probeReport(opts.backend, peers, results);
    await publish(report);
    return report;
  };

  const loop = async () => {
    if (stopped) return;
    await probe().catch((err) => opts.log?.warn('network probe failed', { error: String(err) }));
    if (!stopped) timer = setTimeout(() => void loop(), opts.intervalMs ?? 10_000);
  };
  return {
    probe,
    start: () => void loop(),
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
