// Node IPAM and ResourceQuota seen through the real kubectl against a real
// `skiff server`. Node health (NotReady after the grace period, taints,
// eviction) needs a grace period far shorter than the 40 s default, so it is
// covered by the controller tests (src/controllers/nodelifecycle.test.ts).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ok, type Skiff, startSkiff } from './harness.ts';

let skiff: Skiff;
before(async () => {
  skiff = await startSkiff();
});
after(async () => {
  await skiff?.stop();
});

async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('nodes and quotas with kubectl', () => {
  it('a new node gets a podCIDR from the cluster CIDR', async () => {
    await ok(skiff, ['apply', '-f', '-'], {
      input: 'apiVersion: v1\nkind: Node\nmetadata:\n  name: e2e-node\n',
    });
    const cidr = await until('podCIDR', async () => {
      const out = await ok(skiff, ['get', 'node', 'e2e-node', '-o', 'jsonpath={.spec.podCIDR}']);
      return out.trim() || undefined;
    });
    assert.match(cidr, /^10\.42\.\d+\.0\/24$/);
    const cidrs = await ok(skiff, ['get', 'node', 'e2e-node', '-o', 'jsonpath={.spec.podCIDRs[*]}']);
    assert.equal(cidrs.trim(), cidr);
  });

  it('kubectl describe quota shows what the namespace uses', async () => {
    await ok(skiff, ['create', 'namespace', 'quota-e2e']);
    await ok(skiff, ['create', 'quota', 'q', '-n', 'quota-e2e', '--hard=pods=5,services=2,requests.cpu=2']);
    await ok(skiff, ['apply', '-n', 'quota-e2e', '-f', '-'], {
      input: `apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  containers:
  - name: c
    image: busybox
    resources:
      requests: {cpu: 500m}
---
apiVersion: v1
kind: Service
metadata:
  name: s
spec:
  ports:
  - port: 80
`,
    });
    const described = await until('quota usage', async () => {
      const out = await ok(skiff, ['describe', 'quota', 'q', '-n', 'quota-e2e']);
      return /pods\s+1\s+5/.test(out) && /requests\.cpu\s+500m\s+2/.test(out) && /services\s+1\s+2/.test(out)
        ? out
        : undefined;
    });
    assert.match(described, /Resource\s+Used\s+Hard/);
    const used = await ok(skiff, [
      'get',
      'quota',
      'q',
      '-n',
      'quota-e2e',
      '-o',
      'jsonpath={.status.used.pods}',
    ]);
    assert.equal(used.trim(), '1');
  });
});
