// Pod startup latency on one real node (issue 6, "Benchmark"): `skiff
// server` (control plane only) and `skiff agent` (the kubelet on containerd)
// as separate processes, as on a real cluster, with the image already on
// the node. Each pod's startup latency runs from just before its create
// request until a watch sees it Running: upstream's pod startup SLI
// (scheduling included, image pulls excluded;
// https://github.com/kubernetes/community/blob/master/sig-scalability/slos/pod_startup_latency.md).
// Upstream's SLO is p99 ≤ 5 s; Skiff's goal is p99 ≤ 1 s.
//
// Two phases of 30 pods:
//   paced  one pod every 200 ms (5 pods/s), as ClusterLoader2 creates the
//          latency pods the SLO is measured on; the headline;
//   burst  all 30 at once, as a Deployment scaled from 0 to 30: on a small
//          machine this is bound by containerd, runc and CNI, which the raw
//          CRI figures show.
// For scale, each phase is also run straight through the CRI client against
// the agent's containerd (RunPodSandbox + CreateContainer + StartContainer,
// same pacing); the ratio is what the control plane and the kubelet add.
// The raw requests are the ones the kubelet sends for the bench's pod (the
// same sandbox: pod network, cluster DNS, namespaces; the same image as
// written, command, environment, namespaces and BestEffort resources), less
// the kubelet's own labels and annotations, so the ratio does not count the
// pod's own configuration as the kubelet's overhead. The paced raw run goes
// once before and once after Skiff's, and its figures are the 2 × N pods
// together, so a machine that gets busier or quieter meanwhile (it is
// shared) weighs on both sides alike.
//
// Also reported: the agent process's RSS with the 30 pods running (and
// containerd's and the shims' beside it, for the whole node's cost), and the
// CPU seconds agent, server and containerd (and the whole machine, which
// includes runc, the shims and CNI) spent on each phase.
//
// Needs root and what scripts/setup.sh installs. `npm run bench -- pod-startup`
// [--pods N] [--qps N] [--profile-agent DIR] [--keep].

import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { clientsFromKubeconfig } from '../src/agent/agent.ts';
import { unmountUnder } from '../src/agent/containerd.ts';
import type { Pod } from '../src/api/types/core-v1.ts';
import { criRuntime } from '../src/kubelet/runtime/cri/cri.ts';
import type { ContainerConfig, PodSandboxConfig } from '../src/kubelet/runtime/runtime.ts';
import { STARTUP_PHASE_MSG } from '../src/kubelet/startup-trace.ts';
import { percentile, ratio, round, writeResult } from './lib.ts';

const { values } = parseArgs({
  args: process.argv.slice(3),
  options: {
    pods: { type: 'string', default: '30' },
    // The paced phase's creation rate (ClusterLoader2 creates its latency pods at 5/s).
    qps: { type: 'string', default: '5' },
    // Writes a V8 CPU profile of the agent (node --cpu-prof) into this dir.
    'profile-agent': { type: 'string' },
    // Keeps the data dir, with server.log and agent.log, for a look afterwards.
    keep: { type: 'boolean', default: false },
  },
});
const PODS = Number(values.pods);
const QPS = Number(values.qps);
// As the pods name it (the node has docker.io/library/busybox:latest).
const IMAGE = 'busybox';
// A pod range of the benchmark's own, apart from the default 10.42.0.0/16
// another Skiff on this machine may be using.
const CLUSTER_CIDR = '10.79.0.0/16';
const NODE = 'bench-node';
const NAMESPACE = 'default';

const root = new URL('../', import.meta.url).pathname;
const main = join(root, 'src/cli/main.ts');
const dataDir = await mkdtemp('/tmp/skiff-bench-pod-startup-');
const agentDir = join(dataDir, 'node');
const children: ChildProcess[] = [];
const socket = join(agentDir, 'agent', 'containerd', 'containerd.sock');

function start(
  name: string,
  args: string[],
  ready: (out: string) => boolean,
  nodeArgs: string[] = [],
  env: Record<string, string> = {},
): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...nodeArgs, main, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  children.push(child);
  let out = '';
  const log = createWriteStream(join(dataDir, `${name.replace(/^skiff /, '')}.log`));
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      log.write(d);
      if (out.length < 1_000_000) out += d;
      if (ready(out)) resolve(child);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}):\n${out}`)));
    setTimeout(() => reject(new Error(`${name} did not start in 120 s:\n${out}`)), 120_000).unref();
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

/** Resident set size of a process in MiB (VmRSS), or 0 when it is gone. */
async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
  return round(kb / 1024, 1);
}

/** CPU seconds a process has used so far (user + system, from /proc/PID/stat). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat(5); the slice starts at field 3.
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / 100;
}

/** CPU seconds the whole machine has been busy (every CPU's non-idle time, from /proc/stat). */
async function machineBusySeconds(): Promise<number> {
  const stat = await readFile('/proc/stat', 'utf8');
  const [, ...ticks] = (stat.split('\n')[0] ?? '').trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
  const busy = ticks.slice(0, 8).reduce((a, b, i) => (i === 3 || i === 4 ? a : a + b), 0);
  return busy / 100;
}

/** PIDs whose command line mentions `needle` (containerd and its shims name their socket). */
async function pidsWith(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(needle)) pids.push(Number(entry));
  }
  return pids;
}

const summary = (ms: number[]) => ({
  p50: round(percentile(ms, 50) / 1000, 3),
  p99: round(percentile(ms, 99) / 1000, 3),
  max: round(Math.max(...ms) / 1000, 3),
});

const port = 46000 + Math.floor(Math.random() * 1000);
let ok = false;
try {
  console.log(`pod-startup: ${PODS} pods on one node (busybox, image present), data in ${dataDir}`);
  await start(
    'skiff server',
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
    'skiff agent',
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
    ],
    (out) => out.includes('agent started'),
    values['profile-agent'] ? ['--cpu-prof', `--cpu-prof-dir=${values['profile-agent']}`] : [],
    // The kubelet's pod startup phases (src/kubelet/startup-trace.ts) are debug lines.
    { SKIFF_LOG_LEVEL: 'debug' },
  );
  const clients = clientsFromKubeconfig(join(dataDir, 'kubeconfig.yaml'));
  for (let i = 0; ; i++) {
    const node = await clients.nodes.get(undefined, NODE).catch(() => undefined);
    if (node?.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True') break;
    if (i > 600) throw new Error('the node did not become Ready in 60 s');
    await delay(100);
  }
  const cri = criRuntime(`unix://${socket}`);
  const [server] = children;
  const containerdPid = (await pidsWith(agentDir)).find((pid) =>
    readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('containerd\0'),
  );
  /** CPU seconds so far: agent, server, containerd, this process (the raw CRI client), the machine. */
  const cpu = async () => ({
    agent: await cpuSeconds(agent.pid!),
    server: await cpuSeconds(server!.pid!),
    containerd: containerdPid ? await cpuSeconds(containerdPid) : 0,
    bench: await cpuSeconds(process.pid),
    machine: await machineBusySeconds(),
  });
  type Cpu = Awaited<ReturnType<typeof cpu>>;
  const cpuSince = (a: Cpu, b: Cpu): Cpu => ({
    agent: round(b.agent - a.agent),
    server: round(b.server - a.server),
    containerd: round(b.containerd - a.containerd),
    bench: round(b.bench - a.bench),
    machine: round(b.machine - a.machine),
  });
  const idleRSS = await rssMiB(agent.pid!);
  // The service links the kubelet puts in every container of the namespace (the master service's).
  const master = await clients.services.get('default', 'kubernetes');
  const masterIP = master.spec?.clusterIP ?? '';
  const masterPort = String(master.spec?.ports?.[0]?.port ?? 443);
  const serviceEnv = [
    ['KUBERNETES_SERVICE_HOST', masterIP],
    ['KUBERNETES_SERVICE_PORT', masterPort],
    ['KUBERNETES_SERVICE_PORT_HTTPS', masterPort],
    ['KUBERNETES_PORT', `tcp://${masterIP}:${masterPort}`],
    [`KUBERNETES_PORT_${masterPort}_TCP`, `tcp://${masterIP}:${masterPort}`],
    [`KUBERNETES_PORT_${masterPort}_TCP_PROTO`, 'tcp'],
    [`KUBERNETES_PORT_${masterPort}_TCP_PORT`, masterPort],
    [`KUBERNETES_PORT_${masterPort}_TCP_ADDR`, masterIP],
  ].map(([key, value]) => ({ key: key!, value: value! }));

  // --- containerd alone: sandbox + container + start, through CRI -------------------------
  // No kubelet labels on these, so the agent's housekeeping leaves them be.
  const logRoot = join(dataDir, 'raw-logs');
  const rawPod = async (i: number): Promise<{ ms: number; sandboxId: string; steps: number[] }> => {
    const uid = `raw-${i}-${Date.now()}`;
    const namespaceOptions = { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } as const;
    const sandbox: PodSandboxConfig = {
      metadata: { name: `raw-${i}`, namespace: 'bench', uid, attempt: 0 },
      hostname: `raw-${i}`,
      logDirectory: join(logRoot, uid),
      // A ClusterFirst pod's resolv.conf (the default DNS service address and domain).
      dnsConfig: {
        servers: ['10.43.0.10'],
        searches: ['bench.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
        options: ['ndots:5'],
      },
      portMappings: [],
      labels: { 'skiff.bench/raw': 'true' },
      linux: {
        securityContext: {
          namespaceOptions,
          seccomp: { profileType: 'RuntimeDefault' },
        },
      },
    };
    const container: ContainerConfig = {
      metadata: { name: 'main', attempt: 0 },
      // The kubelet passes the image as the pod spec writes it.
      image: { image: IMAGE },
      command: ['sleep', '3600'],
      envs: serviceEnv,
      mounts: [],
      logPath: 'main/0.log',
      linux: {
        // A BestEffort container (upstream: minimum CPU shares, oom_score_adj 1000).
        resources: { cpuShares: 2, oomScoreAdj: 1000 },
        securityContext: { namespaceOptions, seccomp: { profileType: 'RuntimeDefault' } },
      },
    };
    await mkdir(join(logRoot, uid, 'main'), { recursive: true });
    const t = performance.now();
    const sandboxId = await cri.runPodSandbox(sandbox);
    const t1 = performance.now();
    const id = await cri.createContainer(sandboxId, container, sandbox);
    const t2 = performance.now();
    await cri.startContainer(id);
    const t3 = performance.now();
    return { ms: t3 - t, sandboxId, steps: [t1 - t, t2 - t1, t3 - t2] };
  };
  const removeRaw = async (sandboxIds: string[]) => {
    await Promise.all(
      sandboxIds.map(async (id) => {
        for (const c of await cri.listContainers({ podSandboxId: id })) {
          await cri.stopContainer(c.id, 0);
          await cri.removeContainer(c.id);
        }
        await cri.stopPodSandbox(id);
        await cri.removePodSandbox(id);
      }),
    );
  };
  // One pod first, so the first-ever sandbox (snapshots, CNI) is not in the figures.
  await removeRaw([(await rawPod(-1)).sandboxId]);
  // Paced: one pod every 1/QPS seconds (here, and again after Skiff's paced pods); burst: all at once.
  const runRawPaced = async (first: number) => {
    const before = await cpu();
    const pods = await Promise.all(
      Array.from({ length: PODS }, async (_, i) => {
        await delay((i * 1000) / QPS);
        return rawPod(first + i);
      }),
    );
    const used = cpuSince(before, await cpu());
    await removeRaw(pods.map((r) => r.sandboxId));
    return { pods, cpu: used };
  };
  const rawPacedBefore = await runRawPaced(0);
  const rawBurst = await Promise.all(Array.from({ length: PODS }, (_, i) => rawPod(2 * PODS + i)));
  await removeRaw(rawBurst.map((r) => r.sandboxId));

  // --- the same through Skiff: create → scheduled → kubelet → Running, seen on a watch ---
  const created = new Map<string, number>();
  const runningAt = new Map<string, number>();
  // When the watch first saw the pod bound to the node, and each pod's uid.
  const scheduledAt = new Map<string, number>();
  const uids = new Map<string, string>();
  // Resolved when the pods of the batch in flight are all Running.
  let batch: { names: Set<string>; done: () => void } | undefined;
  const watch = clients.pods.watch(
    NAMESPACE,
    { labelSelector: 'app=pod-startup' },
    (e) => {
      const pod = e.object as Pod;
      const name = pod.metadata.name ?? '';
      if (pod.spec?.nodeName && !scheduledAt.has(name)) scheduledAt.set(name, performance.now());
      if (pod.status?.phase !== 'Running' || runningAt.has(name)) return;
      runningAt.set(name, performance.now());
      if (batch && [...batch.names].every((n) => runningAt.has(n))) batch.done();
    },
    () => {},
  );
  const podSpec = (name: string): Pod => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: 'pod-startup' } },
    spec: {
      // sleep ignores SIGTERM: the kubelet kills it a second after the deletion.
      terminationGracePeriodSeconds: 1,
      containers: [
        { name: 'main', image: IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sleep', '3600'] },
      ],
    },
  });
  /** Creates the pods (`qps` a second, or all at once) and waits until the watch has seen each Running. */
  const run = async (names: string[], qps?: number) => {
    const allRunning = new Promise<void>((done) => (batch = { names: new Set(names), done }));
    await Promise.all(
      names.map(async (name, i) => {
        if (qps) await delay((i * 1000) / qps);
        created.set(name, performance.now());
        const made = await clients.pods.create(NAMESPACE, podSpec(name));
        uids.set(made.metadata.uid ?? '', name);
      }),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      allRunning,
      new Promise((_, reject) => {
        timer = setTimeout(() => {
          const missing = names.filter((n) => !runningAt.has(n));
          reject(new Error(`${missing.length} of ${names.length} pods not Running after 120 s`));
        }, 120_000);
      }),
    ]).finally(() => clearTimeout(timer));
  };
  const latencies = (names: string[]) => names.map((n) => runningAt.get(n)! - created.get(n)!);
  const deleteAll = async () => {
    const names = (await clients.pods.list(NAMESPACE, { labelSelector: 'app=pod-startup' })).items.map(
      (p) => p.metadata.name ?? '',
    );
    // Graceful deletions: the kubelet stops the containers and then finishes
    // the deletion through the API.
    await Promise.all(names.map((n) => clients.pods.delete(NAMESPACE, n)));
    for (let i = 0; ; i++) {
      const left = (await clients.pods.list(NAMESPACE, { labelSelector: 'app=pod-startup' })).items;
      if (left.length === 0) break;
      if (i > 1200) throw new Error(`${left.length} pods not gone after 120 s`);
      await delay(100);
    }
  };
  // Once a pod is gone from the API the kubelet removes its containers and
  // sandbox, which keeps containerd busy for a while: the next phase, and the
  // agent's shutdown, wait for that, so no phase measures the last one's
  // clean-up and no container outlives the benchmark.
  const runtimeEmpty = async () => {
    for (let i = 0; (await cri.listPodSandbox()).length > 0; i++) {
      if (i > 600) throw new Error('the kubelet did not remove the sandboxes of deleted pods in 60 s');
      await delay(100);
    }
  };

  // A first pod, for the same reason as above.
  await run(['warmup']);
  const [warmupMs] = latencies(['warmup']);
  await deleteAll();
  await runtimeEmpty();

  // Paced, as ClusterLoader2 creates the latency pods its pod startup SLO is
  // measured on (at 5 pods/s): the headline.
  const paced = Array.from({ length: PODS }, (_, i) => `paced-${i}`);
  const pacedCpuBefore = await cpu();
  await run(paced, QPS);
  const pacedCpu = cpuSince(pacedCpuBefore, await cpu());
  const pacedMs = latencies(paced);
  let t = performance.now();
  await deleteAll();
  const deletePacedMs = performance.now() - t;
  await runtimeEmpty();
  const cleanPacedMs = performance.now() - t;
  const rawPacedAfter = await runRawPaced(PODS * 3);
  const rawPaced = [...rawPacedBefore.pods, ...rawPacedAfter.pods];

  // All at once, as a Deployment scaled from 0 to 30 would: how the node copes with a burst.
  const burst = Array.from({ length: PODS }, (_, i) => `burst-${i}`);
  const cpuBefore = await cpu();
  t = performance.now();
  await run(burst);
  const wallMs = performance.now() - t;
  const cpuUsed = cpuSince(cpuBefore, await cpu());
  const burstMs = latencies(burst);
  watch.stop();

  // The node's footprint with the pods running, after a moment to settle.
  await delay(3000);
  const agentRSS = await rssMiB(agent.pid!);
  let containerdRSS = 0;
  let shimsRSS = 0;
  // containerd names its config under the agent's dir, the shims its socket.
  for (const pid of await pidsWith(agentDir)) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.startsWith('containerd\0')) containerdRSS += await rssMiB(pid);
    else if (cmd.includes('containerd-shim')) shimsRSS += await rssMiB(pid);
  }

  t = performance.now();
  await deleteAll();
  const deleteBurstMs = performance.now() - t;
  clients.close();
  await runtimeEmpty();
  const cleanBurstMs = performance.now() - t;
  await cri.close();

  const pacedPhases = await phaseBreakdown(paced, uids, created, scheduledAt, runningAt);
  const p = summary(pacedMs);
  const b = summary(burstMs);
  const rp = summary(rawPaced.map((r) => r.ms));
  const rpBefore = summary(rawPacedBefore.pods.map((r) => r.ms));
  const rpAfter = summary(rawPacedAfter.pods.map((r) => r.ms));
  // The same three CRI calls, made straight, for the kubelet's beside them.
  const rawSteps = (k: number) => {
    const ms = rawPaced.map((r) => r.steps[k] ?? 0);
    return { p50: round(percentile(ms, 50), 0), p99: round(percentile(ms, 99), 0) };
  };
  const rawPacedStepsMs = {
    'CRI RunPodSandbox': rawSteps(0),
    'CRI CreateContainer': rawSteps(1),
    'CRI StartContainer': rawSteps(2),
  };
  const rb = summary(rawBurst.map((r) => r.ms));
  const sec = (ms: number) => round(ms / 1000, 3);
  const line = (label: string, x: ReturnType<typeof summary>) =>
    console.log(`  ${label.padEnd(36)} p50 ${x.p50} s   p99 ${x.p99} s   max ${x.max} s`);
  console.log(`\nfirst pod on the node (not counted): ${sec(warmupMs!)} s`);
  console.log(`${PODS} pods created at ${QPS} pods/s:`);
  line('skiff  create → Running (watch)', p);
  line(`raw CRI sandbox+create+start (${2 * PODS})`, rp);
  line('  of which the run before skiff', rpBefore);
  line('  and the run after', rpAfter);
  console.log(
    `  ratio skiff / raw CRI:               p50 ${ratio(p.p50, rp.p50)}   p99 ${ratio(p.p99, rp.p99)}`,
  );
  const cpuLine = (c: Cpu) =>
    `agent ${c.agent}, server ${c.server}, containerd ${c.containerd}, bench ${c.bench}, whole machine ${c.machine}`;
  console.log(`  CPU seconds, skiff: ${cpuLine(pacedCpu)}`);
  console.log(`  CPU seconds, raw before: ${cpuLine(rawPacedBefore.cpu)}`);
  console.log(`  CPU seconds, raw after: ${cpuLine(rawPacedAfter.cpu)}`);
  console.log(
    `  deleted in ${sec(deletePacedMs)} s, containers and sandboxes removed in ${sec(cleanPacedMs)} s`,
  );
  console.log("  where the paced pods' time goes (ms between steps, p50 / p99):");
  for (const [step, v] of Object.entries(pacedPhases)) {
    console.log(`    ${step.padEnd(34)} ${v.p50} / ${v.p99}`);
  }
  for (const [step, v] of Object.entries(rawPacedStepsMs)) {
    console.log(`    raw ${step.padEnd(30)} ${v.p50} / ${v.p99}`);
  }
  console.log(`${PODS} pods created at once:`);
  line('skiff  create → Running (watch)', b);
  line('raw CRI sandbox+create+start', rb);
  console.log(
    `  ratio skiff / raw CRI:               p50 ${ratio(b.p50, rb.p50)}   p99 ${ratio(b.p99, rb.p99)}`,
  );
  console.log(
    `  first create → last Running ${sec(wallMs)} s; CPU seconds meanwhile: agent ${cpuUsed.agent}, server ${cpuUsed.server}, containerd ${cpuUsed.containerd}`,
  );
  console.log(
    `  deleted in ${sec(deleteBurstMs)} s, containers and sandboxes removed in ${sec(cleanBurstMs)} s`,
  );
  console.log(`agent RSS: ${idleRSS} MiB idle, ${agentRSS} MiB with ${PODS} pods running`);
  console.log(`containerd RSS ${round(containerdRSS, 1)} MiB, shims ${round(shimsRSS, 1)} MiB in all`);
  console.log(`goal p99 ≤ 1 s (paced): ${p.p99 <= 1 ? 'met' : 'NOT met'} (upstream SLO p99 ≤ 5 s)`);
  writeResult(
    'pod-startup',
    { metric: 'pod startup p99', value: p.p99, unit: 's' },
    {
      pods: PODS,
      qps: QPS,
      firstPodSeconds: sec(warmupMs!),
      pacedSeconds: { ...p, delete: sec(deletePacedMs), cleanUp: sec(cleanPacedMs) },
      rawCriPacedSeconds: { ...rp, before: rpBefore, after: rpAfter },
      pacedCpuSeconds: pacedCpu,
      rawCriPacedCpuSeconds: { before: rawPacedBefore.cpu, after: rawPacedAfter.cpu },
      pacedRatio: { p50: ratio(p.p50, rp.p50), p99: ratio(p.p99, rp.p99) },
      pacedPhasesMs: pacedPhases,
      rawCriPacedStepsMs: rawPacedStepsMs,
      burstSeconds: { ...b, wall: sec(wallMs), delete: sec(deleteBurstMs), cleanUp: sec(cleanBurstMs) },
      rawCriBurstSeconds: rb,
      burstRatio: { p50: ratio(b.p50, rb.p50), p99: ratio(b.p99, rb.p99) },
      burstCpuSeconds: cpuUsed,
      rssMiB: {
        agentIdle: idleRSS,
        agentWithPods: agentRSS,
        containerd: round(containerdRSS, 1),
        shims: round(shimsRSS, 1),
      },
      goal: { p99Seconds: 1, met: p.p99 <= 1 },
    },
  );
  ok = true;
} finally {
  // After a failure, whatever still runs is removed through CRI, since the
  // agent leaves containers running when it stops (by design).
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
  // The agent first, then the server; then what containerd mounted under the dir.
  for (const child of children.reverse()) await stop(child);
  await unmountUnder(dataDir).catch(() => undefined);
  if (values.keep) console.log(`kept ${dataDir}`);
  else await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
  if (!ok) process.exitCode = 1;
}

/**
 * Per step of the paced pods' startup, the p50 and p99 of the milliseconds
 * it took: from the bench's clock (create, scheduled, Running on the watch)
 * and the kubelet's debug lines in agent.log (wall-clock timestamps, so the
 * two are joined through the wall clock at the bench's own marks).
 */
async function phaseBreakdown(
  names: string[],
  uids: Map<string, string>,
  created: Map<string, number>,
  scheduledAt: Map<string, number>,
  runningAt: Map<string, number>,
): Promise<Record<string, { p50: number; p99: number }>> {
  // performance.now() → epoch ms.
  const epoch = (t: number) => performance.timeOrigin + t;
  const kubelet = new Map<string, Record<string, number>>();
  const text = await readFile(join(dataDir, 'agent.log'), 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    if (!line.includes(STARTUP_PHASE_MSG)) continue;
    const { ts, uid, phase } = JSON.parse(line) as { ts: string; uid: string; phase: string };
    const name = uids.get(uid);
    if (!name) continue;
    const seen = kubelet.get(name) ?? {};
    // The first of each (statusWritten: the first once the container started).
    if (seen[phase] === undefined && (phase !== 'statusWritten' || seen.containerStarted !== undefined)) {
      seen[phase] = Date.parse(ts);
    }
    kubelet.set(name, seen);
  }
  const steps: [string, string, string][] = [
    ['create → scheduled (watch)', 'created', 'scheduled'],
    ['scheduled → kubelet sees it', 'scheduled', 'seen'],
    ['seen → worker sync starts', 'seen', 'syncStart'],
    ['sync → sandbox requested', 'syncStart', 'sandboxStart'],
    ['sandbox (CRI RunPodSandbox)', 'sandboxStart', 'sandboxReady'],
    ['sandbox → image + config ready', 'sandboxReady', 'containerCreateStart'],
    ['CRI CreateContainer', 'containerCreateStart', 'containerCreated'],
    ['CRI StartContainer', 'containerCreated', 'containerStarted'],
    ['started → status written', 'containerStarted', 'statusWritten'],
    ['status written → Running (watch)', 'statusWritten', 'running'],
  ];
  const out: Record<string, { p50: number; p99: number }> = {};
  for (const [label, from, to] of steps) {
    const ms: number[] = [];
    for (const name of names) {
      const at: Record<string, number | undefined> = {
        ...kubelet.get(name),
        created: epoch(created.get(name) ?? Number.NaN),
        scheduled: epoch(scheduledAt.get(name) ?? Number.NaN),
        running: epoch(runningAt.get(name) ?? Number.NaN),
      };
      const d = (at[to] ?? Number.NaN) - (at[from] ?? Number.NaN);
      if (Number.isFinite(d)) ms.push(d);
    }
    if (ms.length > 0) out[label] = { p50: round(percentile(ms, 50), 0), p99: round(percentile(ms, 99), 0) };
  }
  return out;
}
