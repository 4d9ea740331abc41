// What the e2e tests on a cluster of hosts (src/hosts: network namespaces,
// each with its own agent and containerd) share: kubectl against the
// cluster from the root namespace, the pod and node fields they read, and
// what runc runs on one host.

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { HostsCluster } from '../../src/hosts/hosts.ts';
import { containerdPaths } from '../../src/node/paths.ts';
import { kubectlPath } from './harness.ts';

const run = promisify(execFile);

export interface PodJSON {
  metadata: { name: string; deletionTimestamp?: string; labels?: Record<string, string> };
  spec: { nodeName?: string };
  status: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
}

export interface NodeJSON {
  metadata: { name: string; annotations?: Record<string, string> };
  spec: { unschedulable?: boolean };
  status: {
    addresses?: { type: string; address: string }[];
    conditions?: { type: string; status: string }[];
  };
}

export const nodeReady = (n: NodeJSON): string | undefined =>
  n.status.conditions?.find((c) => c.type === 'Ready')?.status;

export const podReady = (p: PodJSON): boolean =>
  p.status.phase === 'Running' &&
  (p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false);

export type Kubectl = (args: string[], input?: string) => Promise<string>;

/** The real kubectl (1.32) with the cluster's admin kubeconfig and its own HOME; rejects with kubectl's output. */
export function hostsKubectl(cluster: () => HostsCluster, home: () => string): Kubectl {
  return (args, input) =>
    new Promise((resolve, reject) => {
      const child = execFile(
        kubectlPath('1.32'),
        args,
        {
          env: { PATH: process.env.PATH ?? '', HOME: home(), KUBECONFIG: cluster().kubeconfig },
          timeout: 150_000,
          maxBuffer: 16 * 1024 * 1024,
        },
        (err, stdout, stderr) =>
          err ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr}${stdout}`)) : resolve(stdout),
      );
      if (input !== undefined) child.stdin?.end(input);
    });
}

/** The pods (namespace/name) whose containers runc runs on a host, from CRI's annotations. */
export async function containersOn(cluster: HostsCluster, nodeName: string): Promise<string[]> {
  const host = cluster.hosts.find((h) => h.node === nodeName);
  if (!host) throw new Error(`no host ${nodeName}`);
  const root = join(containerdPaths(host.dataDir).runcRoot, 'k8s.io');
  const { stdout } = await run('runc', ['--root', root, 'list', '--format', 'json']);
  const list = (JSON.parse(stdout || '[]') ?? []) as { id: string; status: string }[];
  const owners: string[] = [];
  for (const c of list) {
    const state = JSON.parse((await run('runc', ['--root', root, 'state', c.id])).stdout) as {
      annotations?: Record<string, string>;
    };
    const a = state.annotations ?? {};
    owners.push(`${a['io.kubernetes.cri.sandbox-namespace']}/${a['io.kubernetes.cri.sandbox-name']}`);
  }
  return owners;
}
