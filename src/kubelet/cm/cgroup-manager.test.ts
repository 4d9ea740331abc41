import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cpuSharesToWeight, createCgroupManager, detectCgroupMode } from './cgroup-manager.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A v1 layout in a temporary directory: what the manager writes lands in ordinary files. */
function fakeV1(): string {
  const root = mkdtempSync(join(tmpdir(), 'cg-v1-'));
  dirs.push(root);
  for (const s of ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids']) mkdirSync(join(root, s));
  writeFileSync(join(root, 'cpuset', 'cpuset.cpus'), '0-1\n');
  writeFileSync(join(root, 'cpuset', 'cpuset.mems'), '0\n');
  return root;
}

describe('cgroup manager', () => {
  it('detects v1 (also hybrid) and v2 from the mount', () => {
    assert.equal(detectCgroupMode(fakeV1()), 'v1');
    const v2 = mkdtempSync(join(tmpdir(), 'cg-v2-'));
    dirs.push(v2);
    writeFileSync(join(v2, 'cgroup.controllers'), 'cpu memory pids\n');
    assert.equal(detectCgroupMode(v2), 'v2');
  });

  it('converts cpu shares to cgroup v2 weights as runc does', () => {
    assert.equal(cpuSharesToWeight(2), 1);
    assert.equal(cpuSharesToWeight(1024), 39);
    assert.equal(cpuSharesToWeight(262144), 10000);
  });

  it('v1: makes the cgroup in every controller, copies the cpuset, writes the limits', async () => {
    const root = fakeV1();
    const cg = createCgroupManager({ root, mode: 'v1' });
    await cg.create('/r/kubepods/burstable/podabc', {
      cpuShares: 512,
      cpuQuota: 50_000,
      cpuPeriod: 100_000,
      memoryLimit: 64 * 1024 * 1024,
    });
    const at = (s: string, f: string) =>
      readFileSync(join(root, s, 'r/kubepods/burstable/podabc', f), 'utf8');
    assert.equal(at('cpu', 'cpu.shares'), '512');
    assert.equal(at('cpu', 'cpu.cfs_quota_us'), '50000');
    assert.equal(at('memory', 'memory.limit_in_bytes'), String(64 * 1024 * 1024));
    assert.equal(at('cpuset', 'cpuset.cpus'), '0-1');
    assert.equal(readFileSync(join(root, 'cpuset', 'r/kubepods/cpuset.mems'), 'utf8'), '0');
    assert.ok(cg.exists('/r/kubepods/burstable/podabc'));
    assert.deepEqual(await cg.children('/r/kubepods/burstable'), ['/r/kubepods/burstable/podabc']);
    // No limit given: unlimited (-1), so a pod that loses its limit loses it in the cgroup too.
    await cg.update('/r/kubepods/burstable/podabc', { cpuShares: 2 });
    assert.equal(at('memory', 'memory.limit_in_bytes'), '-1');
  });

  it('v2: enables the controllers down the tree and writes weight, max', async () => {
    const root = mkdtempSync(join(tmpdir(), 'cg-v2-'));
    dirs.push(root);
    writeFileSync(join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
    writeFileSync(join(root, 'cgroup.subtree_control'), '');
    const cg = createCgroupManager({ root });
    assert.equal(cg.mode, 'v2');
    await cg.create('/kubepods', { cpuShares: 2048, memoryLimit: 1 << 30 });
    assert.equal(
      readFileSync(join(root, 'cgroup.subtree_control'), 'utf8'),
      '+cpuset +cpu +io +memory +pids',
    );
    assert.equal(readFileSync(join(root, 'kubepods', 'cpu.weight'), 'utf8'), String(cpuSharesToWeight(2048)));
    assert.equal(readFileSync(join(root, 'kubepods', 'memory.max'), 'utf8'), String(1 << 30));
    await cg.update('/kubepods', { cpuQuota: -1, cpuPeriod: 100_000 });
    assert.equal(readFileSync(join(root, 'kubepods', 'cpu.max'), 'utf8'), 'max 100000');
    assert.equal(readFileSync(join(root, 'kubepods', 'memory.max'), 'utf8'), 'max');
  });

  it('on this machine: a real cgroup gets its limit, and rmdir removes it (refused with a process in it)', async () => {
    const cg = createCgroupManager();
    const name = `/skiff-unit-${process.pid}/kubepods/podtest`;
    try {
      await cg.create(name, { cpuShares: 256, memoryLimit: 32 * 1024 * 1024 });
      assert.equal(
        await cg.read('memory', name, cg.mode === 'v2' ? 'memory.max' : 'memory.limit_in_bytes'),
        String(32 * 1024 * 1024),
      );
      assert.ok(cg.exists(name));
      assert.deepEqual(await cg.pids(name), []);
      assert.equal(typeof (await cg.memoryWorkingSet(name)), 'number');
      // A process in it: the kernel refuses the rmdir, so a pod's cgroup is never taken from under it.
      const sleeper = spawn('sleep', ['30']);
      try {
        const procs =
          cg.mode === 'v2'
            ? join('/sys/fs/cgroup', name, 'cgroup.procs')
            : join('/sys/fs/cgroup/memory', name, 'cgroup.procs');
        writeFileSync(procs, String(sleeper.pid));
        assert.deepEqual(await cg.pids(name), [sleeper.pid]);
        await assert.rejects(cg.destroy(name), /EBUSY/);
        assert.ok(cg.exists(name));
      } finally {
        const exited = new Promise((r) => sleeper.once('exit', r));
        sleeper.kill('SIGKILL');
        await exited;
      }
    } finally {
      await cg.destroy(`/skiff-unit-${process.pid}`);
    }
    assert.equal(cg.exists(name), false);
  });
});
