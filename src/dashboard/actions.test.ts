// The dashboard's drain and rollout-undo rules (the app's pure modules),
// checked against what kubectl drain and kubectl rollout undo do.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blockedMessage, type DrainPod, planDrain } from './app/drain-plan.ts';
import { deploymentUndo, historyUndo, previousRevision, REVISION } from './app/rollout-plan.ts';

const pod = (name: string, extra: Partial<DrainPod> & { owner?: string } = {}): DrainPod => ({
  metadata: {
    name,
    namespace: 'ns',
    ...(extra.owner ? { ownerReferences: [{ kind: extra.owner, name: 'o', controller: true }] } : {}),
    ...extra.metadata,
  },
  ...(extra.spec ? { spec: extra.spec } : {}),
  ...(extra.status ? { status: extra.status } : {}),
});

const defaults = { ignoreDaemonSets: true, deleteEmptyDirData: false, force: false };
const names = (ps: { metadata: { name: string } }[]) => ps.map((p) => p.metadata.name);

describe('planDrain, as kubectl drain filters pods', () => {
  it('evicts controlled pods and leaves DaemonSet, mirror and terminating pods', () => {
    const plan = planDrain(
      [
        pod('web', { owner: 'ReplicaSet' }),
        pod('agent', { owner: 'DaemonSet' }),
        pod('static', { metadata: { name: 'static', annotations: { 'kubernetes.io/config.mirror': 'x' } } }),
        pod('going', { owner: 'ReplicaSet', metadata: { name: 'going', deletionTimestamp: 'now' } }),
      ],
      defaults,
    );
    assert.deepEqual(names(plan.evict), ['web']);
    assert.deepEqual(
      plan.skipped.map((s) => [s.pod.metadata.name, s.reason]),
      [
        ['agent', 'DaemonSet-managed'],
        ['static', 'mirror pod'],
        ['going', 'already terminating'],
      ],
    );
    assert.deepEqual(plan.blocked, []);
  });

  it('is stopped by DaemonSet pods unless they are ignored', () => {
    const plan = planDrain([pod('agent', { owner: 'DaemonSet' })], { ...defaults, ignoreDaemonSets: false });
    assert.match(plan.blocked[0]!.reason, /cannot delete DaemonSet-managed Pods/);
  });

  it('is stopped by pods with emptyDir data, or with no controller, unless allowed', () => {
    const scratch = pod('scratch', { owner: 'ReplicaSet', spec: { volumes: [{ emptyDir: {} }] } });
    const bare = pod('bare');
    const stopped = planDrain([scratch, bare], defaults);
    assert.deepEqual(names(stopped.blocked.map((b) => b.pod)), ['scratch', 'bare']);
    assert.equal(
      blockedMessage(stopped.blocked),
      'cannot delete Pods with local storage (allow "Delete emptyDir data"): ns/scratch; ' +
        'cannot delete Pods that declare no controller (allow "Force"): ns/bare',
    );
    const allowed = planDrain([scratch, bare], { ...defaults, deleteEmptyDirData: true, force: true });
    assert.deepEqual(names(allowed.evict), ['scratch', 'bare']);
  });

  it('evicts finished pods whatever their volumes or owner', () => {
    const done = pod('done', { spec: { volumes: [{ emptyDir: {} }] }, status: { phase: 'Succeeded' } });
    assert.deepEqual(names(planDrain([done], defaults).evict), ['done']);
  });
});

const deployment = (template: unknown, annotations: Record<string, string> = {}) => ({
  metadata: { name: 'web', uid: 'd1', annotations: { [REVISION]: '3', ...annotations } },
  spec: { template },
});
const replicaSet = (rev: string, image: string, owner = 'd1', extra: Record<string, string> = {}) => ({
  metadata: {
    name: `web-${rev}`,
    annotations: { [REVISION]: rev, ...extra },
    ownerReferences: [{ uid: owner, controller: true }],
  },
  spec: {
    template: {
      metadata: { labels: { app: 'web', 'pod-template-hash': `h${rev}` } },
      spec: { containers: [{ name: 'c', image }] },
    },
  },
});
const template = (image: string) => ({
  metadata: { labels: { app: 'web' } },
  spec: { containers: [{ name: 'c', image }] },
});

describe('rollout undo, as kubectl rollout undo', () => {
  it('picks the second-highest revision', () => {
    assert.equal(previousRevision([{ r: 1 }, { r: 5 }, { r: 3 }], (x) => x.r)?.r, 3);
    assert.equal(
      previousRevision([{ r: 1 }], (x) => x.r),
      undefined,
    );
  });

  it("restores the previous ReplicaSet's template without its hash label, keeping the Deployment's own annotations", () => {
    const d = deployment(template('v3'), {
      'kubectl.kubernetes.io/last-applied-configuration': '{}',
      note: 'old',
    });
    const plan = deploymentUndo(d, [
      replicaSet('3', 'v3'),
      replicaSet('2', 'v2', 'd1', { 'kubernetes.io/change-cause': 'v2 rollout' }),
      replicaSet('1', 'v1'),
      replicaSet('9', 'other', 'someone-else'),
    ]);
    assert.ok('patch' in plan);
    assert.deepEqual(plan.patch, [
      { op: 'add', path: '/spec/template', value: template('v2') },
      {
        op: 'add',
        path: '/metadata/annotations',
        value: {
          'kubectl.kubernetes.io/last-applied-configuration': '{}',
          [REVISION]: '3',
          'kubernetes.io/change-cause': 'v2 rollout',
        },
      },
    ]);
  });

  it("refuses as kubectl does: paused, no history, or the template already the revision's", () => {
    const paused = { ...deployment(template('v3')), spec: { paused: true, template: template('v3') } };
    assert.match(
      (deploymentUndo(paused, []) as { error: string }).error,
      /cannot rollback a paused deployment/,
    );
    assert.deepEqual(deploymentUndo(deployment(template('v3')), [replicaSet('3', 'v3')]), {
      error: 'no rollout history found for deployment "web"',
    });
    assert.deepEqual(
      deploymentUndo(deployment(template('v2')), [replicaSet('3', 'v3'), replicaSet('2', 'v2')]),
      {
        error: 'skipped rollback (current template already matches revision 2)',
      },
    );
  });

  it("applies a StatefulSet's previous ControllerRevision data", () => {
    const owner = { kind: 'StatefulSet', metadata: { name: 'db', uid: 's1' } };
    const rev = (n: number, image: string, uid = 's1') => ({
      revision: n,
      data: { spec: { template: { spec: { containers: [{ name: 'c', image }] }, $patch: 'replace' } } },
      metadata: { ownerReferences: [{ uid, controller: true }] },
    });
    assert.deepEqual(historyUndo(owner, [rev(1, 'a'), rev(2, 'b'), rev(7, 'x', 'other')]), {
      patch: rev(1, 'a').data,
    });
    assert.deepEqual(historyUndo(owner, [rev(2, 'b')]), {
      error: 'no rollout history found for statefulset "db"',
    });
  });
});
