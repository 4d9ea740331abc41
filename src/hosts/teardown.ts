// Removing a host made by src/hosts/hosts.ts, whatever state it is in
// (running, killed, or left by a run that was itself killed): its
// containers, every process in its namespace, the mounts under its data
// dir, its pods' network namespaces and CNI cache entries, then the
// namespace and its veth. Nothing here needs the host's agent or
// containerd to answer.

import { execFile } from 'node:child_process';
import { readdir, readFile, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { unmountUnder } from '../agent/containerd.ts';
import { containerdPaths } from '../node/paths.ts';
import { deleteHost, type HostLink, namespacePids } from './netns.ts';

const run = promisify(execFile);

/** containerd's namespace for CRI containers: runc's root and the task state are per namespace. */
const CRI_NAMESPACE = 'k8s.io';

/** Where libcni caches each attachment's result, by network, container id and interface. */
const CNI_RESULTS_DIR = '/var/lib/cni/results';

export interface TeardownTarget {
  link: HostLink;
  /** The host's data dir (the agent's, or the server's); unknown for a namespace nobody recorded. */
  dataDir?: string;
}

export async function teardownHost(host: TeardownTarget): Promise<void> {
  const sandboxes = host.dataDir ? await sandboxNetworkNamespaces(host.dataDir) : [];
  if (host.dataDir) await killContainers(host.dataDir);
  await killNamespaceProcesses(host.link.netns);
  if (host.dataDir) await unmountUnder(host.dataDir);
  for (const { id, netns } of sandboxes) {
    await run('ip', ['netns', 'delete', basename(netns)]).catch(() => undefined);
    await removeCniResults(id);
  }
  await deleteHost(host.link);
}

/**
 * The network namespaces of the host's pod sandboxes, from the OCI specs
 * containerd keeps in its task state (`linux.namespaces`): CRI names them
 * cni-<uuid> in /run/netns, which says nothing of whose they are.
 */
export async function sandboxNetworkNamespaces(dataDir: string): Promise<{ id: string; netns: string }[]> {
  const tasks = join(containerdPaths(dataDir).state, 'io.containerd.runtime.v2.task', CRI_NAMESPACE);
  const found: { id: string; netns: string }[] = [];
  for (const id of await readdir(tasks).catch(() => [] as string[])) {
    const spec = await readFile(join(tasks, id, 'config.json'), 'utf8').catch(() => undefined);
    if (!spec) continue;
    try {
      const namespaces = (JSON.parse(spec) as { linux?: { namespaces?: { type: string; path?: string }[] } })
        .linux?.namespaces;
      const netns = namespaces?.find((n) => n.type === 'network')?.path;
      if (netns?.includes('/netns/cni-')) found.push({ id, netns });
    } catch {
      // A spec half written when the host died: nothing to learn from it.
    }
  }
  return found;
}

/** Kills and deletes every container runc knows under the host's runc root. */
async function killContainers(dataDir: string): Promise<void> {
  const root = join(containerdPaths(dataDir).runcRoot, CRI_NAMESPACE);
  const ids = await run('runc', ['--root', root, 'list', '-q']).then(
    (r) => r.stdout.split('\n').filter(Boolean),
    () => [] as string[],
  );
  for (const id of ids) {
    await run('runc', ['--root', root, 'kill', id, 'KILL']).catch(() => undefined);
    await run('runc', ['--root', root, 'delete', '--force', id]).catch(() => undefined);
  }
}

/** SIGKILLs every process in the namespace (agent or server, containerd, shims), and waits until they are gone. */
export async function killNamespaceProcesses(netns: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const pids = await namespacePids(netns);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await delay(100);
  }
}

async function removeCniResults(containerId: string): Promise<void> {
  for (const f of await readdir(CNI_RESULTS_DIR).catch(() => [] as string[])) {
    if (f.includes(`-${containerId}-`)) await rm(join(CNI_RESULTS_DIR, f), { force: true });
  }
}
