// Runs and drives Debian's HAProxy (2.6): one master-worker process per
// node, supervised (restarted with backoff when it exits unasked), reloaded
// with SIGUSR2 (the master starts a new worker with the listening sockets of
// the old one, which finishes its connections: no request is dropped), and
// told about endpoint changes through the runtime API on its admin socket.
//
// Its pid is written to <dir>/haproxy.pid, so a node whose agent was killed
// finds and stops a left-over HAProxy on its next start, and so does
// `skiff agent --cleanup` (stopLeftover).

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Log } from '../util/log.ts';

export const HAPROXY_BINARY = '/usr/sbin/haproxy';
const PID_FILE = 'haproxy.pid';

export interface HAProxyOptions {
  /** The config file and the admin socket's directory. */
  dir: string;
  configFile: string;
  adminSocket: string;
  binary?: string;
  log?: Log;
}

export interface HAProxy {
  /** Starts the process; resolves once its admin socket answers. */
  start(): Promise<void>;
  /** Checks a config file (haproxy -c; default the config file); throws with HAProxy's own message. */
  check(file?: string): Promise<void>;
  /** Reloads the config file; resolves once the new worker answers. */
  reload(): Promise<void>;
  /** Runs runtime API commands; returns their output. */
  runtime(commands: readonly string[]): Promise<string>;
  stop(): Promise<void>;
  /** How many times it was restarted after exiting unasked. */
  readonly restarts: number;
}

/** Sends one line of `;`-separated commands to a runtime API socket and reads the answer. */
export function runtimeCommand(socket: string, line: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(socket);
    let out = '';
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`HAProxy runtime API at ${socket} did not answer in ${timeoutMs} ms`));
    }, timeoutMs);
    c.setEncoding('utf8');
    c.on('connect', () => c.write(`${line}\n`));
    c.on('data', (d) => (out += d));
    c.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    c.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

const workerPid = async (socket: string): Promise<number | undefined> => {
  const info = await runtimeCommand(socket, 'show info', 2000).catch(() => '');
  const m = /^Pid: (\d+)$/m.exec(info);
  return m ? Number(m[1]) : undefined;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether pid is a live HAProxy using this config (not a recycled pid). */
function isOurHAProxy(pid: number, configFile: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return cmdline.some((a) => a.endsWith('haproxy')) && cmdline.includes(configFile);
  } catch {
    return false;
  }
}

/** Stops an HAProxy a previous run left behind (its pid file), if any. */
export async function stopLeftover(dir: string, configFile: string): Promise<boolean> {
  const pidFile = join(dir, PID_FILE);
  if (!existsSync(pidFile)) return false;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  rmSync(pidFile, { force: true });
  if (!Number.isInteger(pid) || pid <= 0 || !isOurHAProxy(pid, configFile)) return false;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 100 && isOurHAProxy(pid, configFile); i++) await sleep(50);
  if (isOurHAProxy(pid, configFile)) process.kill(pid, 'SIGKILL');
  return true;
}

export function createHAProxy(opts: HAProxyOptions): HAProxy {
  const binary = opts.binary ?? HAPROXY_BINARY;
  const pidFile = join(opts.dir, PID_FILE);
  let child: ChildProcess | undefined;
  let stopping = false;
  let restarts = 0;
  let backoffMs = 0;

  const waitForSocket = async (notPid?: number) => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const pid = await workerPid(opts.adminSocket);
      if (pid !== undefined && pid !== notPid) return;
      if (child?.exitCode !== null && child?.exitCode !== undefined)
        throw new Error(`haproxy exited with code ${child.exitCode}`);
      if (Date.now() > deadline) throw new Error('HAProxy did not answer on its admin socket in 15 s');
      await sleep(10);
    }
  };

  const launch = async () => {
    // -W: master-worker (reloads on SIGUSR2); -db: stays in the foreground, our child.
    const proc = spawn(binary, ['-W', '-db', '-f', opts.configFile, '-p', pidFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    const relay = (d: Buffer) => {
      for (const line of d.toString('utf8').split('\n'))
        if (line.trim()) opts.log?.('haproxy', { output: line.trim() });
    };
    proc.stdout?.on('data', relay);
    proc.stderr?.on('data', relay);
    proc.once('exit', (code, signal) => {
      if (stopping || child !== proc) return;
      child = undefined;
      restarts++;
      backoffMs = Math.min(Math.max(backoffMs * 2, 500), 30_000);
      opts.log?.error('haproxy exited; restarting it', { code, signal, retryMs: backoffMs });
      setTimeout(() => {
        if (!stopping)
          launch().catch((err) => opts.log?.error('haproxy did not restart', { error: String(err) }));
      }, backoffMs);
    });
    await waitForSocket();
    backoffMs = 0;
  };

  return {
    get restarts() {
      return restarts;
    },
    async start() {
      await stopLeftover(opts.dir, opts.configFile);
      rmSync(opts.adminSocket, { force: true });
      await launch();
    },
    async check(file = opts.configFile) {
      try {
        await promisify(execFile)(binary, ['-c', '-q', '-f', file], { timeout: 30_000 });
      } catch (err) {
        const e = err as { stderr?: string; stdout?: string; message: string };
        throw new Error(`haproxy refused the configuration: ${(e.stderr || e.stdout || e.message).trim()}`);
      }
    },
    async reload() {
      if (!child?.pid) throw new Error('haproxy is not running');
      const before = await workerPid(opts.adminSocket);
      child.kill('SIGUSR2');
      await waitForSocket(before);
    },
    async runtime(commands) {
      // One connection per batch that fits HAProxy's request buffer (16 kB).
      let out = '';
      let line = '';
      for (const c of commands) {
        if (line.length + c.length > 8000) {
          out += await runtimeCommand(opts.adminSocket, line);
          line = '';
        }
        line = line ? `${line};${c}` : c;
      }
      if (line) out += await runtimeCommand(opts.adminSocket, line);
      return out;
    },
    async stop() {
      stopping = true;
      const proc = child;
      child = undefined;
      if (!proc || proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      rmSync(pidFile, { force: true });
    },
  };
}
