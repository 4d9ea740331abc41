import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultKubeletConfig, KubeletConfigError, parseDuration, parseKubeletArgs } from './config.ts';

describe('kubelet config (--kubelet-arg)', () => {
  it('has upstream defaults', () => {
    const c = parseKubeletArgs([]);
    assert.deepEqual(c, defaultKubeletConfig());
    assert.equal(c.cgroupRoot, '/');
    assert.deepEqual(c.enforceNodeAllocatable, ['pods']);
    assert.deepEqual(c.evictionHard, [
      { signal: 'memory.available', quantity: '100Mi' },
      { signal: 'nodefs.available', percentage: 0.1 },
      { signal: 'imagefs.available', percentage: 0.15 },
      { signal: 'nodefs.inodesFree', percentage: 0.05 },
    ]);
    assert.equal(c.containerLogMaxSizeBytes, 10 * 1024 * 1024);
    assert.equal(c.containerLogMaxFiles, 5);
  });

  it('takes keys with or without dashes; later values win', () => {
    const c = parseKubeletArgs([
      'cgroup-root=skiff-a',
      '--kube-reserved=cpu=100m,memory=256Mi',
      'system-reserved=memory=1Gi',
      'eviction-hard=memory.available<200Mi,nodefs.available<5%',
      'eviction-soft=memory.available<1Gi',
      'eviction-soft-grace-period=memory.available=1m30s',
      'max-pods=20',
      'max-pods=30',
      'container-log-max-size=1Mi',
      'enforce-node-allocatable=none',
    ]);
    assert.equal(c.cgroupRoot, '/skiff-a');
    assert.deepEqual(c.kubeReserved, { cpu: '100m', memory: '256Mi' });
    assert.deepEqual(c.systemReserved, { memory: '1Gi' });
    assert.deepEqual(c.evictionHard, [
      { signal: 'memory.available', quantity: '200Mi' },
      { signal: 'nodefs.available', percentage: 0.05 },
    ]);
    assert.deepEqual(c.evictionSoftGracePeriod, { 'memory.available': 90 });
    assert.equal(c.maxPods, 30);
    assert.equal(c.containerLogMaxSizeBytes, 1024 * 1024);
    assert.deepEqual(c.enforceNodeAllocatable, []);
  });

  it('refuses what the kubelet would, saying what is wrong', () => {
    const refused = (args: string[], re: RegExp) =>
      assert.throws(
        () => parseKubeletArgs(args),
        (e: unknown) => e instanceof KubeletConfigError && re.test(e.message),
      );
    refused(['no-such-flag=1'], /unknown kubelet flag "no-such-flag".*cgroup-root/);
    refused(['eviction-hard=memory.available>1Gi'], /the only operator is </);
    refused(['eviction-hard=memory.free<1Gi'], /unknown eviction signal "memory.free"/);
    refused(['eviction-hard=nodefs.available<120%'], /between 0% and 100%/);
    refused(['kube-reserved=cpu=lots'], /invalid quantity "lots" for cpu/);
    refused(['kube-reserved=gpu=1'], /unknown resource "gpu"/);
    refused(['max-pods=0'], /max-pods/);
    refused(['image-gc-high-threshold=50', 'image-gc-low-threshold=60'], /must not be above/);
    refused(['enforce-node-allocatable=system-reserved'], /not supported/);
  });

  it('parses Go durations', () => {
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('0'), 0);
    assert.throws(() => parseDuration('10'), /invalid duration/);
    assert.throws(() => parseDuration('5x'), /invalid duration/);
  });
});
