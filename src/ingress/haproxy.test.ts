// The HAProxy supervisor against Debian's real binary: it starts, reloads
// to a new worker, takes runtime API commands, is restarted when it dies
// unasked, and a left-over process (its agent killed) is stopped by the pid
// file. Ports are free ones on loopback.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createHAProxy, runtimeCommand, stopLeftover } from './haproxy.ts';

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });

const config = (dir: string, port: number, servers: number) => `global
  stats socket ${join(dir, 'admin.sock')} mode 600 level admin expose-fd listeners
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend f
  bind 127.0.0.1:${port}
  default_backend b
backend b
${Array.from({ length: servers }, (_, i) => `  server s${i + 1} 127.0.0.1:1 disabled`).join('\n')}
`;

const workerPid = async (sock: string) =>
  Number(/^Pid: (\d+)$/m.exec(await runtimeCommand(sock, 'show info'))?.[1]);
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('HAProxy supervisor', () => {
  it('starts, reloads to a new worker, runs runtime commands, restarts after a crash, and stops', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-haproxy-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const configFile = join(dir, 'haproxy.cfg');
    const sock = join(dir, 'admin.sock');
    const port = await freePort();
    writeFileSync(configFile, config(dir, port, 2));
    const h = createHAProxy({ dir, configFile, adminSocket: sock });
    t.after(() => h.stop());
    await h.start();
    const first = await workerPid(sock);
    assert.ok(first > 0);

    writeFileSync(configFile, config(dir, port, 4));
    await h.check();
    await h.reload();
    const second = await workerPid(sock);
    assert.notEqual(second, first, 'a new worker answers after the reload');
    const state = await h.runtime(['set server b/s4 addr 127.0.0.2 port 8080', 'show servers state b']);
    assert.match(state, /\bb 4 s4 127\.0\.0\.2 \d+ \d+ .* 8080 /);

    writeFileSync(configFile, 'not a config\n');
    await assert.rejects(h.check(), /haproxy refused the configuration/);
    writeFileSync(configFile, config(dir, port, 4));

    // The master dies unasked: the supervisor starts another.
    const master = Number(readFileSync(join(dir, 'haproxy.pid'), 'utf8').trim().split('\n')[0]);
    process.kill(master, 'SIGKILL');
    const deadline = Date.now() + 20_000;
    while (h.restarts === 0 || !(await workerPid(sock).catch(() => 0))) {
      assert.ok(Date.now() < deadline, 'restarted within 20 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(h.restarts, 1);
    await h.stop();
    await assert.rejects(runtimeCommand(sock, 'show info'));
  });

  it('stops a left-over HAProxy of its directory by the pid file, and nothing else', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-haproxy-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const configFile = join(dir, 'haproxy.cfg');
    writeFileSync(configFile, config(dir, await freePort(), 1));
    const h = createHAProxy({ dir, configFile, adminSocket: join(dir, 'admin.sock') });
    t.after(() => h.stop());
    await h.start();
    const master = Number(readFileSync(join(dir, 'haproxy.pid'), 'utf8').trim().split('\n')[0]);
    assert.equal(await stopLeftover(dir, join(dir, 'other.cfg')), false, 'another config: not ours');
    writeFileSync(join(dir, 'haproxy.pid'), `${master}\n`);
    assert.equal(await stopLeftover(dir, configFile), true);
    // Our own child here: until this process reaps it, the dead master is a
    // zombie that kill(pid, 0) still finds, so wait for the reaping.
    for (let i = 0; i < 100 && alive(master); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(alive(master), false);
  });
});
