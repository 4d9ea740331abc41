// The Debian packages a node needs to run real containers, installed when
// missing. k3s bundles these binaries; Skiff takes them from the distribution
// instead, and says so when it installs any.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import type { Log } from '../util/log.ts';

const run = promisify(execFile);

export interface NodePackage {
  /** The Debian package. */
  name: string;
  /** Paths any one of which proves it installed. */
  provides: string[];
  why: string;
}

export const NODE_PACKAGES: NodePackage[] = [
  { name: 'containerd', provides: ['/usr/bin/containerd'], why: 'the container runtime (CRI)' },
  {
    name: 'runc',
    provides: ['/usr/sbin/runc', '/usr/bin/runc'],
    why: 'the OCI runtime containerd runs containers with',
  },
  {
    name: 'containernetworking-plugins',
    provides: ['/usr/lib/cni/bridge', '/opt/cni/bin/bridge'],
    why: 'the CNI plugins of the pod network (bridge, host-local, portmap, loopback)',
  },
  {
    name: 'iptables',
    provides: ['/usr/sbin/iptables'],
    why: 'the portmap CNI plugin programs hostPorts with it (and the service proxy on hosts without nft)',
  },
  { name: 'nftables', provides: ['/usr/sbin/nft'], why: 'the service proxy programs the kernel with it' },
  { name: 'iproute2', provides: ['/usr/sbin/ip', '/bin/ip'], why: 'routes for the pod network' },
];

/** The packages of `wanted` with none of their files present. */
export function missingPackages(wanted: NodePackage[] = NODE_PACKAGES): NodePackage[] {
  return wanted.filter((p) => !p.provides.some((f) => existsSync(f)));
}

export interface EnsurePackagesOptions {
  log?: Log;
  packages?: NodePackage[];
  /** Whether this process may install packages (default: running as root). */
  root?: boolean;
  /** Runs a command; injectable for tests. */
  exec?: (cmd: string, args: string[], env: NodeJS.ProcessEnv) => Promise<void>;
}

const defaultExec = async (cmd: string, args: string[], env: NodeJS.ProcessEnv) => {
  await run(cmd, args, { env, maxBuffer: 64 * 1024 * 1024 });
};

/**
 * Installs whatever of the node's packages is missing with apt-get, and
 * answers the names installed (none when all are there, so a restarted agent
 * does nothing). Without root it cannot, and says what to run instead.
 */
export async function ensurePackages(opts: EnsurePackagesOptions = {}): Promise<string[]> {
  const missing = missingPackages(opts.packages);
  if (missing.length === 0) return [];
  const names = missing.map((p) => p.name);
  if (!(opts.root ?? process.getuid?.() === 0)) {
    throw new Error(
      `missing Debian packages: ${missing.map((p) => `${p.name} (${p.why})`).join(', ')}; ` +
        `run as root, or: apt-get install ${names.join(' ')}`,
    );
  }
  opts.log?.('installing missing Debian packages', {
    packages: names,
    why: Object.fromEntries(missing.map((p) => [p.name, p.why])),
  });
  const exec = opts.exec ?? defaultExec;
  // On a machine with systemd, Debian's containerd package also enables a
  // system containerd; it does no harm (own socket and root), the agent
  // never talks to it unless given --container-runtime-endpoint.
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => exec('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...names], env);
  try {
    await install();
  } catch {
    // A fresh machine has no package lists yet.
    await exec('apt-get', ['update', '-q'], env);
    await install();
  }
  const still = missingPackages(missing);
  if (still.length > 0) throw new Error(`apt-get did not install ${still.map((p) => p.name).join(', ')}`);
  opts.log?.('installed Debian packages', { packages: names });
  return names;
}
