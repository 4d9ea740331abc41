// The node's own cost and its eviction latency (issue 22, "Benchmarks"), on
// one real node: `skiff server` (control plane only) and `skiff agent` (the
// kubelet on its own containerd) as separate processes.
//
//   idle      110 busybox pods running (upstream's default max-pods), then a
//             fixed window in which nothing changes: the CPU seconds the agent
//             process (the kubelet, with the node's proxy and DNS beside it)
//             and that node's containerd spend, and their RSS. Headline: the
//             agent's CPU seconds over containerd's; the goal is below 1.
//   churn     the same window with 10 pods a minute replaced (one deleted and
//             a new one created every 6 s): the same two CPU figures.
//   eviction  kubepods capped at 1 GiB (--system-reserved), a hard threshold
//             memory.available<300Mi, and a pod that fills a memory-backed
//             emptyDir past it: the time from the moment kubepods' working set
//             crosses the threshold (read by this process from the cgroup
//             every 50 ms) to the pod reported Failed/Evicted. The goal is
//             within 2 housekeeping intervals (upstream's 10 s by default).
//
// Needs root and what scripts/setup.sh installs. `npm run bench -- node`
// [--pods N] [--window SECONDS] [--keep].

import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { clientsFromKubeconfig } from '../src/agent/agent.ts';
import { unmountUnder } from '../src/agent/containerd.ts';
import type { Pod } from '../src/api/types/core-v1.ts';
import { createCgroupManager } from '../src/kubelet/cm/cgroup-manager.ts';
import { criRuntime } from '../src/kubelet/runtime/cri/cri.ts';
import { ratio, round, writeResult } from './lib.ts';

const { values } = parseArgs({
  args: process.argv.slice(3),
  options: {
    pods: { type: 'string', default: '110' },
    window: { type: 'string', default: '60' },
    keep: { type: 'boolean', default: false },
    // Writes a V8 CPU profile of the agent (node --cpu-prof) into this dir.
    'profile-agent': { type: 'string' },
  },
});
const PODS = Number(values.pods);
const WINDOW_S = Number(values.window);
const CLUSTER_CIDR = '10.198.0.0/16';
const NODE = 'bench-node';
const NAMESPACE = 'default';
const HOUSEKEEPING_S = 10;
const KUBEPODS_BYTES = 1024 * 1024 * 1024;
const THRESHOLD_BYTES = 300 * 1024 * 1024;
const CGROUP_ROOT = `/skiff-bench-node-${process.pid}`;

const root = new URL('../', import.meta.url).pathname;
const main = join(root, 'src/cli/main.ts');
const dataDir = await mkdtemp('/tmp/skiff-bench-node-');
const agentDir = join(dataDir, 'node');
const socket = join(agentDir, 'agent', 'containerd', 'containerd.sock');
const children: ChildProcess[] = [];
const cgroups = createCgroupManager();

function start(
  name: string,
  args: string[],
  ready: (out: string) => boolean,
  nodeArgs: string[] = [],
): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...nodeArgs, main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  const log = createWriteStream(join(dataDir, `${name}.log`));
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      log.write(d);
      if (out.length < 1_000_000) out += d;
      if (ready(out)) resolve(child);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}):\n${out.slice(-5000)}`)));
    setTimeout(() => reject(new Error(`${name} did not start in 120 s`)), 120_000).unref();
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / 100;
}

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return round(Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) / 1024, 1);
}

async function containerdPid(): Promise<number | undefined> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.startsWith('containerd\0') && cmdline.includes(agentDir)) return Number(entry);
  }
  return undefined;
}

const pod = (name: string, extra: Partial<NonNullable<Pod['spec']>> = {}, command = 'sleep 36000'): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: NAMESPACE, labels: { app: 'bench-node' } },
  spec: {
    nodeName: NODE,
    terminationGracePeriodSeconds: 1,
    containers: [
      {
        name: 'c',
        image: 'busybox',
        imagePullPolicy: 'Never',
        command: ['sh', '-c', command],
        ...extra.containers?.[0],
      },
    ],
    ...(extra.volumes ? { volumes: extra.volumes } : {}),
  },
});

// A port nothing listens on now (a random one collided with another listener once).
const port = await new Promise<number>((resolve, reject) => {
  const srv = createServer();
  srv.once('error', reject);
  srv.listen(0, '127.0.0.1', () => {
    const p = (srv.address() as AddressInfo).port;
    srv.close(() => resolve(p));
  });
});
let ok = false;
try {
  console.log(`node: ${PODS} idle pods on one node, then an eviction; data in ${dataDir}`);
  await start(
    'server',
    [
      'server',
      '--data-dir',
      dataDir,
      '--https-listen-port',
      String(port),
      '--bind-address',
      '127.0.0.1',
      '--cluster-cidr',
      CLUSTER_CIDR,
      '--disable-agent',
    ],
    (out) => out.includes('apiserver listening'),
  );
  const agent = await start(
    'agent',
    [
      'agent',
      '--kubeconfig',
      join(dataDir, 'agent-kubeconfig.yaml'),
      '--data-dir',
      agentDir,
      '--node-name',
      NODE,
      '--cluster-cidr',
      CLUSTER_CIDR,
      '--kubelet-arg',
      `cgroup-root=${CGROUP_ROOT}`,
      '--kubelet-arg',
      `max-pods=${PODS + 10}`,
      '--kubelet-arg',
      `system-reserved=memory=${totalmem() - KUBEPODS_BYTES}`,
      '--kubelet-arg',
      `eviction-hard=memory.available<${THRESHOLD_BYTES},nodefs.available<1%,imagefs.available<1%,nodefs.inodesFree<1%`,
      '--kubelet-arg',
      `housekeeping-interval=${HOUSEKEEPING_S}s`,
    ],
    (out) => out.includes('agent started'),
    values['profile-agent'] ? ['--cpu-prof', `--cpu-prof-dir=${values['profile-agent']}`] : [],
  );
  const clients = clientsFromKubeconfig(join(dataDir, 'kubeconfig.yaml'));
  for (let i = 0; ; i++) {
    const node = await clients.nodes.get(undefined, NODE).catch(() => undefined);
    if (node?.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True') break;
    if (i > 600) throw new Error('the node did not become Ready in 60 s');
    await delay(100);
  }
  const ctrd = await containerdPid();
  if (!ctrd) throw new Error("the node's containerd was not found");

  // 110 pods, a few at a time (the kubelet and containerd start them as fast as they can).
  const names = Array.from({ length: PODS }, (_, i) => `idle-${i}`);
  const startedAt = performance.now();
  for (let i = 0; i < names.length; i += 10) {
    await Promise.all(names.slice(i, i + 10).map((n) => clients.pods.create(NAMESPACE, pod(n))));
  }
  for (let i = 0; ; i++) {
    const pods = (await clients.pods.list(NAMESPACE, { labelSelector: 'app=bench-node' })).items;
    const running = pods.filter((p) => p.status?.phase === 'Running').length;
    if (running >= PODS) break;
    if (i > 600) throw new Error(`${running} of ${PODS} pods Running after 10 min`);
    await delay(1000);
  }
  const allRunningS = round((performance.now() - startedAt) / 1000, 1);
  console.log(`${PODS} pods Running in ${allRunningS} s; settling`);
  // Let the last starts' status writes, relists and events finish.
  await delay(20_000);

  const before = { agent: await cpuSeconds(agent.pid!), containerd: await cpuSeconds(ctrd) };
  const t0 = performance.now();
  await delay(WINDOW_S * 1000);
  const windowS = (performance.now() - t0) / 1000;
  const idle = {
    agentCpuSeconds: round((await cpuSeconds(agent.pid!)) - before.agent, 2),
    containerdCpuSeconds: round((await cpuSeconds(ctrd)) - before.containerd, 2),
    windowSeconds: round(windowS, 1),
    agentRssMiB: await rssMiB(agent.pid!),
    containerdRssMiB: await rssMiB(ctrd),
  };
  const idleRatio = ratio(idle.agentCpuSeconds, Math.max(0.01, idle.containerdCpuSeconds));
  console.log(
    `idle ${idle.windowSeconds} s: agent ${idle.agentCpuSeconds} CPU s, containerd ${idle.containerdCpuSeconds} CPU s (ratio ${idleRatio}); RSS agent ${idle.agentRssMiB} MiB, containerd ${idle.containerdRssMiB} MiB`,
  );

  // Churn: 10 pods a minute replaced, over the same window.
  const churnBefore = { agent: await cpuSeconds(agent.pid!), containerd: await cpuSeconds(ctrd) };
  const churnStart = performance.now();
  const perMinute = 10;
  let replaced = 0;
  for (let i = 0; performance.now() - churnStart < WINDOW_S * 1000; i++) {
    const next = churnStart + ((i + 1) * 60_000) / perMinute;
    await clients.pods
      .delete(NAMESPACE, `idle-${i % PODS}`, { gracePeriodSeconds: 1 })
      .catch(() => undefined);
    await clients.pods.create(NAMESPACE, pod(`churn-${i}`));
    replaced++;
    const wait = next - performance.now();
    const left = WINDOW_S * 1000 - (performance.now() - churnStart);
    if (wait > 0 && left > 0) await delay(Math.min(wait, left));
  }
  const churnWindowS = (performance.now() - churnStart) / 1000;
  const churn = {
    agentCpuSeconds: round((await cpuSeconds(agent.pid!)) - churnBefore.agent, 2),
    containerdCpuSeconds: round((await cpuSeconds(ctrd)) - churnBefore.containerd, 2),
    windowSeconds: round(churnWindowS, 1),
    podsReplaced: replaced,
  };
  const churnRatio = ratio(churn.agentCpuSeconds, Math.max(0.01, churn.containerdCpuSeconds));
  console.log(
    `churn ${churn.windowSeconds} s (${replaced} pods replaced): agent ${churn.agentCpuSeconds} CPU s, containerd ${churn.containerdCpuSeconds} CPU s (ratio ${churnRatio})`,
  );

  // Eviction: a pod fills 800 MiB of memory-backed emptyDir; kubepods is capped at 1 GiB.
  const kubepods = `${CGROUP_ROOT}/kubepods`;
  const kubepodsWorkingSetBefore = (await cgroups.memoryWorkingSet(kubepods)) ?? 0;
  const fillMiB =
    Math.ceil((KUBEPODS_BYTES - THRESHOLD_BYTES - kubepodsWorkingSetBefore) / 1024 / 1024) + 100;
  await clients.pods.create(
    NAMESPACE,
    pod(
      'filler',
      {
        containers: [{ name: 'c', volumeMounts: [{ name: 'm', mountPath: '/m' }] }],
        volumes: [{ name: 'm', emptyDir: { medium: 'Memory' } }],
      },
      `dd if=/dev/zero of=/m/fill bs=1M count=${fillMiB}; sleep 36000`,
    ),
  );
  let crossedAt: number | undefined;
  let evictedAt: number | undefined;
  let evictedPod: Pod | undefined;
  const deadline = performance.now() + 120_000;
  while (evictedAt === undefined && performance.now() < deadline) {
    const ws = await cgroups.memoryWorkingSet(kubepods);
    if (crossedAt === undefined && ws !== undefined && KUBEPODS_BYTES - ws < THRESHOLD_BYTES)
      crossedAt = performance.now();
    if (crossedAt !== undefined) {
      const p = await clients.pods.get(NAMESPACE, 'filler');
      if (p.status?.phase === 'Failed') {
        evictedAt = performance.now();
        evictedPod = p;
      }
    }
    await delay(50);
  }
  if (crossedAt === undefined || evictedAt === undefined)
    throw new Error('the filler pod was not evicted in 120 s');
  const evictionS = round((evictedAt - crossedAt) / 1000, 2);
  const victims = (await clients.pods.list(NAMESPACE, { labelSelector: 'app=bench-node' })).items.filter(
    (p) => p.status?.reason === 'Evicted',
  );
  console.log(
    `eviction: ${evictionS} s from the threshold crossed to the pod Failed (${round(evictionS / HOUSEKEEPING_S, 2)} housekeeping intervals); reason ${evictedPod?.status?.reason}; pods evicted: ${victims.map((p) => p.metadata.name).join(', ')}`,
  );

  // Everything goes, through the kubelet.
  const all = (await clients.pods.list(NAMESPACE, { labelSelector: 'app=bench-node' })).items;
  await Promise.all(
    all.map((p) => clients.pods.delete(NAMESPACE, p.metadata.name ?? '').catch(() => undefined)),
  );
  const cri = criRuntime(`unix://${socket}`);
  for (let i = 0; (await cri.listPodSandbox()).length > 0; i++) {
    if (i > 1800) throw new Error('the kubelet did not remove the sandboxes in 180 s');
    await delay(100);
  }
  await cri.close();
  clients.close();

  writeResult(
    'node',
    {
      metric: `agent CPU seconds / containerd CPU seconds, ${PODS} idle pods`,
      value: idleRatio,
      unit: 'ratio',
    },
    {
      goal: 'below 1: the kubelet uses less CPU than containerd at 110 idle pods',
      pods: PODS,
      allRunningSeconds: allRunningS,
      idle,
      churn: { ...churn, ratio: churnRatio },
      eviction: {
        secondsFromThresholdToEvicted: evictionS,
        housekeepingIntervalSeconds: HOUSEKEEPING_S,
        housekeepingIntervals: round(evictionS / HOUSEKEEPING_S, 2),
        goal: 'within 2 housekeeping intervals',
        kubepodsLimitMiB: KUBEPODS_BYTES / 1024 / 1024,
        thresholdMiB: THRESHOLD_BYTES / 1024 / 1024,
        filledMiB: fillMiB,
        podsEvicted: victims.map((p) => p.metadata.name),
        message: evictedPod?.status?.message,
      },
      notes:
        'The agent process holds the kubelet and the node proxy, DNS and network policy; containerd is the node’s containerd process (not its shims).',
    },
  );
  ok = true;
} finally {
  if (!ok && existsSync(socket)) {
    const cri = criRuntime(`unix://${socket}`);
    for (const sb of await cri.listPodSandbox().catch(() => [])) {
      for (const c of await cri.listContainers({ podSandboxId: sb.id }).catch(() => [])) {
        await cri.stopContainer(c.id, 0).catch(() => undefined);
        await cri.removeContainer(c.id).catch(() => undefined);
      }
      await cri.stopPodSandbox(sb.id).catch(() => undefined);
      await cri.removePodSandbox(sb.id).catch(() => undefined);
    }
    await cri.close();
  }
  for (const child of children.reverse()) await stop(child);
  await unmountUnder(dataDir).catch(() => undefined);
  await cgroups.destroy(CGROUP_ROOT).catch(() => undefined);
  if (!values.keep) {
    const { rm } = await import('node:fs/promises');
    await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
  } else console.log(`kept ${dataDir}`);
}
process.exit(ok ? 0 : 1);
