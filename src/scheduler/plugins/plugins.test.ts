// Each default plugin against hand-built snapshots: no API server, no cluster.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Node, Pod } from '../../api/types/core-v1.ts';
import { SchedulerCache } from '../cache.ts';
import { Code, CycleState, type NodeScore } from '../framework.ts';
import { newPodInfo } from '../nodeinfo.ts';
import { makeNode, makePod } from '../testing.ts';
import { nodeAffinity, nodeUnschedulable, prioritySort, taintToleration } from './basic.ts';
import {
  imageLocality,
  insufficientResources,
  nodePorts,
  nodeResourcesBalancedAllocation,
  nodeResourcesFit,
  normalizedImageName,
} from './resources.ts';

function snapshot(nodes: Node[], bound: Pod[] = []): SchedulerCache {
  const c = new SchedulerCache();
  for (const n of nodes) c.addOrUpdateNode(n);
  for (const p of bound) c.addOrUpdatePod(p);
  return c;
}

const withRequests = (name: string, cpu: string, memory: string, nodeName?: string): Pod =>
  makePod(name, {
    ...(nodeName ? { nodeName } : {}),
    containers: [{ name: 'c', image: 'busybox', resources: { requests: { cpu, memory } } }],
  });

describe('NodeResourcesFit', () => {
  it('counts requests with upstream init-container and sidecar rules', () => {
    const pod = makePod('p', {
      initContainers: [
        { name: 'big-init', image: 'x', resources: { requests: { cpu: '3' } } },
        { name: 'sidecar', image: 'x', restartPolicy: 'Always', resources: { requests: { cpu: '500m' } } },
        { name: 'late-init', image: 'x', resources: { requests: { cpu: '1' } } },
      ],
      containers: [{ name: 'app', image: 'x', resources: { requests: { cpu: '1', memory: '1Gi' } } }],
      overhead: { cpu: '100m' },
    });
    // max(app 1 + sidecar 0.5, big-init 3, late-init 1 + sidecar 0.5) + overhead 0.1
    assert.equal(newPodInfo(pod).requests.milliCPU, 3100);
    assert.equal(newPodInfo(pod).requests.memory, 1024 ** 3);
  });

  it('filters with every insufficient resource named, and Too many pods', () => {
    const snap = snapshot(
      [makeNode('n', { cpu: '2', memory: '1Gi', pods: '2' })],
      [withRequests('a', '1500m', '512Mi', 'n'), withRequests('b', '100m', '100Mi', 'n')],
    );
    const node = snap.get('n')!;
    const pod = withRequests('new', '1', '1Gi');
    const s = nodeResourcesFit.filter(new CycleState(), pod, node);
    assert.equal(s.code, Code.Unschedulable);
    assert.deepEqual(s.reasons, ['Too many pods', 'Insufficient cpu', 'Insufficient memory']);
    assert.deepEqual(
      insufficientResources(newPodInfo(withRequests('tiny', '100m', '1Mi')).requests, snap.get('n')!),
      ['Too many pods'],
    );
  });

  it('prefers the least allocated node, and the balanced one', () => {
    const snap = snapshot(
      [makeNode('busy', { cpu: '4', memory: '8Gi' }), makeNode('idle', { cpu: '4', memory: '8Gi' })],
      [withRequests('x', '3', '1Gi', 'busy')],
    );
    const pod = withRequests('p', '500m', '1Gi');
    const state = new CycleState();
    const busy = nodeResourcesFit.score(state, pod, snap.get('busy')!);
    const idle = nodeResourcesFit.score(state, pod, snap.get('idle')!);
    assert.ok(idle > busy, `idle ${idle} > busy ${busy}`);
    // busy: cpu 87.5% vs memory 25% used → unbalanced.
    assert.ok(
      nodeResourcesBalancedAllocation.score(state, pod, snap.get('idle')!) >
        nodeResourcesBalancedAllocation.score(state, pod, snap.get('busy')!),
    );
  });
});

describe('NodePorts', () => {
  it('refuses a node where the host port is taken, honouring 0.0.0.0 and hostIP', () => {
    const web = (name: string, hostIP?: string, nodeName?: string) =>
      makePod(name, {
        ...(nodeName ? { nodeName } : {}),
        containers: [
          {
            name: 'c',
            image: 'x',
            ports: [{ containerPort: 80, hostPort: 8080, ...(hostIP ? { hostIP } : {}) }],
          },
        ],
      });
    const snap = snapshot([makeNode('a'), makeNode('b')], [web('on-a', '10.0.0.1', 'a')]);
    const run = (pod: Pod, node: string) => {
      const state = new CycleState();
      assert.equal(nodePorts.preFilter(state, pod, snap).status.code, Code.Success);
      return nodePorts.filter(state, pod, snap.get(node)!);
    };
    assert.equal(run(web('other-ip', '10.0.0.2'), 'a').code, Code.Success);
    const s = run(web('any-ip'), 'a');
    assert.equal(s.code, Code.Unschedulable);
    assert.deepEqual(s.reasons, ["node(s) didn't have free ports for the requested pod ports"]);
    assert.equal(run(web('any-ip'), 'b').code, Code.Success);
    assert.equal(nodePorts.preFilter(new CycleState(), makePod('no-ports'), snap).status.code, Code.Skip);
  });
});

describe('TaintToleration', () => {
  const tainted = (name: string, taints: NonNullable<Node['spec']>['taints']) => {
    const n = makeNode(name);
    n.spec = { taints };
    return n;
  };

  it('refuses untolerated NoSchedule/NoExecute taints, naming the taint', () => {
    const snap = snapshot([tainted('gpu', [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }])]);
    const s = taintToleration.filter(new CycleState(), makePod('p'), snap.get('gpu')!);
    assert.equal(s.code, Code.UnschedulableAndUnresolvable);
    assert.deepEqual(s.reasons, ['node(s) had untolerated taint {gpu: true}']);
    const tolerant = makePod('t', {
      tolerations: [{ key: 'gpu', operator: 'Equal', value: 'true', effect: 'NoSchedule' }],
    });
    assert.equal(taintToleration.filter(new CycleState(), tolerant, snap.get('gpu')!).code, Code.Success);
    const any = makePod('any', { tolerations: [{ operator: 'Exists' }] });
    assert.equal(taintToleration.filter(new CycleState(), any, snap.get('gpu')!).code, Code.Success);
  });

  it('scores nodes with fewer untolerated PreferNoSchedule taints higher', () => {
    const snap = snapshot([
      tainted('clean', []),
      tainted('meh', [{ key: 'a', effect: 'PreferNoSchedule' }]),
      tainted('worse', [
        { key: 'a', effect: 'PreferNoSchedule' },
        { key: 'b', effect: 'PreferNoSchedule' },
      ]),
    ]);
    const pod = makePod('p');
    const scores: NodeScore[] = ['clean', 'meh', 'worse'].map((n) => ({
      name: n,
      score: taintToleration.score(new CycleState(), pod, snap.get(n)!),
    }));
    taintToleration.normalize!(new CycleState(), pod, scores);
    assert.deepEqual(
      scores.map((s) => s.score),
      [100, 50, 0],
    );
  });
});

describe('NodeAffinity and NodeUnschedulable', () => {
  const snap = snapshot([
    makeNode('ssd-1', { labels: { disk: 'ssd', gen: '5' } }),
    makeNode('hdd-1', { labels: { disk: 'hdd', gen: '3' } }),
  ]);

  it('matches nodeSelector and required terms (In, NotIn, Exists, Gt, matchFields)', () => {
    const check = (pod: Pod, node: string) =>
      nodeAffinity.filter(new CycleState(), pod, snap.get(node)!).code;
    assert.equal(check(makePod('sel', { nodeSelector: { disk: 'ssd' } }), 'ssd-1'), Code.Success);
    assert.equal(
      check(makePod('sel', { nodeSelector: { disk: 'ssd' } }), 'hdd-1'),
      Code.UnschedulableAndUnresolvable,
    );
    const required = (expr: object) =>
      makePod('aff', {
        affinity: {
          nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [expr] } },
        },
      });
    assert.equal(
      check(required({ matchExpressions: [{ key: 'gen', operator: 'Gt', values: ['4'] }] }), 'ssd-1'),
      Code.Success,
    );
    assert.notEqual(
      check(required({ matchExpressions: [{ key: 'gen', operator: 'Gt', values: ['4'] }] }), 'hdd-1'),
      Code.Success,
    );
    assert.equal(
      check(required({ matchExpressions: [{ key: 'disk', operator: 'NotIn', values: ['ssd'] }] }), 'hdd-1'),
      Code.Success,
    );
    assert.equal(
      check(required({ matchExpressions: [{ key: 'nope', operator: 'Exists' }] }), 'hdd-1'),
      Code.UnschedulableAndUnresolvable,
    );
    const byName = required({ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['hdd-1'] }] });
    const pre = nodeAffinity.preFilter(new CycleState(), byName, snap);
    assert.deepEqual([...(pre.result?.nodeNames ?? [])], ['hdd-1']);
  });

  it('scores preferred terms by weight', () => {
    const pod = makePod('pref', {
      affinity: {
        nodeAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            {
              weight: 80,
              preference: { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] },
            },
            { weight: 20, preference: { matchExpressions: [{ key: 'gen', operator: 'Exists' }] } },
          ],
        },
      },
    });
    const state = new CycleState();
    assert.equal(nodeAffinity.preScore(state, pod, snap.nodes(), snap).code, Code.Success);
    assert.equal(nodeAffinity.score(state, pod, snap.get('ssd-1')!), 100);
    assert.equal(nodeAffinity.score(state, pod, snap.get('hdd-1')!), 20);
  });

  it('keeps pods off cordoned nodes unless they tolerate node.kubernetes.io/unschedulable', () => {
    const cordoned = makeNode('c');
    cordoned.spec = { unschedulable: true };
    const s = snapshot([cordoned]);
    assert.deepEqual(nodeUnschedulable.filter(new CycleState(), makePod('p'), s.get('c')!).reasons, [
      'node(s) were unschedulable',
    ]);
    const tolerant = makePod('t', {
      tolerations: [{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' }],
    });
    assert.equal(nodeUnschedulable.filter(new CycleState(), tolerant, s.get('c')!).code, Code.Success);
  });
});

describe('ImageLocality and PrioritySort', () => {
  it('normalizes image names as the runtime reports them', () => {
    assert.equal(normalizedImageName('busybox'), 'docker.io/library/busybox:latest');
    assert.equal(normalizedImageName('redis:7'), 'docker.io/library/redis:7');
    assert.equal(normalizedImageName('me/app'), 'docker.io/me/app:latest');
    assert.equal(normalizedImageName('localhost:5000/app:v1'), 'localhost:5000/app:v1');
  });

  it('scores nodes that hold the image higher', () => {
    const withImage = makeNode('has');
    withImage.status!.images = [{ names: ['docker.io/library/redis:latest'], sizeBytes: 500 * 1024 * 1024 }];
    const snap = snapshot([withImage, makeNode('lacks')]);
    const pod = makePod('p', { containers: [{ name: 'c', image: 'redis' }] });
    const state = new CycleState();
    assert.equal(imageLocality.preScore(state, pod, snap.nodes(), snap).code, Code.Success);
    assert.ok(
      imageLocality.score(state, pod, snap.get('has')!) > imageLocality.score(state, pod, snap.get('lacks')!),
    );
  });

  it('weights an image by the share of nodes holding it, counted as nodes come and go', () => {
    const withRedis = (name: string) => {
      const n = makeNode(name);
      n.status!.images = [{ names: ['docker.io/library/redis:latest'], sizeBytes: 500 * 1024 * 1024 }];
      return n;
    };
    const snap = snapshot([withRedis('has'), makeNode('lacks')]);
    const pod = makePod('p', { containers: [{ name: 'c', image: 'redis' }] });
    const scoreOfHas = () => {
      const state = new CycleState();
      imageLocality.preScore(state, pod, snap.nodes(), snap);
      return imageLocality.score(state, pod, snap.get('has')!);
    };
    const onHalf = scoreOfHas();
    assert.ok(onHalf > 0);
    snap.addOrUpdateNode(withRedis('also'));
    assert.ok(scoreOfHas() > onHalf, 'on two of three nodes the image weighs more');
    snap.removeNode('also');
    assert.equal(scoreOfHas(), onHalf);
    snap.addOrUpdateNode(makeNode('has'));
    assert.equal(scoreOfHas(), 0, 'the image left the node');
  });

  it('sorts by priority, then arrival', () => {
    const q = (priority: number, t: number) => ({
      info: newPodInfo(makePod('x', { priority })),
      initialAttemptTimestamp: t,
      timestamp: t,
      attempts: 0,
      unschedulablePlugins: new Set<string>(),
      lastFailureWasError: false,
    });
    assert.ok(prioritySort.less(q(10, 5), q(0, 1)));
    assert.ok(prioritySort.less(q(0, 1), q(0, 2)));
    assert.ok(!prioritySort.less(q(0, 2), q(0, 1)));
  });
});
