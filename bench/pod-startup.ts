// Pod startup latency on one real node (issue 6, "Benchmark"): `skiff
// server` (control plane only) and `skiff agent` (the kubelet on containerd)
// as separate processes, as on a real cluster, with the image already on
// the node. 30 pods are created at once; each pod's startup latency runs
// from just before its create request until a watch sees it Running, which
// is upstream's pod startup SLI (scheduling included, image pulling
// excluded; https://github.com/kubernetes/community/blob/master/sig-scalability/slos/pod_startup_latency.md).
// Upstream's SLO is p99 ≤ 5 s; Skiff's goal is p99 ≤ 1 s.
//
// For scale, the same run measures what containerd alone needs for the same
// work: RunPodSandbox + CreateContainer + StartContainer straight through
// the CRI client, 30 pods at once, against the agent's containerd. The
// ratio of the two is what the control plane and the kubelet add.
//
// Also reported: the agent process's RSS with the 30 pods running (and
// containerd's and the shims' beside it, for the whole node's cost).
//
// Needs root and what scripts/setup.sh installs. `npm run bench -- pod-startup`
// (--pods N to change the count).

import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { clientsFromKubeconfig } from '../src/agent/agent.ts';
import { unmountUnder } from '../src/agent/containerd.ts';
import type { Pod } from '../src/api/types/core-v1.ts';
import { criRuntime } from '../src/kubelet/runtime/cri/cri.ts';
import type { ContainerConfig, PodSandboxConfig } from '../src/kubelet/runtime/runtime.ts';
import { percentile, ratio, round, writeResult } from './lib.ts';

const { values } = parseArgs({
  args: process.argv.slice(3),
  options: {
    pods: { type: 'string', default: '30' },
    // Writes a V8 CPU profile of the agent (node --cpu-prof) into this dir.
    'profile-agent': { type: 'string' },
    // Keeps the data dir, with server.log and agent.log, for a look afterwards.
    keep: { type: 'boolean', default: false },
  },
});
const PODS = Number(values.pods);
const IMAGE = 'docker.io/library/busybox:latest';
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

function start(
  name: string,
  args: string[],
  ready: (out: string) => boolean,
  nodeArgs: string[] = [],
): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...nodeArgs, main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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
  );
  const clients = clientsFromKubeconfig(join(dataDir, 'kubeconfig.yaml'));
  for (let i = 0; ; i++) {
    const node = await clients.nodes.get(undefined, NODE).catch(() => undefined);
    if (node?.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True') break;
    if (i > 600) throw new Error('the node did not become Ready in 60 s');
    await delay(100);
  }
  const socket = join(agentDir, 'agent', 'containerd', 'containerd.sock');
  const cri = criRuntime(`unix://${socket}`);
  const idleRSS = await rssMiB(agent.pid!);

  // --- containerd alone: sandbox + container + start, through CRI -------------------------
  // No kubelet labels on these, so the agent's housekeeping leaves them be.
  const logRoot = join(dataDir, 'raw-logs');
  const rawPod = async (i: number): Promise<{ ms: number; sandboxId: string }> => {
    const uid = `raw-${i}-${Date.now()}`;
    const sandbox: PodSandboxConfig = {
      metadata: { name: `raw-${i}`, namespace: 'bench', uid, attempt: 0 },
      hostname: `raw-${i}`,
      logDirectory: join(logRoot, uid),
      labels: { 'skiff.bench/raw': 'true' },
      linux: {
        securityContext: {
          namespaceOptions: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' },
          seccomp: { profileType: 'RuntimeDefault' },
        },
      },
    };
    const container: ContainerConfig = {
      metadata: { name: 'main', attempt: 0 },
      image: { image: IMAGE },
      command: ['sleep', '3600'],
      logPath: 'main/0.log',
      linux: { securityContext: { seccomp: { profileType: 'RuntimeDefault' } } },
    };
    await mkdir(join(logRoot, uid, 'main'), { recursive: true });
    const t = performance.now();
    const sandboxId = await cri.runPodSandbox(sandbox);
    const id = await cri.createContainer(sandboxId, container, sandbox);
    await cri.startContainer(id);
    return { ms: performance.now() - t, sandboxId };
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
  const rawSequence: { ms: number; sandboxId: string }[] = [];
  for (let i = 0; i < PODS; i++) rawSequence.push(await rawPod(i));
  await removeRaw(rawSequence.map((r) => r.sandboxId));
  const raw = await Promise.all(Array.from({ length: PODS }, (_, i) => rawPod(PODS + i)));
  await removeRaw(raw.map((r) => r.sandboxId));
  const rawMs = raw.map((r) => r.ms);
  const rawSequenceMs = rawSequence.map((r) => r.ms);

  // --- the same through Skiff: create → scheduled → kubelet → Running, seen on a watch ---
  const created = new Map<string, number>();
  const runningAt = new Map<string, number>();
  // Resolved when the pods of the batch in flight are all Running.
  let batch: { names: Set<string>; done: () => void } | undefined;
  const watch = clients.pods.watch(
    NAMESPACE,
    { labelSelector: 'app=pod-startup' },
    (e) => {
      const pod = e.object as Pod;
      const name = pod.metadata.name ?? '';
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
        { name: 'main', image: 'busybox', imagePullPolicy: 'IfNotPresent', command: ['sleep', '3600'] },
      ],
    },
  });
  /** Creates the pods at once and waits until the watch has seen each Running. */
  const runBatch = async (names: string[]) => {
    const allRunning = new Promise<void>((done) => (batch = { names: new Set(names), done }));
    await Promise.all(
      names.map(async (name) => {
        created.set(name, performance.now());
        await clients.pods.create(NAMESPACE, podSpec(name));
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
    // the deletion, so the next phase starts on a node with nothing left running.
    await Promise.all(names.map((n) => clients.pods.delete(NAMESPACE, n)));
    for (let i = 0; ; i++) {
      const left = (await clients.pods.list(NAMESPACE, { labelSelector: 'app=pod-startup' })).items;
      if (left.length === 0) break;
      if (i > 1200) throw new Error(`${left.length} pods not gone after 120 s`);
      await delay(100);
    }
  };

  // A first pod, for the same reason as above.
  await runBatch(['warmup']);
  const [warmupMs] = latencies(['warmup']);
  await deleteAll();

  // One pod at a time, each created once the one before is Running (upstream's
  // node density test "create a sequence of pods"): latency without contention.
  const sequence = Array.from({ length: PODS }, (_, i) => `seq-${i}`);
  for (const name of sequence) await runBatch([name]);
  const sequenceMs = latencies(sequence);
  let t = performance.now();
  await deleteAll();
  const deleteSequenceMs = performance.now() - t;

  // All at once (upstream's "create a batch of pods"): the headline.
  const names = Array.from({ length: PODS }, (_, i) => `pod-${i}`);
  const [server] = children;
  const containerdPid = (await pidsWith(agentDir)).find((pid) =>
    readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('containerd\0'),
  );
  const cpu = async () => ({
    agent: await cpuSeconds(agent.pid!),
    server: await cpuSeconds(server!.pid!),
    containerd: containerdPid ? await cpuSeconds(containerdPid) : 0,
  });
  const cpuBefore = await cpu();
  t = performance.now();
  await runBatch(names);
  const wallMs = performance.now() - t;
  const cpuAfter = await cpu();
  const cpuUsed = {
    agent: round(cpuAfter.agent - cpuBefore.agent),
    server: round(cpuAfter.server - cpuBefore.server),
    containerd: round(cpuAfter.containerd - cpuBefore.containerd),
  };
  const skiffMs = latencies(names);
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
  const deleteBatchMs = performance.now() - t;
  clients.close();
  // The kubelet removes a pod's stopped containers and sandbox once the pod
  // is gone from the API: let it finish before the agent stops, so no
  // container outlives the benchmark.
  for (let i = 0; (await cri.listPodSandbox()).length > 0; i++) {
    if (i > 600) {
      console.warn('the kubelet left sandboxes behind; removing them through CRI');
      await removeRaw((await cri.listPodSandbox()).map((sb) => sb.id));
      break;
    }
    await delay(100);
  }
  await cri.close();

  const s = summary(skiffMs);
  const q = summary(sequenceMs);
  const r = summary(rawMs);
  const rq = summary(rawSequenceMs);
  const sec = (ms: number) => round(ms / 1000, 3);
  console.log(`\nfirst pod on the node (not counted): ${sec(warmupMs!)} s`);
  console.log(`${PODS} pods one after another, create → Running (watch):`);
  console.log(`  skiff  create → Running (watch):   p50 ${q.p50} s   p99 ${q.p99} s   max ${q.max} s`);
  console.log(`  raw CRI sandbox+create+start:      p50 ${rq.p50} s   p99 ${rq.p99} s   max ${rq.max} s`);
  console.log(
    `  ratio skiff / raw CRI:             p50 ${ratio(q.p50, rq.p50)}   p99 ${ratio(q.p99, rq.p99)}`,
  );
  console.log(`  deleted in ${sec(deleteSequenceMs)} s`);
  console.log(`${PODS} pods created at once:`);
  console.log(`  skiff  create → Running (watch):   p50 ${s.p50} s   p99 ${s.p99} s   max ${s.max} s`);
  console.log(`  first create → last Running:       ${sec(wallMs)} s (deleted in ${sec(deleteBatchMs)} s)`);
  console.log(
    `  CPU seconds meanwhile: agent ${cpuUsed.agent}, server ${cpuUsed.server}, containerd ${cpuUsed.containerd}`,
  );
  console.log(`  raw CRI sandbox+create+start:      p50 ${r.p50} s   p99 ${r.p99} s   max ${r.max} s`);
  console.log(`  ratio skiff / raw CRI:             p50 ${ratio(s.p50, r.p50)}   p99 ${ratio(s.p99, r.p99)}`);
  console.log(`agent RSS: ${idleRSS} MiB idle, ${agentRSS} MiB with ${PODS} pods running`);
  console.log(`containerd RSS ${round(containerdRSS, 1)} MiB, shims ${round(shimsRSS, 1)} MiB in all`);
  console.log(`goal p99 ≤ 1 s: ${s.p99 <= 1 ? 'met' : 'NOT met'} (upstream SLO p99 ≤ 5 s)`);
  writeResult(
    'pod-startup',
    { metric: 'pod startup p99', value: s.p99, unit: 's' },
    {
      pods: PODS,
      firstPodSeconds: sec(warmupMs!),
      batchSeconds: { ...s, wall: sec(wallMs), delete: sec(deleteBatchMs) },
      batchCpuSeconds: cpuUsed,
      sequenceSeconds: { ...q, delete: sec(deleteSequenceMs) },
      rawCriBatchSeconds: r,
      rawCriSequenceSeconds: rq,
      ratio: { p50: ratio(s.p50, r.p50), p99: ratio(s.p99, r.p99) },
      sequenceRatio: { p50: ratio(q.p50, rq.p50), p99: ratio(q.p99, rq.p99) },
      rssMiB: {
        agentIdle: idleRSS,
        agentWithPods: agentRSS,
        containerd: round(containerdRSS, 1),
        shims: round(shimsRSS, 1),
      },
      goal: { p99Seconds: 1, met: s.p99 <= 1 },
    },
  );
  ok = true;
} finally {
  // The agent first (it leaves containers running by design, but there are
  // none left), then the server; then what containerd mounted under the dir.
  for (const child of children.reverse()) await stop(child);
  await unmountUnder(dataDir).catch(() => undefined);
  if (values.keep) console.log(`kept ${dataDir}`);
  else await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
  if (!ok) process.exitCode = 1;
}
