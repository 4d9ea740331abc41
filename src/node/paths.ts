// Well-known paths on a node, shared by everything that runs there (the
// agent, the kubelet's runtime, the service proxy, the CLI's image import):
// a folder below all of them, so their imports point down only.

import { join } from 'node:path';

/** The pause image images/build.sh builds; `localhost/` so a failed lookup never leaves the machine. */
export const PAUSE_IMAGE = 'localhost/skiff/pause:3.10';

/** Where Debian's containernetworking-plugins put the CNI plugins; /opt/cni/bin is upstream's default. */
export const CNI_BIN_DIRS = ['/usr/lib/cni', '/opt/cni/bin'];

export interface ContainerdPaths {
  /** `<data-dir>/agent/containerd` */
  dir: string;
  config: string;
  root: string;
  state: string;
  socket: string;
  runcRoot: string;
  /** CNI network configs containerd's CRI plugin loads (the agent writes one, see network/cni.ts). */
  cniConfDir: string;
  /** Per-registry hosts.toml files (containerd's config_path), for mirrors and plain-HTTP registries. */
  registryConfigDir: string;
  log: string;
}

export function containerdPaths(dataDir: string): ContainerdPaths {
  const dir = join(dataDir, 'agent', 'containerd');
  return {
    dir,
    config: join(dir, 'config.toml'),
    root: join(dir, 'root'),
    state: join(dir, 'state'),
    socket: join(dir, 'containerd.sock'),
    runcRoot: join(dir, 'runc'),
    cniConfDir: join(dataDir, 'agent', 'cni', 'net.d'),
    registryConfigDir: join(dir, 'certs.d'),
    log: join(dir, 'containerd.log'),
  };
}
