import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DaemonSet } from '../api/types/apps-v1.ts';
import type { Node, PodSpec, Taint } from '../api/types/core-v1.ts';
import {
  allowsSurge,
  daemonPodTemplate,
  daemonPodTolerations,
  isPodUpdated,
  nodeShouldRunDaemonPod,
  pinToNode,
  scaledValueFromIntOrPercent,
  surgeCount,
  targetNodeName,
  toleratesTaint,
  unavailableCount,
} from './daemonset-util.ts';

const node = (name: string, labels: Record<string, string> = {}, taints: Taint[] = []): Node => ({
  metadata: { name, labels },
  spec: { taints },
});

const daemonSet = (spec: PodSpec = {}, extra: Partial<DaemonSet['spec']> = {}): DaemonSet => ({
  metadata: { name: 'agent', namespace: 'default', generation: 3 },
  spec: {
    selector: { matchLabels: { app: 'agent' } },
    template: {
      metadata: { labels: { app: 'agent' } },
      spec: { containers: [{ name: 'a', image: 'a' }], ...spec },
    },
    ...extra,
  },
});

const fit = (n: Node, ds: DaemonSet) => {
  const f = nodeShouldRunDaemonPod(n, ds);
  return [f.shouldRun, f.shouldContinueRunning];
};

describe('daemonset placement', () => {
  it('tolerations match taints by effect, key and value, or Exists', () => {
    const taint = { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' };
    assert.ok(
      toleratesTaint({ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }, taint),
    );
    assert.ok(toleratesTaint({ key: 'dedicated', value: 'gpu' }, taint)); // any effect, Equal by default
    assert.ok(toleratesTaint({ key: 'dedicated', operator: 'Exists' }, taint));
    assert.ok(toleratesTaint({ operator: 'Exists' }, taint)); // empty key + Exists tolerates everything
    assert.ok(!toleratesTaint({ key: 'dedicated', value: 'cpu' }, taint));
    assert.ok(!toleratesTaint({ key: 'dedicated', operator: 'Exists', effect: 'NoExecute' }, taint));
    assert.ok(!toleratesTaint({ key: 'other', operator: 'Exists' }, taint));
  });

  it('adds the daemon tolerations upstream adds, replacing the same toleration written by the user', () => {
    const tolerations = daemonPodTolerations({
      tolerations: [
        {
          key: 'node.kubernetes.io/not-ready',
          operator: 'Exists',
          effect: 'NoExecute',
          tolerationSeconds: 30,
        },
        { key: 'custom', operator: 'Exists' },
      ],
    });
    assert.deepEqual(tolerations, [
      { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
      { key: 'custom', operator: 'Exists' },
      { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute' },
      { key: 'node.kubernetes.io/disk-pressure', operator: 'Exists', effect: 'NoSchedule' },
      { key: 'node.kubernetes.io/memory-pressure', operator: 'Exists', effect: 'NoSchedule' },
      { key: 'node.kubernetes.io/pid-pressure', operator: 'Exists', effect: 'NoSchedule' },
      { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' },
    ]);
    const hostNetwork = daemonPodTolerations({ hostNetwork: true });
    assert.ok(
      hostNetwork.some(
        (t) => t.key === 'node.kubernetes.io/network-unavailable' && t.effect === 'NoSchedule',
      ),
    );
    assert.equal(daemonPodTolerations({ hostNetwork: true }).length, 7);
  });

  it('runs on nodes matching the nodeSelector and required node affinity', () => {
    const bySelector = daemonSet({ nodeSelector: { disk: 'ssd' } });
    assert.deepEqual(fit(node('a', { disk: 'ssd' }), bySelector), [true, true]);
    assert.deepEqual(fit(node('b', { disk: 'hdd' }), bySelector), [false, false]);

    const byAffinity = daemonSet({
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'zone', operator: 'In', values: ['z1', 'z2'] }] },
              { matchExpressions: [{ key: 'cores', operator: 'Gt', values: ['8'] }] },
              { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['special'] }] },
            ],
          },
        },
      },
    });
    assert.deepEqual(fit(node('a', { zone: 'z2' }), byAffinity), [true, true]);
    assert.deepEqual(fit(node('b', { cores: '16' }), byAffinity), [true, true]);
    assert.deepEqual(fit(node('c', { cores: '4' }), byAffinity), [false, false]);
    assert.deepEqual(fit(node('special'), byAffinity), [true, true]);
    assert.deepEqual(fit(node('d', { zone: 'z3' }), byAffinity), [false, false]);

    const notIn = daemonSet({
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'role', operator: 'NotIn', values: ['master'] }] },
            ],
          },
        },
      },
    });
    assert.deepEqual(fit(node('w'), notIn), [true, true]);
    assert.deepEqual(fit(node('m', { role: 'master' }), notIn), [false, false]);

    const pinnedByName = daemonSet({ nodeName: 'only-me' });
    assert.deepEqual(fit(node('only-me'), pinnedByName), [true, true]);
    assert.deepEqual(fit(node('other'), pinnedByName), [false, false]);
  });

  it('keeps off untolerated NoSchedule taints, and leaves nodes with untolerated NoExecute taints', () => {
    const ds = daemonSet();
    assert.deepEqual(fit(node('a', {}, [{ key: 'k', value: 'v', effect: 'NoSchedule' }]), ds), [false, true]);
    assert.deepEqual(fit(node('b', {}, [{ key: 'k', value: 'v', effect: 'NoExecute' }]), ds), [false, false]);
    assert.deepEqual(fit(node('c', {}, [{ key: 'k', value: 'v', effect: 'PreferNoSchedule' }]), ds), [
      true,
      true,
    ]);
    const tolerant = daemonSet({ tolerations: [{ key: 'k', operator: 'Exists' }] });
    assert.deepEqual(fit(node('d', {}, [{ key: 'k', value: 'v', effect: 'NoExecute' }]), tolerant), [
      true,
      true,
    ]);
    // The daemon tolerations: not-ready, unreachable, pressure and cordon taints do not stop a daemon.
    for (const [key, effect] of [
      ['node.kubernetes.io/not-ready', 'NoExecute'],
      ['node.kubernetes.io/unreachable', 'NoExecute'],
      ['node.kubernetes.io/memory-pressure', 'NoSchedule'],
      ['node.kubernetes.io/unschedulable', 'NoSchedule'],
    ]) {
      assert.deepEqual(fit(node('e', {}, [{ key, effect }]), ds), [true, true], `${key}:${effect}`);
    }
    // The not-ready toleration is for NoExecute only: a NotReady node's NoSchedule taint keeps new daemons off.
    assert.deepEqual(
      fit(node('g', {}, [{ key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' }]), ds),
      [false, true],
    );
    // Only host-network daemons start before the node's network is configured.
    const networkDown = node('f', {}, [
      { key: 'node.kubernetes.io/network-unavailable', effect: 'NoSchedule' },
    ]);
    assert.deepEqual(fit(networkDown, ds), [false, true]);
    assert.deepEqual(fit(networkDown, daemonSet({ hostNetwork: true })), [true, true]);
  });

  it('pins a pod to its node with a metadata.name field term, and reads it back', () => {
    const affinity = pinToNode(
      {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['z1'] }] }],
          },
          preferredDuringSchedulingIgnoredDuringExecution: [
            { weight: 1, preference: { matchExpressions: [{ key: 'x', operator: 'Exists' }] } },
          ],
        },
      },
      'node-1',
    );
    assert.deepEqual(affinity.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution, {
      nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-1'] }] }],
    });
    assert.equal(affinity.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.length, 1);
    assert.equal(targetNodeName({ metadata: {}, spec: { containers: [], affinity } }), 'node-1');
    // Once bound, spec.nodeName is the truth.
    assert.equal(
      targetNodeName({ metadata: {}, spec: { containers: [], affinity, nodeName: 'node-2' } }),
      'node-2',
    );
    assert.equal(targetNodeName({ metadata: {}, spec: { containers: [] } }), undefined);
  });

  it('labels daemon pods with the revision hash and template generation', () => {
    const template = daemonPodTemplate(daemonSet(), 'abc');
    assert.deepEqual(template.metadata.labels, {
      app: 'agent',
      'controller-revision-hash': 'abc',
      'pod-template-generation': '3',
    });
    assert.equal(template.spec?.tolerations?.length, 6);
    const pod = { metadata: { labels: template.metadata.labels }, spec: { containers: [] } };
    assert.ok(isPodUpdated(pod, 'abc', 7));
    assert.ok(isPodUpdated(pod, 'xyz', 3));
    assert.ok(!isPodUpdated(pod, 'xyz', 7));
  });
});

describe('daemonset rolling update budget', () => {
  it('scales maxUnavailable and maxSurge, rounding percentages up', () => {
    assert.equal(scaledValueFromIntOrPercent(2, 10, true), 2);
    assert.equal(scaledValueFromIntOrPercent('25%', 10, true), 3);
    assert.equal(scaledValueFromIntOrPercent('25%', 10, false), 2);
    assert.throws(() => scaledValueFromIntOrPercent('lots', 10, true));
    const rolling = (maxUnavailable: number | string, maxSurge: number | string) =>
      daemonSet(
        {},
        { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable, maxSurge } } },
      );
    assert.equal(unavailableCount(rolling('10%', 0), 5), 1);
    assert.equal(surgeCount(rolling(0, '50%'), 5), 3);
    assert.ok(allowsSurge(rolling(0, '1%')));
    assert.ok(!allowsSurge(rolling(1, 0)));
    const onDelete = daemonSet({}, { updateStrategy: { type: 'OnDelete' } });
    assert.equal(unavailableCount(onDelete, 5), 0);
    assert.ok(!allowsSurge(onDelete));
  });
});
