// ReplicaSets and ReplicationControllers through the real kubectl against a
// real `skiff server`: apply, watch the controller make pods, scale through
// the /scale subresource, and read DESIRED/CURRENT/READY back.

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

const NS = 'replication';

const manifest = `apiVersion: v1
kind: Namespace
metadata:
  name: ${NS}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web
  namespace: ${NS}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: busybox
        command: ["sleep", "3600"]
---
apiVersion: v1
kind: ReplicationController
metadata:
  name: legacy
  namespace: ${NS}
spec:
  replicas: 2
  template:
    metadata:
      labels: {app: legacy}
    spec:
      containers:
      - name: legacy
        image: busybox
        command: ["sleep", "3600"]
`;

const k = (args: string[], version = '1.32') => ok(skiff, ['-n', NS, ...args], { version });

/** Names of the active pods with label app=`app`. */
async function podNames(app: string): Promise<string[]> {
  const list = JSON.parse(await k(['get', 'pods', '-l', `app=${app}`, '-o', 'json']));
  return (list.items as { metadata: { name: string; deletionTimestamp?: string } }[])
    .filter((p) => !p.metadata.deletionTimestamp)
    .map((p) => p.metadata.name);
}

async function until<T>(what: string, check: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
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

const podCount = (app: string, n: number) =>
  until(`${n} pods with app=${app}`, async () => {
    const names = await podNames(app);
    return names.length === n ? names : undefined;
  });

/** The row of `kubectl get <what>` for `name`, split into columns. */
async function row(
  what: string,
  name: string,
  version = '1.32',
): Promise<{ header: string[]; cells: string[] }> {
  const out = (await k(['get', what, name], version)).trim().split('\n');
  return { header: out[0]?.split(/\s+/) ?? [], cells: out[1]?.split(/\s+/) ?? [] };
}

describe('replication controllers with kubectl', () => {
  it('kubectl apply: the ReplicaSet and the ReplicationController get their pods', async () => {
    await ok(skiff, ['apply', '-f', '-'], { input: manifest });
    const rsPods = await podCount('web', 3);
    for (const name of rsPods) assert.match(name, /^web-[a-z0-9]{5}$/);
    await podCount('legacy', 2);
    const pod = JSON.parse(await k(['get', 'pod', rsPods[0] ?? '', '-o', 'json']));
    assert.equal(pod.metadata.ownerReferences[0].kind, 'ReplicaSet');
    assert.equal(pod.metadata.ownerReferences[0].controller, true);
    const describe = await k(['describe', 'rs', 'web']);
    assert.match(describe, /SuccessfulCreate\s+.*Created pod: web-/);
  });

  it('kubectl get rs / rc shows DESIRED, CURRENT and READY', async () => {
    // Play the kubelet: one pod of the ReplicaSet becomes ready.
    const [first] = await podNames('web');
    await k([
      'patch',
      'pod',
      first ?? '',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } }),
    ]);
    const rs = await until('rs web 3/3/1', async () => {
      const r = await row('rs', 'web');
      return r.cells.slice(0, 4).join(' ') === 'web 3 3 1' ? r : undefined;
    });
    assert.deepEqual(rs.header.slice(0, 4), ['NAME', 'DESIRED', 'CURRENT', 'READY']);
    const rc = await until('rc legacy 2/2/0', async () => {
      const r = await row('rc', 'legacy');
      return r.cells.slice(0, 4).join(' ') === 'legacy 2 2 0' ? r : undefined;
    });
    assert.deepEqual(rc.header.slice(0, 4), ['NAME', 'DESIRED', 'CURRENT', 'READY']);
  });

  it('kubectl scale rs (1.32) and rc (1.27): the pod count follows', async () => {
    assert.match(await k(['scale', 'rs/web', '--replicas=5']), /replicaset.apps\/web scaled/);
    await podCount('web', 5);
    assert.match(
      await k(['scale', 'rc/legacy', '--replicas=4'], '1.27'),
      /replicationcontroller\/legacy scaled/,
    );
    await podCount('legacy', 4);

    // Scale down: the ready pod is the one kept.
    const ready = JSON.parse(await k(['get', 'pods', '-l', 'app=web', '-o', 'json'])).items.find(
      (p: { status?: { conditions?: { type: string; status: string }[] } }) =>
        p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    await k(['scale', 'rs/web', '--replicas=1']);
    assert.deepEqual(await podCount('web', 1), [ready.metadata.name]);
    await k(['scale', 'rc/legacy', '--replicas=1'], '1.27');
    await podCount('legacy', 1);
    await until(
      'rs web 1/1/1',
      async () => (await row('rs', 'web')).cells.slice(0, 4).join(' ') === 'web 1 1 1',
    );
  });
});
