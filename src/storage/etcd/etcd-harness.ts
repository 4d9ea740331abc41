// Real etcd processes for tests: one member or a small cluster, on loopback
// ports nobody else holds, with throwaway data directories.
//
// Tests run against the Debian etcd binary rather than a fake because the
// point of the etcd backend is etcd's own semantics (revisions, compaction,
// raft failover); a fake would only test our reading of the docs.

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';

const ETCD_BIN = process.env['SKIFF_ETCD_BIN'] ?? '/usr/bin/etcd';
const HOST = '127.0.0.1';

export interface EtcdClusterOptions {
  /** Number of members (default 1). */
  members?: number;
  /**
   * Raft timings in ms. Tests that kill the leader want a short election
   * timeout so failover takes well under a second instead of etcd's ~1 s+.
   */
  heartbeatMs?: number;
  electionMs?: number;
  /** Give up waiting for the cluster to become healthy after this long. */
  startTimeoutMs?: number;
}

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  /** Whether the process is currently running. */
  readonly running: boolean;
}

export interface EtcdCluster {
  /** Client URLs of all members, for createEtcdStore({ endpoints }). */
  readonly endpoints: string[];
  readonly members: readonly EtcdMember[];
  /** Index of the current raft leader, asked of the running members. */
  leader(): Promise<number>;
  /** Sends a signal (default SIGKILL) to one member and waits for it to exit. */
  kill(index: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a stopped member again on its old ports and data directory. */
  restart(index: number): Promise<void>;
  /** Kills every member and deletes all data. Safe to call more than once. */
  stop(): Promise<void>;
}

/** A loopback port that was free a moment ago (the OS picked it for port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      srv.close(() => {
        if (addr && typeof addr === 'object') resolve(addr.port);
        else reject(new Error('could not allocate a port'));
      });
    });
  });
}

class Member implements EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly args: string[];
  proc: ChildProcess | undefined;
  exited: Promise<void> = Promise.resolve();
  // The tail of etcd's output, to explain a failed start without flooding
  // the test log on success.
  log = '';

  constructor(name: string, clientPort: number, peerPort: number, dataDir: string, args: string[]) {
    this.name = name;
    this.clientUrl = `http://${HOST}:${clientPort}`;
    this.peerUrl = `http://${HOST}:${peerPort}`;
    this.dataDir = dataDir;
    this.args = args;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  start(): void {
    // Inherited ETCD_* variables would silently override our flags.
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCD')) env[k] = v;
    const proc = spawn(ETCD_BIN, this.args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString('utf8')).slice(-8000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      proc.once('exit', () => resolve());
      proc.once('error', (err) => {
        this.log += `\nspawn failed: ${err.message}`;
        resolve();
      });
    });
    this.proc = proc;
    live.add(this);
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    if (this.running) this.proc!.kill(signal);
    await this.exited;
    live.delete(this);
  }
}

// Members still running, so a test process that dies without stop() does
// not leave etcd processes behind holding ports.
const live = new Set<Member>();
process.once('exit', () => {
  for (const m of live) if (m.running) m.proc!.kill('SIGKILL');
});

async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
    // /health reports true only once the member sees a leader, which is
    // what "ready for writes" means for a cluster too.
    const body = (await res.json()) as { health?: string };
    return body.health === 'true';
  } catch {
    return false;
  }
}

async function waitHealthy(members: Member[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = members.find((m) => !m.running);
    if (dead) throw new Error(`etcd member ${dead.name} exited during startup:\n${dead.log}`);
    const ok = await Promise.all(members.map((m) => healthy(m.clientUrl)));
    if (ok.every(Boolean)) return;
    if (Date.now() > deadline) {
      throw new Error(
        `etcd did not become healthy within ${timeoutMs} ms:\n${members.map((m) => `${m.name}: ${m.log}`).join('\n')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startOnce(opts: EtcdClusterOptions): Promise<EtcdCluster> {
  const n = opts.members ?? 1;
  const heartbeat = opts.heartbeatMs ?? 100;
  const election = opts.electionMs ?? 1000;
  const token = `skiff-test-${randomBytes(6).toString('hex')}`;
  const ports: Array<{ client: number; peer: number }> = [];
  // Allocate all ports before starting anything: ports are only released
  // by close(), so asking for them one by one could hand out one twice.
  const held = new Set<number>();
  while (ports.length < n) {
    const client = await freePort();
    const peer = await freePort();
    if (client === peer || held.has(client) || held.has(peer)) continue;
    held.add(client).add(peer);
    ports.push({ client, peer });
  }
  const names = ports.map((_, i) => `m${i}`);
  const initialCluster = ports.map((p, i) => `${names[i]}=http://${HOST}:${p.peer}`).join(',');
  const members: Member[] = [];
  for (let i = 0; i < n; i++) {
    const p = ports[i]!;
    const name = names[i]!;
    const dataDir = await mkdtemp(join(tmpdir(), `skiff-etcd-${name}-`));
    const clientUrl = `http://${HOST}:${p.client}`;
    const peerUrl = `http://${HOST}:${p.peer}`;
    members.push(
      new Member(name, p.client, p.peer, dataDir, [
        `--name=${name}`,
        `--data-dir=${dataDir}`,
        `--listen-client-urls=${clientUrl}`,
        `--advertise-client-urls=${clientUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=${initialCluster}`,
        `--initial-cluster-state=new`,
        `--initial-cluster-token=${token}`,
        `--heartbeat-interval=${heartbeat}`,
        `--election-timeout=${election}`,
        // Warnings and errors only, kept in memory for the failure message.
        '--logger=zap',
        '--log-outputs=stderr',
        '--log-level=warn',
      ]),
    );
  }

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // The data is thrown away, so there is nothing a graceful shutdown would save.
    await Promise.all(members.map((m) => m.kill('SIGKILL')));
    await Promise.all(members.map((m) => rm(m.dataDir, { recursive: true, force: true })));
  };

  try {
    for (const m of members) m.start();
    await waitHealthy(members, opts.startTimeoutMs ?? 20_000);
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    endpoints: members.map((m) => m.clientUrl),
    members,
    async leader() {
      // Each member reports its own id and the leader's; match them up.
      const statuses = await Promise.all(
        members.map(async (m, index) => {
          if (!m.running) return undefined;
          const client = new Etcd3({ hosts: m.clientUrl, dialTimeout: 2000 });
          try {
            const s = await client.maintenance.status({});
            return { index, id: s.header.member_id, leader: s.leader };
          } catch {
            return undefined; // unreachable or mid-election: the others can answer
          } finally {
            client.close();
          }
        }),
      );
      const known = statuses.filter((s) => s !== undefined);
      for (const s of known) {
        const leader = known.find((x) => x.id === s.leader && s.leader !== '0');
        if (leader) return leader.index;
      }
      throw new Error('no running etcd member knows a leader');
    },
    async kill(index, signal = 'SIGKILL') {
      const m = members[index];
      if (!m) throw new Error(`no etcd member ${index}`);
      await m.kill(signal);
    },
    async restart(index) {
      const m = members[index];
      if (!m) throw new Error(`no etcd member ${index}`);
      if (m.running) await m.kill('SIGKILL');
      // An existing data dir makes etcd ignore the --initial-* flags and
      // rejoin with its stored identity, which is what a restart means.
      m.start();
      await waitHealthy(
        members.filter((x) => x.running),
        opts.startTimeoutMs ?? 20_000,
      );
    },
    stop,
  };
}

/**
 * Starts etcd and waits until every member is healthy. A port can be taken
 * between freePort() and etcd binding it, so a failed start is retried on
 * fresh ports.
 */
export async function startEtcd(opts: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      lastErr = err;
    }
  }
  throw lastErr;
}
