// The classic guestbook hostPort scenario with the real kubectl against a
// real `skiff server` (scheduler and ReplicationController controller in
// process): three replicas that each need host port 80 fit on two Nodes only
// twice, the third stays Pending and says why; a third Node takes it; then
// `kubectl cordon` and `kubectl drain` move a pod off its node through the
// eviction API, respecting a PodDisruptionBudget.
//
// There is no kubelet: Nodes are plain API objects, and the test plays the
// kubelet's part by reporting scheduled pods Running and Ready.

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

const NS = 'guestbook';
const PRIORITY_NS = 'priority';
const k = (args: string[]) => ok(skiff, ['-n', NS, ...args]);

/** A Node as a kubelet registers it: Ready, with room for pods. */
const node = (name: string) => `apiVersion: v1
kind: Node
metadata:
  name: ${name}
  labels: {kubernetes.io/hostname: ${name}}
status:
  capacity: {cpu: "4", memory: 8Gi, pods: "110"}
  allocatable: {cpu: "4", memory: 8Gi, pods: "110"}
  conditions:
  - {type: Ready, status: "True"}
`;

const manifest = `apiVersion: v1
kind: Namespace
metadata:
  name: ${NS}
---
${node('node-1')}---
${node('node-2')}---
apiVersion: v1
kind: ReplicationController
metadata:
  name: frontend
  namespace: ${NS}
spec:
  replicas: 3
  selector: {app: guestbook}
  template:
    metadata:
      labels: {app: guestbook}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: php-redis
        image: gcr.io/google-samples/gb-frontend:v4
        ports:
        - containerPort: 80
          hostPort: 80
`;

interface PodView {
  name: string;
  node: string | undefined;
  phase: string | undefined;
  deleting: boolean;
}

async function pods(): Promise<PodView[]> {
  const list = JSON.parse(await k(['get', 'pods', '-l', 'app=guestbook', '-o', 'json']));
  return (
    list.items as {
      metadata: { name: string; deletionTimestamp?: string };
      spec: { nodeName?: string };
      status?: { phase?: string };
    }[]
  ).map((p) => ({
    name: p.metadata.name,
    node: p.spec.nodeName,
    phase: p.status?.phase,
    deleting: !!p.metadata.deletionTimestamp,
  }));
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

/** Plays the kubelet: every scheduled pod not yet Running is reported Running and Ready. */
async function runScheduledPods(): Promise<void> {
  for (const p of await pods()) {
    if (!p.node || p.deleting || p.phase === 'Running') continue;
    await k([
      'patch',
      'pod',
      p.name,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } }),
    ]);
  }
}

const FAILED_SCHEDULING =
  "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports. " +
  'preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod..';

describe('priority classes', () => {
  it('the cluster starts with system-node-critical and system-cluster-critical, and pods resolve them', async () => {
    const out = await ok(skiff, ['get', 'priorityclasses']);
    assert.match(out, /system-cluster-critical\s+2000000000\s+false/);
    assert.match(out, /system-node-critical\s+2000001000\s+false/);
    // Its own namespace, removed at the end: the pod could otherwise be
    // scheduled onto a Node of the guestbook tests below and, with no
    // kubelet there to finish its termination, hold up their drain.
    await ok(skiff, ['create', 'namespace', PRIORITY_NS]);
    await ok(skiff, [
      '-n',
      PRIORITY_NS,
      'run',
      'critical',
      '--image=busybox',
      '--overrides',
      JSON.stringify({ spec: { priorityClassName: 'system-cluster-critical' } }),
    ]);
    const pod = JSON.parse(await ok(skiff, ['-n', PRIORITY_NS, 'get', 'pod', 'critical', '-o', 'json']));
    assert.equal(pod.spec.priority, 2000000000);
    assert.equal(pod.spec.preemptionPolicy, 'PreemptLowerPriority');
    const refused = await skiff.kubectl([
      '-n',
      PRIORITY_NS,
      'run',
      'nope',
      '--image=busybox',
      '--overrides',
      JSON.stringify({ spec: { priorityClassName: 'gold' } }),
    ]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /pods "nope" is forbidden: no PriorityClass with name gold was found/);
  });

  after(async () => {
    // No kubelet runs here, so the pod is removed at once rather than left terminating.
    await skiff?.kubectl([
      '-n',
      PRIORITY_NS,
      'delete',
      'pod',
      'critical',
      '--force',
      '--grace-period=0',
      '--ignore-not-found',
    ]);
    await skiff?.kubectl(['delete', 'namespace', PRIORITY_NS, '--ignore-not-found', '--wait=false']);
  });
});

describe('guestbook: hostPort scheduling, cordon and drain', () => {
  let pending = '';

  it('three replicas with hostPort 80 on two nodes: one pod stays Pending and says why', async () => {
    await ok(skiff, ['apply', '-f', '-'], { input: manifest });
    const all = await until('two pods scheduled and one pending', async () => {
      const ps = (await pods()).filter((p) => !p.deleting);
      const scheduled = ps.filter((p) => p.node);
      return ps.length === 3 && scheduled.length === 2 ? ps : undefined;
    });
    const nodes = all.map((p) => p.node).filter(Boolean);
    assert.deepEqual([...nodes].sort(), ['node-1', 'node-2'], 'one pod per node: the port is taken');
    pending = all.find((p) => !p.node)!.name;

    const describe = await until('FailedScheduling in kubectl describe', async () => {
      const out = await k(['describe', 'pod', pending]);
      return out.includes('FailedScheduling') ? out : undefined;
    });
    assert.match(describe, /Status:\s+Pending/);
    // describe wraps nothing, but columns are separated by runs of spaces.
    assert.ok(describe.includes(FAILED_SCHEDULING), describe);
    assert.match(describe, /PodScheduled\s+False/);

    const events = await k([
      'get',
      'events',
      '--field-selector',
      `involvedObject.name=${pending},reason=FailedScheduling`,
      '-o',
      'json',
    ]);
    const items = JSON.parse(events).items as {
      type: string;
      message: string;
      source?: { component?: string };
    }[];
    assert.equal(items[0]?.type, 'Warning');
    assert.equal(items[0]?.message, FAILED_SCHEDULING);
    assert.equal(items[0]?.source?.component, 'default-scheduler');
  });

  it('a third node arrives and the pending pod is scheduled onto it', async () => {
    await ok(skiff, ['apply', '-f', '-'], { input: node('node-3') });
    const bound = await until('the pending pod scheduled', async () => {
      const p = (await pods()).find((x) => x.name === pending);
      return p?.node;
    });
    assert.equal(bound, 'node-3');
    const describe = await k(['describe', 'pod', pending]);
    assert.match(describe, new RegExp(`Scheduled\\s+.*Successfully assigned ${NS}/${pending} to node-3`));
    await runScheduledPods();
  });

  it('kubectl cordon and drain move the pod off its node through the eviction API', async () => {
    // Somewhere for the evicted pod's replacement to go.
    await ok(skiff, ['apply', '-f', '-'], { input: node('node-4') });
    // At least two of the three must stay available while draining.
    await ok(skiff, ['apply', '-f', '-'], {
      input: `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: frontend
  namespace: ${NS}
spec:
  minAvailable: 2
  selector:
    matchLabels: {app: guestbook}
`,
    });
    const before = (await pods()).find((p) => p.node === 'node-1');
    assert.ok(before, 'a pod runs on node-1');

    assert.match(await ok(skiff, ['cordon', 'node-1']), /node\/node-1 cordoned/);
    const node1 = JSON.parse(await ok(skiff, ['get', 'node', 'node-1', '-o', 'json']));
    assert.equal(node1.spec.unschedulable, true);

    const drain = await ok(skiff, ['drain', 'node-1', '--ignore-daemonsets', '--force', '--timeout=60s'], {
      timeoutMs: 90_000,
    });
    assert.match(drain, new RegExp(`evicting pod ${NS}/${before.name}`));
    assert.match(drain, new RegExp(`pod/${before.name} evicted`));
    assert.match(drain, /node\/node-1 drained/);

    // The RC replaces the pod; the scheduler puts the replacement on the free node.
    const after = await until('three pods again, none on node-1', async () => {
      const ps = (await pods()).filter((p) => !p.deleting);
      return ps.length === 3 && ps.every((p) => p.node && p.node !== 'node-1') ? ps : undefined;
    });
    assert.deepEqual(after.map((p) => p.node).sort(), ['node-2', 'node-3', 'node-4']);
    assert.ok(!after.some((p) => p.name === before.name), 'the evicted pod is gone');

    const nodes = await ok(skiff, ['get', 'nodes']);
    assert.match(nodes, /node-1\s+\S*SchedulingDisabled/);
  });

  it('kubectl drain waits while the PodDisruptionBudget allows no disruption', async () => {
    // The replacement on node-4 is not Ready yet (no kubelet reported it):
    // two healthy pods, two required, so no pod may go.
    const onNode2 = (await pods()).find((p) => p.node === 'node-2');
    assert.ok(onNode2);
    const r = await skiff.kubectl(['drain', 'node-2', '--ignore-daemonsets', '--force', '--timeout=3s'], {
      timeoutMs: 60_000,
    });
    assert.notEqual(r.code, 0, 'the drain cannot complete');
    assert.match(
      r.stderr,
      /error when evicting pods\/"frontend-\w+" -n "guestbook" \(will retry after 5s\): Cannot evict pod as it would violate the pod's disruption budget\./,
    );
    assert.equal((await pods()).find((p) => p.name === onNode2.name)?.deleting, false, 'the pod stays');
    await ok(skiff, ['uncordon', 'node-2']);
  });
});
