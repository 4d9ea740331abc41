// Starts a real `skiff server` (the built CLI, over HTTPS with client
// certificates) in a temp data dir, and runs the real kubectl against it.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../../', import.meta.url).pathname;

export const KUBECTL_VERSIONS = ['1.27', '1.32', '1.33'] as const;

export function kubectlPath(version: string): string {
  const path = `/usr/lib/google-cloud-sdk/bin/kubectl.${version}`;
  if (existsSync(path)) return path;
  if (version === '1.32' && existsSync('/usr/bin/kubectl')) return '/usr/bin/kubectl';
  throw new Error(`kubectl ${version} not found at ${path}`);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** The skiff CLI as a user runs it: the built bin/skiff, or src/ with SKIFF_E2E_FROM_SOURCE=1. */
export function skiffCommand(): [string, string[]] {
  return process.env.SKIFF_E2E_FROM_SOURCE
    ? [process.execPath, [join(root, 'src/cli/main.ts')]]
    : [join(root, 'bin/skiff'), []];
}

/** Runs `skiff ARGS` and resolves with its exit code and output. */
export function skiffCli(args: string[], timeoutMs = 30_000): Promise<KubectlResult> {
  const [command, prefix] = skiffCommand();
  return new Promise((resolve) => {
    execFile(command, [...prefix, ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err
        ? typeof (err as { code?: unknown }).code === 'number'
          ? (err as { code: number }).code
          : 1
        : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export interface Skiff {
  dataDir: string;
  kubeconfig: string;
  port: number;
  logs(): string;
  kubectl(args: string[], opts?: KubectlOptions): Promise<KubectlResult>;
  /** Stops the server, runs whileStopped (if given), and starts it again on the same data dir and port. */
  restart(whileStopped?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

export interface KubectlOptions {
  version?: string;
  input?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function startSkiff(extraArgs: string[] = []): Promise<Skiff> {
  const dataDir = mkdtempSync(join(tmpdir(), 'skiff-e2e-'));
  const port = await freePort();
  // A real agent runs the ingress proxy, on 80 and 443 by default: clusters
  // side by side on this machine would fight over them, so each gets free
  // ports of its own unless the test chose some (or --disable ingress).
  if (extraArgs.includes('--no-disable-agent') && !extraArgs.includes('hollow')) {
    if (!extraArgs.includes('--ingress-http-port'))
      extraArgs = [...extraArgs, '--ingress-http-port', String(await freePort())];
    if (!extraArgs.includes('--ingress-https-port'))
      extraArgs = [...extraArgs, '--ingress-https-port', String(await freePort())];
  }
  let proc: ChildProcess | undefined;
  let output = '';
  const kubeconfig = join(dataDir, 'kubeconfig.yaml');
  // HOME is per-cluster so kubectl's discovery cache never leaks between runs.
  const home = join(dataDir, 'home');

  // The built CLI by default (what users run); SKIFF_E2E_FROM_SOURCE=1 runs
  // src/ directly, for quick iteration without a build.
  const [command, prefix] = process.env.SKIFF_E2E_FROM_SOURCE
    ? [process.execPath, [join(root, 'src/cli/main.ts')]]
    : [join(root, 'bin/skiff'), []];
  const launch = async () => {
    proc = spawn(
      command,
      [
        ...prefix,
        'server',
        '--data-dir',
        dataDir,
        '--https-listen-port',
        String(port),
        '--bind-address',
        '127.0.0.1',
        '--disable-agent',
        // The machine's disk is shared by every test cluster: one nearly full
        // must not put the nodes under DiskPressure (later --kubelet-arg win).
        '--kubelet-arg',
        'eviction-hard=memory.available<100Mi,nodefs.available<1%,imagefs.available<1%,nodefs.inodesFree<1%',
        ...extraArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    proc.stdout?.on('data', (d) => (output += d));
    proc.stderr?.on('data', (d) => (output += d));
    const deadline = Date.now() + 30_000;
    while (!output.includes('apiserver listening')) {
      if (proc.exitCode !== null) throw new Error(`skiff server exited (${proc.exitCode}):\n${output}`);
      if (Date.now() > deadline) throw new Error(`skiff server did not start in 30 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stopProc = async () => {
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc!.once('exit', r));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc?.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  await launch();

  return {
    dataDir,
    kubeconfig,
    port,
    logs: () => output,
    kubectl(args, opts = {}) {
      return new Promise((resolve) => {
        const child = execFile(
          kubectlPath(opts.version ?? '1.32'),
          args,
          {
            env: { PATH: process.env.PATH ?? '', HOME: home, KUBECONFIG: kubeconfig, ...opts.env },
            timeout: opts.timeoutMs ?? 30_000,
            maxBuffer: 64 * 1024 * 1024,
          },
          (err, stdout, stderr) => {
            const code = err
              ? typeof (err as { code?: unknown }).code === 'number'
                ? (err as { code: number }).code
                : 1
              : 0;
            resolve({ code, stdout, stderr });
          },
        );
        if (opts.input !== undefined) child.stdin?.end(opts.input);
      });
    },
    async restart(whileStopped) {
      await stopProc();
      await whileStopped?.();
      output = '';
      await launch();
    },
    async stop() {
      await stopProc();
      // A cluster with a real agent leaves its network state on the machine
      // (nft table, routes, bridge, DNS address), as kube-proxy does: remove it.
      if (extraArgs.includes('--no-disable-agent') && !extraArgs.includes('hollow')) {
        const flag = (name: string, dflt: string) => {
          const i = extraArgs.indexOf(name);
          return i >= 0 ? (extraArgs[i + 1] ?? dflt) : dflt;
        };
        await new Promise<void>((resolve) => {
          const [cmd, pre] = process.env.SKIFF_E2E_FROM_SOURCE
            ? [process.execPath, [join(root, 'src/cli/main.ts')]]
            : [join(root, 'bin/skiff'), []];
          execFile(
            cmd,
            [
              ...pre,
              'agent',
              '--cleanup',
              '--data-dir',
              dataDir,
              '--cluster-cidr',
              flag('--cluster-cidr', '10.42.0.0/16'),
              '--service-cidr',
              flag('--service-cidr', '10.43.0.0/16'),
            ],
            { timeout: 30_000 },
            () => resolve(),
          );
        });
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Runs kubectl and fails with its output when it exits non-zero. */
export async function ok(skiff: Skiff, args: string[], opts?: KubectlOptions): Promise<string> {
  const r = await skiff.kubectl(args, opts);
  if (r.code !== 0) {
    throw new Error(`kubectl ${args.join(' ')} failed (${r.code}):\n${r.stderr}${r.stdout}`);
  }
  return r.stdout;
}

/** Polls `check` until it returns a truthy value (returned), or fails after `ms`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T>,
  ms = 30_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
