// bench/network: the pod network across nodes, in network namespaces of its
// own (src/network/lab.ts; the machine's links and tables are never touched).
//
//   1. TCP throughput (iperf3, one stream) and request/response latency (one
//      connection, 1-byte ping-pong), for each backend (vxlan, host-gw):
//        host → host            the two hosts' own addresses: the anchor
//        pod → pod, same node   through the node's bridge
//        pod → pod, cross node  through the backend
//      all between the same namespaces, in the same run.
//   2. Convergence at 50 nodes: 50 hosts, each with its overlay controller
//      (vxlan) watching a real in-process API server; a new Node (podCIDR and
//      backend annotations, as a joining agent publishes them) is created,
//      and the time runs until its route, neighbour and FDB entries are in
//      the kernel of every one of the 50 (the backend's batch returned).
//
// Goals: cross-node vxlan ≥ 0.8× and host-gw ≥ 0.95× of host-to-host
// throughput; a new podCIDR routable on all 50 in ≤ 1 s.
// Headline: cross-node vxlan TCP throughput as a ratio of host-to-host.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createInProcessTransport } from '../src/apiserver/in-process.ts';
import { startTestServer } from '../src/apiserver/testing.ts';
import { createClientset } from '../src/client/clientset.ts';
import { hostGwBackend } from '../src/network/host-gw.ts';
import { createOverlayLab, type LabHost, type OverlayLab } from '../src/network/lab.ts';
import {
  BACKEND_DATA_ANNOTATION,
  BACKEND_TYPE_ANNOTATION,
  type OverlayBackend,
  type OverlayBackendType,
  type OverlayController,
  PUBLIC_IP_ANNOTATION,
  startOverlayController,
} from '../src/network/overlay.ts';
import { vtepMAC, vxlanBackend } from '../src/network/vxlan.ts';
import { hostExec } from '../src/proxy/backend.ts';
import { percentile, ratio, round, writeResult } from './lib.ts';

const SECONDS = Number(process.env.BENCH_NETWORK_SECONDS ?? 4);
const PINGS = 2000;
const NODES = Number(process.env.BENCH_NETWORK_NODES ?? 50);
const NEW_NODE_RUNS = 5;

if (spawnSync('iperf3', ['--version']).status !== 0) {
  console.error('bench/network needs iperf3 (Debian package iperf3; scripts/setup.sh installs it)');
  process.exit(1);
}

// ---- 1. throughput and latency -----------------------------------------

const ECHO = `
require('node:net').createServer((s) => s.on('data', (d) => s.write(d))).listen(7000, '0.0.0.0', () => process.stdout.write('ready\\n'));
`;
const PING = `
const s = require('node:net').connect({ host: process.argv[1], port: 7000 }, () => {
  s.setNoDelay(true);
  const n = Number(process.argv[2]); const times = []; let t = 0;
  const next = () => { t = process.hrtime.bigint(); s.write('x'); };
  s.on('data', () => {
    times.push(Number(process.hrtime.bigint() - t) / 1000);
    if (times.length === n) { process.stdout.write(JSON.stringify(times)); s.destroy(); } else next();
  });
  next();
});
`;

/** Starts a process in a namespace and waits for its first line of output. */
async function daemon(netns: string, cmd: string, args: string[], ready: RegExp): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', netns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (ready.test(out)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${cmd} in ${netns} exited ${code}`)));
  });
  return child;
}

interface PathFigures {
  gbitPerSec: number;
  rttP50Us: number;
  rttP99Us: number;
}

async function measurePath(fromNetns: string, toNetns: string, toIP: string): Promise<PathFigures> {
  const iperf = await daemon(toNetns, 'iperf3', ['-s', '-1', '-p', '5201', '--forceflush'], /listening/i);
  const out = await hostExec(fromNetns)('iperf3', ['-c', toIP, '-p', '5201', '-t', String(SECONDS), '-J']);
  iperf.kill();
  const bps = (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received
    .bits_per_second;
  const echo = await daemon(toNetns, process.execPath, ['-e', ECHO], /ready/);
  const times = JSON.parse(
    await hostExec(fromNetns)(process.execPath, ['-e', PING, toIP, String(PINGS)]),
  ) as number[];
  echo.kill();
  return { gbitPerSec: round(bps / 1e9), rttP50Us: percentile(times, 50), rttP99Us: percentile(times, 99) };
}

function makeBackend(type: OverlayBackendType, host: LabHost): OverlayBackend {
  return type === 'vxlan' ? vxlanBackend({ exec: host.exec }) : hostGwBackend({ exec: host.exec });
}

/** Programs two hosts' backends directly (no API server) and measures the three paths. */
async function measureBackend(type: OverlayBackendType) {
  const lab = await createOverlayLab({ hosts: 2, podsPerHost: 2 });
  try {
    const [a, b] = [lab.hosts[0]!, lab.hosts[1]!];
    const backends = [makeBackend(type, a), makeBackend(type, b)];
    const data = [];
    for (const [i, h] of [a, b].entries())
      data.push(await backends[i]!.ensureLocal({ name: h.name, podCIDR: h.podCIDR, publicIP: h.ip }));
    for (const [i, h] of [a, b].entries()) {
      const other = i === 0 ? b : a;
      const d = data[1 - i];
      await backends[i]!.syncPeers([
        {
          name: other.name,
          podCIDR: other.podCIDR,
          publicIP: other.ip,
          backendType: type,
          ...(d ? { vtepMAC: d.VtepMAC } : {}),
        },
      ]);
      await lab.setPodMTU(h, backends[i]!.mtu());
    }
    const [p1, p2] = [a.pods[0]!, a.pods[1]!];
    const q1 = b.pods[0]!;
    console.log(`${type}: host → host ...`);
    const hostToHost = await measurePath(a.netns, b.netns, b.ip);
    console.log(`${type}: pod → pod, same node ...`);
    const sameNode = await measurePath(p1.netns, p2.netns, p2.ip);
    console.log(`${type}: pod → pod, cross node ...`);
    const crossNode = await measurePath(p1.netns, q1.netns, q1.ip);
    const fig = {
      mtu: backends[0]!.mtu(),
      hostToHost,
      podToPodSameNode: sameNode,
      podToPodCrossNode: crossNode,
      crossNodeThroughputVsHost: ratio(crossNode.gbitPerSec, hostToHost.gbitPerSec),
    };
    console.log(JSON.stringify(fig));
    return fig;
  } finally {
    await lab.destroy();
  }
}

// ---- 2. convergence at 50 nodes ----------------------------------------

/** A backend that records when each sync that included `watch` finished. */
function timed(backend: OverlayBackend, seen: Map<string, number>): OverlayBackend {
  return {
    ...backend,
    type: backend.type,
    async syncPeers(peers) {
      await backend.syncPeers(peers);
      const t = performance.now();
      for (const p of peers) if (!seen.has(p.name)) seen.set(p.name, t);
    },
  };
}

async function measureConvergence() {
  console.log(`convergence: ${NODES} hosts ...`);
  const lab: OverlayLab = await createOverlayLab({ hosts: NODES, podsPerHost: 0 });
  const server = await startTestServer();
  const controllers: OverlayController[] = [];
  try {
    const admin = createClientset(
      createInProcessTransport(server.api, { name: 'bench', groups: ['system:masters'] }),
    );
    const seen: Map<string, number>[] = [];
    for (const h of lab.hosts) {
      await admin.nodes.create(undefined, { metadata: { name: h.name }, spec: { podCIDR: h.podCIDR } });
    }
    for (const h of lab.hosts) {
      const clients = createClientset(
        createInProcessTransport(server.api, {
          name: `system:node:${h.name}`,
          groups: ['system:nodes', 'system:authenticated'],
        }),
      );
      const s = new Map<string, number>();
      seen.push(s);
      controllers.push(
        startOverlayController({
          clients,
          watchClients: admin,
          nodeName: h.name,
          backend: timed(vxlanBackend({ exec: h.exec }), s),
          podCIDR: async () => h.podCIDR,
          publicIP: h.ip,
        }),
      );
    }
    await Promise.all(controllers.map((c) => c.ready));
    const deadline = Date.now() + 60_000;
    while (!controllers.every((c) => c.peers().length === NODES - 1)) {
      if (Date.now() > deadline) throw new Error('the hosts never saw each other');
      await new Promise((r) => setTimeout(r, 50));
    }
    const runs: number[] = [];
    for (let i = 0; i < NEW_NODE_RUNS; i++) {
      const name = `node-new-${i}`;
      const t0 = performance.now();
      await admin.nodes.create(undefined, {
        metadata: {
          name,
          annotations: {
            [BACKEND_TYPE_ANNOTATION]: 'vxlan',
            [BACKEND_DATA_ANNOTATION]: JSON.stringify({ VNI: 1, VtepMAC: vtepMAC(name) }),
            [PUBLIC_IP_ANNOTATION]: `198.18.41.${200 + i}`,
          },
        },
        spec: { podCIDR: `10.98.${200 + i}.0/24` },
      });
      const until = Date.now() + 30_000;
      while (!seen.every((s) => s.has(name))) {
        if (Date.now() > until) throw new Error(`${name} never reached every host`);
        await new Promise((r) => setTimeout(r, 5));
      }
      runs.push(round(Math.max(...seen.map((s) => s.get(name)!)) - t0));
      // Not timed: the route is really there, on every host.
      for (const h of lab.hosts) {
        const route = await h.exec('ip', ['route', 'show', `10.98.${200 + i}.0/24`]);
        if (!route.includes('skiff.1')) throw new Error(`${h.name} has no route for ${name}: ${route}`);
      }
    }
    console.log(`new node routable on all ${NODES}: ${runs.join(', ')} ms`);
    return { nodes: NODES, runsMs: runs, p50Ms: percentile(runs, 50), maxMs: round(Math.max(...runs)) };
  } finally {
    for (const c of controllers) await c.stop();
    await server.close();
    await lab.destroy();
  }
}

const vxlan = await measureBackend('vxlan');
const hostGw = await measureBackend('host-gw');
const convergence = await measureConvergence();

writeResult(
  'network',
  {
    metric: 'cross-node pod-to-pod TCP throughput over VXLAN, vs host-to-host',
    value: vxlan.crossNodeThroughputVsHost,
    unit: 'ratio',
  },
  {
    goals: { vxlanVsHost: 0.8, hostGwVsHost: 0.95, newNodeRoutableMs: 1000 },
    method: `iperf3 -t ${SECONDS}, one TCP stream; latency: ${PINGS} sequential 1-byte round trips on one connection (µs); veths on a bridge between namespaces`,
    vxlan,
    hostGw,
    convergence,
  },
);
