// The node's container runtime as the agent starts it, in upstream's order
// of a node coming up: packages present, safety routes in place, the image
// mirror serving the airgap images (offline nodes), containerd running,
// offline images imported; then, once the Node has its podCIDR, the pod
// network config, which containerd picks up by itself (until then CRI
// reports NetworkReady=false, and the kubelet keeps the node NotReady).

import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type CriRuntime, criRuntime } from '../kubelet/runtime/cri/cri.ts';
import { ensureSafetyRoutes, writePodNetworkConfig } from '../network/cni.ts';
import { ensurePackages, NODE_PACKAGES, type NodePackage } from '../node/packages.ts';
import { containerdPaths } from '../node/paths.ts';
import type { Log } from '../util/log.ts';
import { type Containerd, startContainerd } from './containerd.ts';
import { BUILT_IMAGES_DIR, imagesDir, importImageDir } from './images.ts';
import { type ImageMirror, startImageMirror } from './mirror.ts';
import {
  criRegistryAuthToml,
  EMPTY_REGISTRIES,
  type Registries,
  registryHosts,
  writeRegistryHosts,
} from './registries.ts';
import { withRewriteProxies } from './rewrite-proxy.ts';

/** The registries upstream manifests pull from, which an offline node must never try to reach. */
export const PUBLIC_REGISTRIES = [
  'docker.io',
  'registry.k8s.io',
  'k8s.gcr.io',
  'gcr.io',
  'quay.io',
  'ghcr.io',
];

/** What images/build.sh needs to build Skiff's own images. */
const IMAGE_BUILD_PACKAGES: NodePackage[] = [
  { name: 'gcc', provides: ['/usr/bin/gcc'], why: 'compiles the static pause binary' },
  { name: 'libc6-dev', provides: ['/usr/lib/x86_64-linux-gnu/libc.a'], why: 'static libc for pause' },
  { name: 'busybox-static', provides: ['/bin/busybox'], why: 'the busybox image' },
  { name: 'redis-server', provides: ['/usr/bin/redis-server'], why: 'the redis image' },
];

export interface NodeRuntimeOptions {
  dataDir: string;
  /** The cluster's pod range (safety route). */
  clusterCIDR: string;
  /** The cluster's Service range (safety route). */
  serviceCIDR: string;
  /** `--container-runtime-endpoint`: an existing containerd; Skiff then starts none and installs nothing. */
  containerRuntimeEndpoint?: string;
  /** The pod bridge's name (default: one per podCIDR, see podBridgeName). */
  bridge?: string;
  /** The pods' MTU, the pod network's (src/network/node.ts); the CNI default (the kernel's 1500) otherwise. */
  podMTU?: number;
  /**
   * Offline node (default true): pulls from the public registries upstream
   * examples name go to the node's embedded mirror of its airgap images
   * (src/agent/mirror.ts) on loopback, so `image: busybox` with its default
   * imagePullPolicy Always pulls what was imported, and an image nobody
   * imported fails at once instead of reaching out of the machine. Pulls from
   * registries named explicitly (a local one, say) still work. false lets
   * containerd reach the public registries (`--disable-offline-mirror`).
   * With `registries`, the offline mirror is tried first and the user's
   * mirrors after it (src/agent/registries.ts).
   */
  offline?: boolean;
  /** registries.yaml (`--private-registry`): mirrors, TLS and credentials, for the containerd Skiff starts. */
  registries?: Registries;
  /** k3s's --disable-default-registry-endpoint: registries with mirrors are never asked directly. */
  disableDefaultRegistryEndpoint?: boolean;
  log?: Log;
}

export interface NodeRuntime {
  runtime: CriRuntime;
  containerd: Containerd;
  /** The embedded registry mirror of an offline node that runs its own containerd. */
  mirror?: ImageMirror;
  /** Writes the pod network config for the node's spec.podCIDR (idempotent). */
  setPodCIDR(podCIDR: string): Promise<void>;
  /** Closes the CRI client and stops the containerd Skiff started; containers keep running. */
  stop(): Promise<void>;
}

export async function startNodeRuntime(opts: NodeRuntimeOptions): Promise<NodeRuntime> {
  const log = opts.log;
  const ownContainerd = !opts.containerRuntimeEndpoint;
  if (ownContainerd) await ensurePackages({ packages: NODE_PACKAGES, ...(log ? { log } : {}) });
  await ensureSafetyRoutes([opts.clusterCIDR, opts.serviceCIDR]);
  let mirror: ImageMirror | undefined;
  if (ownContainerd && (opts.offline ?? true)) {
    // The mirror's port is an ephemeral one, so hosts.toml is written anew at
    // every start, before containerd (which reads it at every pull) runs.
    mirror = await startImageMirror({ imagesDir: imagesDir(opts.dataDir), ...(log ? { log } : {}) });
  }
  // Rewrites go through local proxies (containerd 1.6 has none of its own).
  const { registries, proxies } = ownContainerd
    ? await withRewriteProxies(opts.registries ?? EMPTY_REGISTRIES, log).catch(async (err: Error) => {
        await mirror?.close();
        throw err;
      })
    : { registries: EMPTY_REGISTRIES, proxies: [] };
  const closeRegistries = async () => {
    await mirror?.close();
    await Promise.all(proxies.map((p) => p.close()));
  };
  if (ownContainerd) {
    // The offline mirror first for the public registries, then the user's
    // mirrors (src/agent/registries.ts says why).
    const hosts = registryHosts(registries, {
      ...(mirror ? { offlineMirror: mirror.endpoint, offlineRegistries: PUBLIC_REGISTRIES } : {}),
      ...(opts.disableDefaultRegistryEndpoint ? { disableDefaultEndpoint: true } : {}),
    });
    await writeRegistryHosts(containerdPaths(opts.dataDir).registryConfigDir, hosts).catch(
      async (err: Error) => {
        await closeRegistries();
        throw err;
      },
    );
  }
  const containerd = await startContainerd({
    dataDir: opts.dataDir,
    ...(opts.containerRuntimeEndpoint ? { containerRuntimeEndpoint: opts.containerRuntimeEndpoint } : {}),
    registryAuth: criRegistryAuthToml(registries),
    ...(log ? { log } : {}),
  }).catch(async (err: Error) => {
    await closeRegistries();
    throw err;
  });
  try {
    await seedBuiltImages(opts.dataDir, log);
    await importImageDir(containerd.endpoint, imagesDir(opts.dataDir), log);
  } catch (err) {
    // A node without its pause image cannot run a pod: fail the start, and leave no containerd behind.
    await containerd.stop();
    await closeRegistries();
    throw err;
  }
  const runtime = criRuntime(containerd.endpoint);
  const paths = containerdPaths(opts.dataDir);
  let podCIDR: string | undefined;
  return {
    runtime,
    containerd,
    ...(mirror ? { mirror } : {}),
    async setPodCIDR(cidr) {
      if (cidr === podCIDR) return;
      await writePodNetworkConfig(paths.cniConfDir, {
        podCIDR: cidr,
        ipamDataDir: join(opts.dataDir, 'agent', 'cni', 'networks'),
        bridge: opts.bridge ?? podBridgeName(cidr),
        ...(opts.podMTU ? { mtu: opts.podMTU } : {}),
      });
      podCIDR = cidr;
      log?.('pod network configured', { podCIDR: cidr, confDir: paths.cniConfDir });
    },
    async stop() {
      await runtime.close();
      await containerd.stop();
      await closeRegistries();
    },
  };
}

/**
 * The pod bridge of a node with this podCIDR: `skiff` and the network
 * address in hex (10.42.0.0/24 → skiff0a2a0000, within Linux's 15
 * characters). One bridge per podCIDR rather than one fixed name, because the
 * bridge holds its podCIDR's gateway address and the CNI bridge plugin
 * refuses a bridge that already holds another range's: a bridge left by an
 * earlier cluster on this machine (or one running beside it, as tests do)
 * with another cluster CIDR would keep every pod from starting.
 */
export function podBridgeName(podCIDR: string): string {
  const octets = podCIDR.split('/')[0]?.split('.').map(Number) ?? [];
  if (octets.length !== 4 || octets.some((o) => !(o >= 0 && o <= 255))) return 'skiff0';
  return `skiff${octets.map((o) => o.toString(16).padStart(2, '0')).join('')}`;
}

/**
 * Puts Skiff's own images (pause, busybox, redis) into the node's airgap
 * image dir, building them first if this checkout has not yet. A tarball is
 * copied only when its build key changed, so restarts import nothing new.
 */
export async function seedBuiltImages(dataDir: string, log?: Log): Promise<void> {
  const built = await readdir(BUILT_IMAGES_DIR).catch(() => [] as string[]);
  if (!built.includes('pause.tar')) {
    await ensurePackages({ packages: IMAGE_BUILD_PACKAGES, ...(log ? { log } : {}) });
    const script = fileURLToPath(new URL('../../images/build.sh', import.meta.url));
    log?.('building Skiff images', { script, out: BUILT_IMAGES_DIR });
    const { execFile } = await import('node:child_process');
    await promisify(execFile)('bash', [script, BUILT_IMAGES_DIR]);
  }
  const dest = imagesDir(dataDir);
  await mkdir(dest, { recursive: true });
  for (const f of await readdir(BUILT_IMAGES_DIR)) {
    if (!f.endsWith('.tar')) continue;
    const key = f.replace(/\.tar$/, '.key');
    const [have, want] = await Promise.all([
      readFile(join(dest, key), 'utf8').catch(() => ''),
      readFile(join(BUILT_IMAGES_DIR, key), 'utf8').catch(() => 'unknown'),
    ]);
    if (have === want) continue;
    await copyFile(join(BUILT_IMAGES_DIR, f), join(dest, f));
    await copyFile(join(BUILT_IMAGES_DIR, key), join(dest, key)).catch(() => undefined);
  }
}
