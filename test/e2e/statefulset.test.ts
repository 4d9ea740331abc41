// StatefulSets through the real kubectl against a real `skiff server`: pods
// appear one at a time in ordinal order as each becomes Ready, `kubectl
// scale sts` adds the next ordinal, and `kubectl rollout status` follows a
// partitioned rolling update to its end. No kubelet runs, so the test plays
// its part with `kubectl patch --subresource=status`.

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

const NS = 'stateful';

const manifest = `apiVersion: v1
kind: Namespace
metadata:
  name: ${NS}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: ${NS}
spec:
  clusterIP: None
  selector: {app: web}
  ports:
  - port: 80
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
  namespace: ${NS}
spec:
  replicas: 2
  serviceName: web
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: nginx:1.27
`;

const k = (args: string[]) => ok(skiff, ['-n', NS, ...args]);

const podNames = async () =>
  (await k(['get', 'pods', '-o', 'jsonpath={.items[*].metadata.name}'])).split(' ').filter(Boolean).sort();

async function until<T>(what: string, check: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${skiff.logs().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Plays the kubelet: the pod is Running and Ready. */
const markReady = (pod: string) =>
  k([
    'patch',
    'pod',
    pod,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } }),
  ]);

const podField = (pod: string, jsonpath: string) => k(['get', 'pod', pod, '-o', `jsonpath=${jsonpath}`]);

describe('statefulsets with kubectl', () => {
  it('creates web-0, then web-1 once web-0 is ready; scales; follows a partitioned rollout; undoes it', async () => {
    await ok(skiff, ['apply', '-f', '-'], { input: manifest });

    await until('web-0', async () => (await podNames()).includes('web-0'));
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(await podNames(), ['web-0'], 'web-1 waits for web-0');
    assert.equal(await podField('web-0', '{.spec.hostname}.{.spec.subdomain}'), 'web-0.web');

    await markReady('web-0');
    await until('web-1', async () => (await podNames()).includes('web-1'));
    await markReady('web-1');
    await until('READY 2/2', async () => (await k(['get', 'sts', 'web'])).includes('2/2'));

    // kubectl scale goes through the /scale subresource.
    await k(['scale', 'sts', 'web', '--replicas=3']);
    await until('web-2', async () => (await podNames()).includes('web-2'));
    await markReady('web-2');
    await until('READY 3/3', async () => (await k(['get', 'sts', 'web'])).includes('3/3'));
    const oldRevision = await k(['get', 'sts', 'web', '-o', 'jsonpath={.status.updateRevision}']);

    // A partitioned update: only ordinals >= 2 move to the new template.
    await k(['patch', 'sts', 'web', '-p', '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}']);
    await k(['set', 'image', 'sts/web', 'app=nginx:1.28']);
    const rollout = k(['rollout', 'status', 'sts/web', '--timeout=60s']);
    await until(
      'web-2 at the new image',
      async () => (await podField('web-2', '{.spec.containers[0].image}')) === 'nginx:1.28',
    );
    await markReady('web-2');
    const out = await rollout;
    assert.match(out, /partitioned roll out complete: 1 new pods have been updated/);

    assert.equal(await podField('web-1', '{.spec.containers[0].image}'), 'nginx:1.27');
    assert.equal(await podField('web-0', '{.metadata.labels.controller-revision-hash}'), oldRevision);
    const history = await k(['rollout', 'history', 'sts/web']);
    assert.match(history, /^1\s/m);
    assert.match(history, /^2\s/m);

    // kubectl rollout undo applies revision 1's recorded template; the
    // controller re-uses that revision, renumbered 3, rather than a new one.
    await k(['rollout', 'undo', 'sts/web']);
    assert.equal(
      await k(['get', 'sts', 'web', '-o', 'jsonpath={.spec.template.spec.containers[0].image}']),
      'nginx:1.27',
    );
    await until('revision 3 is the old template', async () => {
      const status = await k(['get', 'sts', 'web', '-o', 'jsonpath={.status.updateRevision}']);
      const revision = await k(['get', 'controllerrevision', oldRevision, '-o', 'jsonpath={.revision}']);
      return status === oldRevision && revision === '3';
    });
  });
});
