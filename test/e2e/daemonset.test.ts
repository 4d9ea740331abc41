// DaemonSets through the real kubectl against a real `skiff server`: a
// daemon pod for each matching Node, `kubectl rollout status` following a
// rolling update to its end, and `kubectl rollout history` / `rollout undo`
// reading and re-applying the ControllerRevisions. No kubelet runs, so the
// test plays its part with `kubectl patch --subresource=status`.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KUBECTL_VERSIONS, ok, type Skiff, startSkiff } from './harness.ts';

let skiff: Skiff;
before(async () => {
  skiff = await startSkiff();
});
after(async () => {
  await skiff?.stop();
});

const NS = 'daemons';

const node = (name: string, role: string) => `apiVersion: v1
kind: Node
metadata:
  name: ${name}
  labels: {role: ${role}}
`;

const manifest = `apiVersion: v1
kind: Namespace
metadata:
  name: ${NS}
---
${node('worker-1', 'worker')}---
${node('worker-2', 'worker')}---
${node('control-1', 'control')}---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  namespace: ${NS}
  annotations:
    kubernetes.io/change-cause: first version
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      nodeSelector: {role: worker}
      containers:
      - name: agent
        image: agent:1
`;

const k = (args: string[]) => ok(skiff, ['-n', NS, ...args]);

async function until<T>(what: string, check: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${skiff.logs().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface PodView {
  name: string;
  image: string;
  phase: string;
  deleting: boolean;
}

async function pods(): Promise<PodView[]> {
  const list = JSON.parse(await k(['get', 'pods', '-l', 'app=agent', '-o', 'json'])) as {
    items: {
      metadata: { name: string; deletionTimestamp?: string };
      spec: { containers: { image: string }[] };
      status?: { phase?: string };
    }[];
  };
  return list.items.map((p) => ({
    name: p.metadata.name,
    image: p.spec.containers[0]?.image ?? '',
    phase: p.status?.phase ?? '',
    deleting: !!p.metadata.deletionTimestamp,
  }));
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

/** Marks every pod that is not Running yet Ready, until `done` resolves. */
async function kubeletUntil(done: Promise<unknown>): Promise<void> {
  let finished = false;
  const finish = () => {
    finished = true;
  };
  done.then(finish, finish);
  while (!finished) {
    for (const p of await pods().catch(() => [])) {
      if (p.phase !== 'Running' && !p.deleting) await markReady(p.name).catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('daemonsets with kubectl', () => {
  it('runs a pod per worker node; rollout status, history and undo follow its revisions', async () => {
    await ok(skiff, ['apply', '-f', '-'], { input: manifest });
    await until('a pod per worker node', async () => (await pods()).length === 2);

    const first = k(['rollout', 'status', 'ds/agent', '--timeout=60s']);
    await kubeletUntil(first);
    assert.match(await first, /daemon set "agent" successfully rolled out/);
    const columns = (await k(['get', 'ds', 'agent', '--no-headers'])).trim().split(/\s+/);
    // NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE
    assert.deepEqual(columns.slice(0, 7), ['agent', '2', '2', '2', '2', '2', 'role=worker']);

    await k(['set', 'image', 'ds/agent', 'agent=agent:2']);
    const second = k(['rollout', 'status', 'ds/agent', '--timeout=60s']);
    await kubeletUntil(second);
    const out = await second;
    assert.match(out, /daemon set "agent" successfully rolled out/);
    assert.deepEqual(
      (await pods()).filter((p) => !p.deleting).map((p) => p.image),
      ['agent:2', 'agent:2'],
    );

    const history = await k(['rollout', 'history', 'ds/agent']);
    assert.match(history, /REVISION\s+CHANGE-CAUSE/);
    assert.match(history, /^1\s+first version$/m);
    assert.match(history, /^2\s+/m);
    assert.match(await k(['rollout', 'history', 'ds/agent', '--revision=1']), /Image:\s+agent:1/);
    assert.match(await k(['rollout', 'history', 'ds/agent', '--revision=2']), /Image:\s+agent:2/);

    // Undo re-applies revision 1's template, which becomes revision 3.
    await k(['rollout', 'undo', 'ds/agent']);
    const third = k(['rollout', 'status', 'ds/agent', '--timeout=60s']);
    await kubeletUntil(third);
    assert.match(await third, /successfully rolled out/);
    assert.deepEqual(
      (await pods()).filter((p) => !p.deleting).map((p) => p.image),
      ['agent:1', 'agent:1'],
    );
    const afterUndo = await k(['rollout', 'history', 'ds/agent']);
    assert.match(afterUndo, /^2\s+/m);
    assert.match(afterUndo, /^3\s+/m);
    assert.doesNotMatch(afterUndo, /^1\s+/m);

    // Older and newer kubectls read the same status and revisions.
    for (const version of KUBECTL_VERSIONS) {
      const status = await ok(skiff, ['-n', NS, 'rollout', 'status', 'ds/agent', '--timeout=10s'], {
        version,
      });
      assert.match(status, /successfully rolled out/, version);
      const listed = await ok(skiff, ['-n', NS, 'rollout', 'history', 'ds/agent'], { version });
      assert.match(listed, /^3\s+/m, version);
      const shown = await ok(skiff, ['-n', NS, 'rollout', 'history', 'ds/agent', '--revision=2'], {
        version,
      });
      assert.match(shown, /Image:\s+agent:2/, version);
    }
  });
});
