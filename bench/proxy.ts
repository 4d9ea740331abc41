// bench/proxy: how long the service proxy takes to program the kernel, per
// backend, in a network namespace of its own (the host's tables are never
// touched):
//   - full sync of 1,000 and 10,000 Services with 2 endpoints each;
//   - one endpoint change at 10,000 Services (an incremental sync);
//   - the anchor: iptables-restore of 6,000 plain rules, in the same run.
// Headline: the incremental change at 10,000 Services with nftables (goal ≤ 50 ms).
//
// The backends are driven directly with ServicePorts (what the proxier core
// hands them), so the figures are the kernel programming alone, not the API.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { hostExec, type ProxyBackend } from '../src/proxy/backend.ts';
import { iptablesBackend } from '../src/proxy/iptables.ts';
import type { ServicePort } from '../src/proxy/model.ts';
import { nftablesBackend } from '../src/proxy/nftables.ts';
import { ratio, round, writeResult } from './lib.ts';

const CLUSTER_CIDR = '10.42.0.0/16';
const SERVICE_CIDR = '10.43.0.0/16';
const INCREMENTAL_RUNS = 7;

/** Service i: cluster IP 10.43.x.y, two endpoints in 10.42/16; a third of them NodePorts. */
function servicePort(i: number, endpointSeed = 0): ServicePort {
  const ip = (base: number, n: number) => `10.${base}.${(n >> 8) & 255}.${n & 255}`;
  const e = 2 * i + endpointSeed * 7919;
  return {
    key: `bench/svc-${i}:http`,
    service: `bench/svc-${i}`,
    portName: 'http',
    protocol: 'TCP',
    clusterIP: ip(43, i + 1),
    port: 80,
    nodePort: i % 3 === 0 && i / 3 < 2767 ? 30000 + i / 3 : undefined,
    externalIPs: [],
    loadBalancerIPs: [],
    affinitySeconds: undefined,
    externalPolicyLocal: false,
    internalPolicyLocal: false,
    endpoints: [
      { ip: ip(42, (e % 65000) + 2), port: 8080, local: true },
      { ip: ip(42, ((e + 1) % 65000) + 2), port: 8080, local: false },
    ],
  };
}

function portsOf(n: number): Map<string, ServicePort> {
  const m = new Map<string, ServicePort>();
  for (let i = 0; i < n; i++) {
    const sp = servicePort(i);
    m.set(sp.key, sp);
  }
  return m;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return round(performance.now() - t, 1);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface BackendFigures {
  fullSyncMs: Record<string, number>;
  incrementalMs: number;
  incrementalRunsMs: number[];
}

async function measure(mode: 'nftables' | 'iptables', netns: string): Promise<BackendFigures> {
  const exec = hostExec(netns);
  const make = (): ProxyBackend =>
    mode === 'nftables'
      ? nftablesBackend({ clusterCIDR: CLUSTER_CIDR, serviceCIDR: SERVICE_CIDR, exec, table: 'skiff-bench' })
      : iptablesBackend({ clusterCIDR: CLUSTER_CIDR, serviceCIDR: SERVICE_CIDR, exec });
  const fullSyncMs: Record<string, number> = {};
  let backend = make();
  for (const n of [1000, 10_000]) {
    backend = make();
    await backend.cleanup().catch(() => undefined);
    const ports = portsOf(n);
    fullSyncMs[String(n)] = await timed(() => backend.sync(ports));
    console.log(`${mode}: full sync of ${n} services: ${fullSyncMs[String(n)]} ms`);
  }
  // One endpoint of one Service moves, over and over, at 10,000 Services.
  const ports = portsOf(10_000);
  const runs: number[] = [];
  for (let r = 1; r <= INCREMENTAL_RUNS; r++) {
    const i = (r * 3761) % 10_000;
    const sp = servicePort(i, r);
    ports.set(sp.key, sp);
    runs.push(await timed(() => backend.sync(ports, new Set([sp.key]))));
  }
  await backend.cleanup();
  const incrementalMs = median(runs);
  console.log(
    `${mode}: one endpoint change at 10,000 services: ${incrementalMs} ms (runs: ${runs.join(', ')})`,
  );
  return { fullSyncMs, incrementalMs, incrementalRunsMs: runs };
}

/** iptables-restore of 6,000 rules into one chain: the anchor the issue names (about 0.2 s here). */
async function anchor(netns: string): Promise<number> {
  const exec = hostExec(netns);
  const lines = ['*filter', ':ANCHOR - [0:0]'];
  for (let i = 0; i < 6000; i++)
    lines.push(`-A ANCHOR -d 10.43.${(i >> 8) & 255}.${i & 255}/32 -p tcp -m tcp --dport 80 -j ACCEPT`);
  lines.push('COMMIT', '');
  const ms = await timed(() => exec('iptables-restore', ['-w', '--noflush'], lines.join('\n')));
  await exec('iptables-restore', ['-w', '--noflush'], '*filter\n:ANCHOR - [0:0]\n-X ANCHOR\nCOMMIT\n');
  console.log(`anchor: iptables-restore of 6,000 rules: ${ms} ms`);
  return ms;
}

const netns = `skq-bench-${randomBytes(3).toString('hex')}`;
spawnSync('ip', ['netns', 'add', netns]);
try {
  await hostExec(netns)('ip', ['link', 'set', 'lo', 'up']);
  const anchorMs = await anchor(netns);
  const nftables = await measure('nftables', netns);
  // PROXY_BENCH_NFT_ONLY=1 skips the slow iptables figures while iterating.
  const iptables = process.env.PROXY_BENCH_NFT_ONLY ? undefined : await measure('iptables', netns);
  writeResult(
    'proxy',
    { metric: 'incremental change at 10,000 services, nftables', value: nftables.incrementalMs, unit: 'ms' },
    {
      goal: { incrementalMs: 50 },
      anchor: { iptablesRestore6000RulesMs: anchorMs },
      rawPath:
        'iptables-restore of 6,000 plain rules into one chain, in the same run and namespace (the anchor; not the same ruleset)',
      // Skiff's full nftables sync of 10,000 Services against the raw restore.
      ratio: ratio(nftables.fullSyncMs['10000'] ?? Number.NaN, anchorMs),
      nftables,
      iptables,
      note: 'each Service has 2 endpoints; a third are NodePorts; all in a network namespace of its own',
    },
  );
} finally {
  spawnSync('ip', ['netns', 'del', netns]);
}
