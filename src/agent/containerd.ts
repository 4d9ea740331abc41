// The agent's containerd: either one Skiff starts itself as a child process,
// with everything under `<data-dir>/agent/containerd/`, or an existing one
// given by `--container-runtime-endpoint` (as kubelet's flag of that name).
//
// Like k3s, Skiff writes containerd's whole config rather than relying on
// /etc/containerd: its own root, state, socket and runc root, so several
// nodes (or a test) can run side by side with a system containerd without
// seeing each other's containers.

import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { CNI_BIN_DIRS, type ContainerdPaths, containerdPaths, PAUSE_IMAGE } from '../node/paths.ts';
import type { Log } from '../util/log.ts';

export interface ContainerdConfigOptions {
  sandboxImage?: string;
  cniBinDir?: string;
  runcBinary?: string;
  /** Registry credentials, TOML tables under the CRI plugin (src/agent/registries.ts criRegistryAuthToml). */
  registryAuth?: string;
}

const toml = (s: string) => JSON.stringify(s);

/**
 * containerd 1.6+'s config (version 2). The choices that matter:
 * - restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE, so containerd
 *   must not try to lower a container's oom_score_adj below its own (k3s
 *   sets the same when rootless or in a container);
 * - runc with cgroupfs: crun fails on this machine's hybrid cgroups, and no
 *   systemd runs here to delegate cgroups to;
 * - the CNI plugin dirs of Debian, one network config (ours);
 * - the streaming server on loopback only: the kubelet's server fronts it.
 */
export function containerdConfig(paths: ContainerdPaths, opts: ContainerdConfigOptions = {}): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  const cniBinDir =
    opts.cniBinDir ?? CNI_BIN_DIRS.find((d) => existsSync(join(d, 'bridge'))) ?? CNI_BIN_DIRS[0]!;
  return `# Written by Skiff (src/agent/containerd.ts); rewritten at every agent start.
version = 2
root = ${toml(paths.root)}
state = ${toml(paths.state)}
# Snapshotters and processors this machine has no use for; skipping them keeps start-up quiet and fast.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = ${toml(paths.socket)}

[ttrpc]
  address = ${toml(`${paths.socket}.ttrpc`)}

[plugins."io.containerd.internal.v1.opt"]
  path = ${toml(join(paths.dir, 'opt'))}

[${cri}]
  sandbox_image = ${toml(opts.sandboxImage ?? PAUSE_IMAGE)}
  restrict_oom_score_adj = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[${cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[${cri}.containerd.runtimes.runc.options]
  BinaryName = ${toml(opts.runcBinary ?? 'runc')}
  Root = ${toml(paths.runcRoot)}
  SystemdCgroup = false

[${cri}.cni]
  bin_dir = ${toml(cniBinDir)}
  conf_dir = ${toml(paths.cniConfDir)}
  max_conf_num = 1

[${cri}.registry]
  config_path = ${toml(paths.registryConfigDir)}
${opts.registryAuth ?? ''}`;
}

export interface Containerd {
  /** The CRI endpoint, `unix:///path/containerd.sock`. */
  endpoint: string;
  /** The socket path (for ctr's --address). */
  address: string;
  /** The child process when Skiff started containerd; undefined for an existing one. */
  process?: ChildProcess;
  /** Stops the containerd Skiff started (no-op for an existing one). Running containers' shims survive it, as upstream. */
  stop(): Promise<void>;
}

export interface StartContainerdOptions extends ContainerdConfigOptions {
  dataDir: string;
  /** `--container-runtime-endpoint`: use this containerd instead of starting one. */
  containerRuntimeEndpoint?: string;
  log?: Log;
  /** How long to wait for the socket; containerd normally answers in well under a second. */
  timeoutMs?: number;
  /** The containerd binary (default: containerd on PATH). */
  binary?: string;
}

/** `unix:///run/x.sock` or `/run/x.sock` → `/run/x.sock`. */
export function socketPath(endpoint: string): string {
  return endpoint.replace(/^unix:\/\//, '');
}

/**
 * Writes the config and starts containerd, resolving once its socket accepts
 * connections; or, with containerRuntimeEndpoint, only checks that socket.
 */
export async function startContainerd(opts: StartContainerdOptions): Promise<Containerd> {
  const log = opts.log;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  if (opts.containerRuntimeEndpoint) {
    const address = socketPath(opts.containerRuntimeEndpoint);
    await waitForSocket(address, timeoutMs, () => undefined);
    log?.('using an existing container runtime', { endpoint: opts.containerRuntimeEndpoint });
    return { endpoint: `unix://${address}`, address, stop: async () => {} };
  }

  const paths = containerdPaths(opts.dataDir);
  for (const d of [
    paths.dir,
    paths.root,
    paths.state,
    paths.runcRoot,
    paths.cniConfDir,
    paths.registryConfigDir,
  ]) {
    await mkdir(d, { recursive: true });
  }
  await writeFile(paths.config, containerdConfig(paths, opts));
  // A socket left by a containerd that died would make us think the new one is up.
  await rm(paths.socket, { force: true });

  const out = createWriteStream(paths.log, { flags: 'a' });
  const child = spawn(opts.binary ?? 'containerd', ['--config', paths.config], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  let exited: string | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = signal ? `signal ${signal}` : `exit code ${code}`;
      resolve();
    });
    child.once('error', (err) => {
      exited = err.message;
      resolve();
    });
  });
  log?.('starting containerd', { config: paths.config, log: paths.log, pid: child.pid });

  try {
    await waitForSocket(paths.socket, timeoutMs, () =>
      exited === undefined ? undefined : `containerd exited (${exited}); see ${paths.log}`,
    );
  } catch (err) {
    child.kill('SIGKILL');
    await exit;
    throw new Error(`${(err as Error).message}\n${await tail(paths.log)}`);
  }
  log?.('containerd is ready', { socket: paths.socket });

  return {
    endpoint: `unix://${paths.socket}`,
    address: paths.socket,
    process: child,
    async stop() {
      if (exited !== undefined) return;
      child.kill('SIGTERM');
      const killed = await Promise.race([
        exit.then(() => true),
        delay(10_000, undefined, { ref: false }).then(() => false),
      ]);
      if (!killed) {
        child.kill('SIGKILL');
        await exit;
      }
      out.end();
    },
  };
}

async function waitForSocket(
  path: string,
  timeoutMs: number,
  failed: () => string | undefined,
): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const why = failed();
    if (why) throw new Error(why);
    const ok = await stat(path).then(
      (s) => s.isSocket(),
      () => false,
    );
    if (ok) {
      const accepted = await new Promise<boolean>((resolve) => {
        const sock = connect(path);
        sock.once('connect', () => {
          sock.destroy();
          resolve(true);
        });
        sock.once('error', () => resolve(false));
      });
      if (accepted) return;
    }
    if (Date.now() > deadline) throw new Error(`containerd did not open ${path} within ${timeoutMs} ms`);
    await delay(50);
  }
}

async function tail(file: string, lines = 20): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').slice(-lines).join('\n');
}

/**
 * Unmounts whatever containerd left mounted under `dir` (overlay rootfs,
 * sandbox /dev/shm, network namespaces), deepest first, so the directory can
 * be removed. For tests and for wiping a node's data dir.
 */
export async function unmountUnder(dir: string): Promise<void> {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const run = promisify(execFile);
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  const points = mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(`${dir}/`)))
    // mountinfo escapes spaces and the like as octal.
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))))
    .sort((a, b) => b.length - a.length);
  for (const p of points) {
    await run('umount', ['-l', p]).catch(() => undefined);
  }
}

export interface RegistryHostOptions {
  /** Where to reach the registry, e.g. `http://127.0.0.1:5000` (plain HTTP) or `https://mirror.example:443`. */
  endpoint: string;
  /** Skip TLS verification (self-signed registries). */
  skipVerify?: boolean;
  /**
   * Mirrors to try first, in order, for pulls and resolves; `endpoint` is then
   * only the fallback (containerd's `server`). A mirror's 404 moves on to the next.
   */
  mirrors?: string[];
}

/**
 * Tells containerd how to reach a registry, in its hosts.toml format
 * (containerd docs/hosts.md), which the CRI plugin reads from config_path for
 * every pull: a plain-HTTP registry on loopback, a mirror, a self-signed one.
 * `host` is the name images use, `host:port` when there is a port.
 */
export async function writeRegistryHost(
  registryConfigDir: string,
  host: string,
  opts: RegistryHostOptions,
): Promise<string> {
  const dir = join(registryConfigDir, host);
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'hosts.toml');
  const hosts = opts.mirrors ?? [opts.endpoint];
  await writeFile(
    file,
    `# Written by Skiff (src/agent/containerd.ts).
server = ${toml(opts.endpoint)}
${hosts
  .map(
    (h) => `
[host.${toml(h)}]
  capabilities = ["pull", "resolve"]
${opts.skipVerify ? '  skip_verify = true\n' : ''}`,
  )
  .join('')}`,
  );
  return file;
}
