// A cluster of hosts on one machine, as kind makes one of containers: a
// server and N agents, each in its own network namespace on one bridge
// (src/hosts/netns.ts), each with its own `skiff agent` (or `skiff server`
// with its agent) and so its own containerd, data dir, pod bridge,
// service-proxy tables and kubelet port on its own address. Used by the
// e2e tests (test/e2e/hosts.test.ts) and by `scripts/up.sh --hosts N`
// (through `skiff hosts`, src/cli/hosts.ts): one implementation.
//
// The server runs in the first host (index 0, 198.18.<id>.10), with its
// own agent, so `kubectl get nodes` lists 1 + N nodes. Keeping it off the
// root namespace keeps every trace of the cluster (routes, nftables, the
// cluster DNS address, pod bridges) out of the machine's own network,
// which other clusters share, and makes every node alike: a namespace
// with one address. The API is reached from the root namespace at the
// server host's address, through the bridge; the kubeconfig says so.
//
// The processes are detached (their own sessions, logs in their data
// dirs), so a cluster outlives the command that made it, as up.sh wants.
// What is running is written down before anything is made: in
// <data-dir>/hosts.json, and in /run/skiff-hosts/<id> (the data dir), so a
// later command, or the next start after a killed run, finds and removes it.

import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createCgroupManager } from '../kubelet/cm/cgroup-manager.ts';
import { containerdPaths } from '../node/paths.ts';
import {
  addHost,
  cutLink,
  deleteBridge,
  ensureBridge,
  type HostLink,
  hostLink,
  hostsNetwork,
  listHostNamespaces,
  namespacePids,
  restoreLink,
} from './netns.ts';
import { teardownHost } from './teardown.ts';

/** The server's node. */
export const SERVER_NODE = 'server';

/** Agent host i's node (1-based, as its namespace's index). */
export const agentNodeName = (index: number): string => `host-${index}`;

/** Hard eviction thresholds for clusters on a shared test machine: upstream's memory one, disk ones of 1%. */
export const TEST_EVICTION_HARD =
  'eviction-hard=memory.available<100Mi,nodefs.available<1%,imagefs.available<1%,nodefs.inodesFree<1%';

/** A host's --cgroup-root: its kubepods tree is <root>/kubepods. */
export const hostCgroupRoot = (id: number, node: string): string => `/skiff-h${id}-${node}`;

/** Where a cluster of hosts is recorded machine-wide, by id. */
export const REGISTRY_DIR = '/run/skiff-hosts';

export interface HostsClusterOptions {
  /** Keeps clusters of hosts apart: the bridge skiffh<id>, namespaces skh<id>-*, addresses 198.18.<id>.0/24. */
  id: number;
  /** The server's data dir (kubeconfig.yaml, node-token); agents' are under <dataDir>/hosts/<node>. */
  dataDir: string;
  /** Agent hosts besides the server's. */
  agents: number;
  /** The API port on the server's host (default 6443). */
  httpsPort?: number;
  clusterCIDR?: string;
  serviceCIDR?: string;
  /** More `skiff server` flags (e.g. --node-monitor-grace-period 20s). */
  serverArgs?: string[];
  /** How to run skiff (default: this checkout's CLI, with this Node). */
  skiff?: [string, string[]];
  /** How long to wait for every node to be Ready (default 300 s). */
  readyTimeoutMs?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface HostState {
  node: string;
  role: 'server' | 'agent';
  link: HostLink;
  dataDir: string;
  /** The command line run in the host's namespace (after nsenter). */
  argv: string[];
  log: string;
  pidFile: string;
}

export interface HostsState {
  id: number;
  dataDir: string;
  server: string;
  kubeconfig: string;
  hosts: HostState[];
}

export interface HostsCluster extends HostsState {
  /** Stops a host abruptly: its agent and containerd SIGKILLed, its link cut. Its containers keep running. */
  killHost(node: string): Promise<void>;
  /** Brings a killed host back: link up, agent started again on the same data dir. */
  startHost(node: string): Promise<void>;
  /** Removes everything the cluster made on the machine (the data dir stays). */
  stop(): Promise<void>;
}

const DEFAULT_CLUSTER_CIDR = '10.42.0.0/16';
const DEFAULT_SERVICE_CIDR = '10.43.0.0/16';

/** This checkout's CLI entry, whether running from src/ (.ts) or dist/ (.js). */
function defaultSkiff(): [string, string[]] {
  const ext = extname(fileURLToPath(import.meta.url));
  return [process.execPath, [fileURLToPath(new URL(`../cli/main${ext}`, import.meta.url))]];
}

/** What the cluster will be: its hosts, their addresses, data dirs and command lines. Pure. */
export function planHosts(opts: HostsClusterOptions): HostsState {
  const [command, prefix] = opts.skiff ?? defaultSkiff();
  const port = opts.httpsPort ?? 6443;
  const clusterCIDR = opts.clusterCIDR ?? DEFAULT_CLUSTER_CIDR;
  const serviceCIDR = opts.serviceCIDR ?? DEFAULT_SERVICE_CIDR;
  const serverLink = hostLink(opts.id, 0);
  const server = `https://${serverLink.address}:${port}`;
  const ranges = ['--cluster-cidr', clusterCIDR, '--service-cidr', serviceCIDR];
  // Every host's pods in a cgroup tree of its own: hosts share the machine's
  // cgroups, and a kubelet tidies the pod cgroups under its root that it does
  // not know (src/kubelet/cm/).
  // Disk thresholds far below upstream's defaults too: test clusters share
  // the machine's disk, and one nearly full must not evict every host's pods.
  const cgroupRoot = (node: string) => [
    '--kubelet-arg',
    `cgroup-root=${hostCgroupRoot(opts.id, node)}`,
    '--kubelet-arg',
    TEST_EVICTION_HARD,
  ];
  const host = (node: string, role: HostState['role'], link: HostLink, dataDir: string, args: string[]) => ({
    node,
    role,
    link,
    dataDir,
    argv: [command, ...prefix, ...args],
    log: join(dataDir, `${role}.log`),
    pidFile: join(dataDir, `${role}.pid`),
  });
  const hosts: HostState[] = [
    host(SERVER_NODE, 'server', serverLink, opts.dataDir, [
      'server',
      '--data-dir',
      opts.dataDir,
      '--https-listen-port',
      String(port),
      '--advertise-address',
      serverLink.address,
      '--node-name',
      SERVER_NODE,
      '--node-ip',
      serverLink.address,
      ...ranges,
      ...cgroupRoot(SERVER_NODE),
      ...(opts.serverArgs ?? []),
    ]),
  ];
  for (let i = 1; i <= opts.agents; i++) {
    const node = agentNodeName(i);
    const link = hostLink(opts.id, i);
    const dataDir = join(opts.dataDir, 'hosts', node);
    hosts.push(
      host(node, 'agent', link, dataDir, [
        'agent',
        '--server',
        server,
        '--token-file',
        join(opts.dataDir, 'node-token'),
        '--data-dir',
        dataDir,
        '--node-name',
        node,
        '--node-ip',
        link.address,
        ...ranges,
        ...cgroupRoot(node),
      ]),
    );
  }
  return {
    id: opts.id,
    dataDir: opts.dataDir,
    server,
    kubeconfig: join(opts.dataDir, 'kubeconfig.yaml'),
    hosts,
  };
}

/**
 * Makes the hosts and starts the cluster, resolving once every node is
 * Ready. A cluster of the same id left on the machine (a killed run's) is
 * removed first; on failure, everything made so far is removed.
 */
export async function startHostsCluster(opts: HostsClusterOptions): Promise<HostsCluster> {
  const log = opts.log ?? (() => {});
  await removeHostsCluster(opts.id, log);
  const state = planHosts(opts);
  await mkdir(REGISTRY_DIR, { recursive: true });
  await mkdir(state.dataDir, { recursive: true });
  await writeFile(join(REGISTRY_DIR, String(opts.id)), state.dataDir);
  await writeFile(stateFile(state.dataDir), `${JSON.stringify(state, null, 2)}\n`);
  try {
    const net = hostsNetwork(opts.id);
    await ensureBridge(net);
    const safetyRoutes = [opts.clusterCIDR ?? DEFAULT_CLUSTER_CIDR, opts.serviceCIDR ?? DEFAULT_SERVICE_CIDR];
    for (const h of state.hosts) {
      await addHost(net, h.link, { safetyRoutes });
      await mkdir(h.dataDir, { recursive: true });
    }
    const [server, ...agents] = state.hosts;
    log(`starting the server on ${server!.link.address} (log ${server!.log})`);
    await launch(server!);
    await waitForServer(server!, state.dataDir);
    for (const h of agents) {
      log(`starting ${h.node} on ${h.link.address} (log ${h.log})`);
      await launch(h);
    }
    await waitForNodesReady(
      state,
      state.hosts.map((h) => h.node),
      opts.readyTimeoutMs ?? 300_000,
      log,
    );
  } catch (err) {
    await removeHostsCluster(opts.id, log);
    throw err;
  }
  return attach(state, log);
}

/** The running cluster of this data dir (written by startHostsCluster), to kill or start its hosts, or remove it. */
export function openHostsCluster(dataDir: string, log: (line: string) => void = () => {}): HostsCluster {
  const state = readState(dataDir);
  if (!state) throw new Error(`${dataDir}: no cluster of hosts (no ${stateFile(dataDir)})`);
  return attach(state, log);
}

export function readState(dataDir: string): HostsState | undefined {
  const file = stateFile(dataDir);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as HostsState) : undefined;
}

const stateFile = (dataDir: string) => join(dataDir, 'hosts.json');

function attach(state: HostsState, log: (line: string) => void): HostsCluster {
  const find = (node: string) => {
    const h = state.hosts.find((x) => x.node === node);
    if (!h) throw new Error(`no host ${node} (hosts: ${state.hosts.map((x) => x.node).join(', ')})`);
    if (h.role === 'server')
      throw new Error(`${node} runs the control plane; only agent hosts are killed and started`);
    return h;
  };
  return {
    ...state,
    async killHost(node) {
      const h = find(node);
      await killAgent(h);
      await cutLink(h.link);
      log(`${node}: agent and containerd killed, link cut; its containers keep running`);
    },
    async startHost(node) {
      const h = find(node);
      // A host killed by hand may still have its agent: one agent per data dir.
      await killAgent(h);
      await restoreLink(h.link);
      await launch(h);
      log(`${node}: link up, agent started (log ${h.log})`);
      await waitForNodesReady(state, [node], 300_000, log);
    },
    async stop() {
      // The id may have been taken by another cluster since (this one was removed, and a new one made).
      const owner = await registeredDataDir(state.id);
      if (owner === undefined || owner === state.dataDir) await removeHostsCluster(state.id, log);
      else log(`hosts id ${state.id} now belongs to ${owner}; ${state.dataDir}'s hosts are gone already`);
    },
  };
}

/**
 * Removes cluster `id` from the machine, whatever state it is in: every
 * host it recorded (agents first, the server's last, as their data dirs
 * nest), any namespace of its id left unrecorded, then the bridge. The
 * data dirs stay; their owner removes them.
 */
export async function removeHostsCluster(id: number, log: (line: string) => void = () => {}): Promise<void> {
  const cgroups = createCgroupManager();
  const dataDir = await registeredDataDir(id);
  const state = dataDir ? readState(dataDir) : undefined;
  const recorded = state ? [...state.hosts].reverse() : [];
  if (recorded.length) log(`removing the hosts of ${state!.dataDir}`);
  for (const h of recorded) {
    await teardownHost({ link: h.link, dataDir: h.dataDir });
    // The host's cgroup tree (kubepods and the QoS cgroups the kubelet leaves); empty now its containers are gone.
    await cgroups
      .destroy(hostCgroupRoot(id, h.node))
      .catch((err: unknown) => log(`cgroups of ${h.node} left: ${err}`));
  }
  for (const netns of await listHostNamespaces(id)) {
    log(`removing the leftover namespace ${netns}`);
    await teardownHost({ link: hostLink(id, Number(netns.split('-')[1])) });
  }
  await deleteBridge(hostsNetwork(id));
  await rm(join(REGISTRY_DIR, String(id)), { force: true });
}

/** The data dir of the cluster of hosts `id` on this machine, if one is recorded. */
export async function registeredDataDir(id: number): Promise<string | undefined> {
  return readFile(join(REGISTRY_DIR, String(id)), 'utf8').catch(() => undefined);
}

/** Whether the server of this data dir's cluster of hosts runs. */
export async function serverRunning(dataDir: string): Promise<boolean> {
  const server = readState(dataDir)?.hosts.find((h) => h.role === 'server');
  return server ? alive(server) : false;
}

/** Starts a host's process in its namespace (nsenter: the network namespace only, so mounts stay the machine's). */
async function launch(h: HostState): Promise<void> {
  const out = openSync(h.log, 'a');
  try {
    const child = spawn('nsenter', [`--net=/run/netns/${h.link.netns}`, '--', ...h.argv], {
      detached: true,
      stdio: ['ignore', out, out],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    child.unref();
    await writeFile(h.pidFile, `${child.pid}\n`);
  } finally {
    closeSync(out);
  }
}

/** SIGKILLs a host's agent and its containerd, not the containerd shims (so its containers run on). */
async function killAgent(h: HostState): Promise<void> {
  const config = containerdPaths(h.dataDir).config;
  const agentPid = Number(await readFile(h.pidFile, 'utf8').catch(() => ''));
  for (const pid of await namespacePids(h.link.netns)) {
    let args: string[] = [];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone already
    }
    const containerd = args[0]?.endsWith('containerd') && args.includes(config);
    if (pid === agentPid || containerd) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
  for (let i = 0; i < 100 && (await namespacePids(h.link.netns)).some((p) => p === agentPid); i++)
    await delay(50);
}

/** Whether the host's process (by its pid file) runs: that pid, with this host's data dir on its command line. */
async function alive(h: HostState): Promise<boolean> {
  const pid = Number(await readFile(h.pidFile, 'utf8').catch(() => ''));
  if (!pid) return false;
  // /proc/<pid>/stat: "pid (comm) state ..."; gone, or a zombie (Z), is dead.
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  if (!stat || state === 'Z' || state === 'X') return false;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  // An empty cmdline on a live process: nsenter is exec-ing skiff at this
  // moment (seen once: a server that had just started was taken for dead).
  return cmdline === '' || cmdline.split('\0').includes(h.dataDir);
}

async function tail(file: string, lines = 20): Promise<string> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').slice(-lines).join('\n');
}

async function waitForServer(server: HostState, dataDir: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const logText = await readFile(server.log, 'utf8').catch(() => '');
    if (logText.includes('"msg":"apiserver listening"') && existsSync(join(dataDir, 'node-token'))) return;
    if (!(await alive(server))) throw new Error(`skiff server exited:\n${await tail(server.log)}`);
    if (Date.now() > deadline)
      throw new Error(`skiff server did not start in 120 s:\n${await tail(server.log)}`);
    await delay(200);
  }
}

/** Waits until each named node reports Ready=True, failing early when a host's process dies. */
export async function waitForNodesReady(
  state: HostsState,
  nodes: string[],
  timeoutMs: number,
  log: (line: string) => void = () => {},
): Promise<void> {
  const { clientsFromKubeconfig } = await import('../agent/agent.ts');
  const clients = clientsFromKubeconfig(state.kubeconfig);
  const deadline = Date.now() + timeoutMs;
  let lastNote = Date.now();
  try {
    for (;;) {
      const ready = new Set<string>();
      try {
        for (const n of (await clients.nodes.list()).items) {
          if (n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
            ready.add(n.metadata.name ?? '');
        }
      } catch {
        // The server is still coming up.
      }
      const waiting = nodes.filter((n) => !ready.has(n));
      if (waiting.length === 0) return;
      for (const h of state.hosts.filter((x) => nodes.includes(x.node))) {
        if (!(await alive(h))) throw new Error(`${h.node}'s ${h.role} exited:\n${await tail(h.log)}`);
      }
      if (Date.now() > deadline)
        throw new Error(`nodes not Ready after ${timeoutMs / 1000} s: ${waiting.join(', ')}`);
      if (Date.now() - lastNote > 10_000) {
        log(`waiting for ${waiting.join(', ')} to be Ready`);
        lastNote = Date.now();
      }
      await delay(500);
    }
  } finally {
    clients.close();
  }
}
