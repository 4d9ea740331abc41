import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isApiError } from '../api/errors.ts';
import type {
  Deployment,
  DeploymentCondition,
  DeploymentStrategy,
  ReplicaSet,
} from '../api/types/apps-v1.ts';
import type { Event } from '../api/types/core-v1.ts';
import type { QueueController } from './controller.ts';
import { deploymentController } from './deployment.ts';
import {
  computeHash,
  equalIgnoreHash,
  getProportion,
  MAX_REV_HISTORY_LENGTH_IN_CHARS,
  maxSurge,
  maxUnavailable,
  newRSNewReplicas,
  resolveFenceposts,
  safeEncodeString,
  setNewReplicaSetAnnotations,
} from './deployment-util.ts';
import { replicaSetController } from './replicaset.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

// ---- pure arithmetic, as upstream's deployment_util_test.go ----

const rolling = (replicas: number, surge: number | string, unavailable: number | string): Deployment => ({
  metadata: { name: 'd' },
  spec: {
    replicas,
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: surge, maxUnavailable: unavailable } },
  },
});
const rs = (name: string, replicas: number, annotations: Record<string, string> = {}): ReplicaSet => ({
  metadata: { name, annotations, creationTimestamp: '2026-01-01T00:00:00Z' },
  spec: { replicas },
});

describe('deployment util', () => {
  it('rounds maxSurge up and maxUnavailable down, and never lets both be 0', () => {
    assert.deepEqual(resolveFenceposts('25%', '25%', 10), { surge: 3, unavailable: 2 });
    assert.deepEqual(resolveFenceposts('25%', '25%', 1), { surge: 1, unavailable: 0 });
    assert.deepEqual(resolveFenceposts(0, 0, 5), { surge: 0, unavailable: 1 });
    assert.deepEqual(resolveFenceposts('0%', '10%', 5), { surge: 0, unavailable: 1 });
    assert.deepEqual(resolveFenceposts(2, '50%', 5), { surge: 2, unavailable: 2 });
    // maxUnavailable is capped at spec.replicas, and 0 when scaled to 0.
    assert.equal(maxUnavailable(rolling(2, 0, 5)), 2);
    assert.equal(maxUnavailable(rolling(0, 0, 5)), 0);
    assert.equal(maxSurge({ metadata: {}, spec: { replicas: 3, strategy: { type: 'Recreate' } } }), 0);
  });

  it('sizes a new ReplicaSet within maxSurge (NewRSNewReplicas)', () => {
    const d = rolling(10, 3, 2);
    const newRS = rs('new', 0);
    assert.equal(newRSNewReplicas(d, [rs('old', 10), newRS], newRS), 3);
    assert.equal(newRSNewReplicas(d, [rs('old', 12), newRS], newRS), 1);
    assert.equal(newRSNewReplicas(d, [rs('old', 13), newRS], newRS), 0);
    const recreate: Deployment = { metadata: {}, spec: { replicas: 4, strategy: { type: 'Recreate' } } };
    assert.equal(newRSNewReplicas(recreate, [rs('old', 4), newRS], newRS), 4);
  });

  it('shares a scale in proportion to the size each ReplicaSet was last given', () => {
    const d = { ...rolling(15, 3, 2), status: { replicas: 11 } };
    const annotated = { 'deployment.kubernetes.io/max-replicas': '13' };
    // 8 of 13 → round(8 * 18 / 13) = 11; 3 of 13 → round(4.15) = 4.
    assert.equal(getProportion(rs('old', 8, annotated), d, 7, 0), 3);
    assert.equal(getProportion(rs('new', 3, annotated), d, 7, 3), 1);
    // Never more than what is left to add.
    assert.equal(getProportion(rs('old', 8, annotated), d, 2, 0), 2);
    // Without the annotation the base is status.replicas.
    assert.equal(getProportion(rs('old', 11), d, 7, 0), 7);
  });

  it('hashes templates into upstream-looking names that change with collisionCount', () => {
    const template = {
      metadata: { labels: { app: 'web' } },
      spec: { containers: [{ name: 'c', image: 'nginx' }] },
    };
    const h = computeHash(template);
    assert.match(h, /^[bcdfghjklmnpqrstvwxz2456789]{1,10}$/);
    assert.equal(computeHash(structuredClone(template)), h, 'stable');
    // The same template with protobuf's explicit zero values (see normalize).
    const zeros = {
      ...template,
      spec: { ...template.spec, hostPID: false, containers: [{ name: 'c', image: 'nginx', stdin: false }] },
    };
    assert.equal(computeHash(zeros), h);
    assert.notEqual(computeHash(template, 1), h);
    assert.notEqual(computeHash(template, 1), computeHash(template, 2));
    assert.equal(safeEncodeString('0123456789'), '456789bcdf');
  });

  it('compares templates ignoring pod-template-hash and empty fields', () => {
    const a = { metadata: { labels: { app: 'web', 'pod-template-hash': 'abc' } }, spec: { containers: [] } };
    const b = {
      metadata: { labels: { app: 'web' }, creationTimestamp: null, generation: 0 },
      spec: { hostPID: false },
    };
    assert.equal(equalIgnoreHash(a, b), true);
    assert.equal(equalIgnoreHash(a, { metadata: { labels: { app: 'api' } } }), false);
  });

  it('keeps earlier revisions of a ReplicaSet brought back by a rollback', () => {
    const d: Deployment = { metadata: { annotations: { 'kubernetes.io/change-cause': 'undo' } }, spec: {} };
    const old = rs('old', 0, { 'deployment.kubernetes.io/revision': '1' });
    assert.equal(setNewReplicaSetAnnotations(d, old, 3, true), true);
    assert.equal(old.metadata.annotations?.['deployment.kubernetes.io/revision'], '3');
    assert.equal(old.metadata.annotations?.['deployment.kubernetes.io/revision-history'], '1');
    assert.equal(old.metadata.annotations?.['kubernetes.io/change-cause'], 'undo');
    assert.equal(setNewReplicaSetAnnotations(d, old, 5, true), true);
    assert.equal(old.metadata.annotations?.['deployment.kubernetes.io/revision-history'], '1,3');
    // The history is trimmed from its oldest end to fit its limit.
    const long = rs('long', 0, {
      'deployment.kubernetes.io/revision': '9',
      'deployment.kubernetes.io/revision-history': Array(MAX_REV_HISTORY_LENGTH_IN_CHARS / 2)
        .fill('1')
        .join(','),
    });
    setNewReplicaSetAnnotations(d, long, 10, true);
    const history = long.metadata.annotations?.['deployment.kubernetes.io/revision-history'] ?? '';
    assert.ok(history.length <= MAX_REV_HISTORY_LENGTH_IN_CHARS && history.endsWith(',9'));
  });
});

// ---- the controller against a real API server ----

let t: ControllerTest;
/** Added to the controller's wall clock, to pass progress deadlines without waiting. */
let clockOffsetMs = 0;
before(async () => {
  t = await startControllerTest(
    { deployment: deploymentController },
    { now: () => new Date(Date.now() + clockOffsetMs) },
  );
});
after(() => t.close());

let nsCount = 0;
async function namespace(): Promise<string> {
  const name = `deploy-${++nsCount}`;
  await t.clients.namespaces.create(undefined, { metadata: { name } });
  return name;
}

function deployment(
  ns: string,
  name: string,
  opts: {
    replicas?: number;
    image?: string;
    strategy?: DeploymentStrategy;
    paused?: boolean;
    revisionHistoryLimit?: number;
    progressDeadlineSeconds?: number;
    minReadySeconds?: number;
    annotations?: Record<string, string>;
  } = {},
): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns, ...(opts.annotations ? { annotations: opts.annotations } : {}) },
    spec: {
      replicas: opts.replicas ?? 3,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'app', image: opts.image ?? 'nginx:1' }] },
      },
      ...(opts.strategy ? { strategy: opts.strategy } : {}),
      ...(opts.paused !== undefined ? { paused: opts.paused } : {}),
      ...(opts.revisionHistoryLimit !== undefined ? { revisionHistoryLimit: opts.revisionHistoryLimit } : {}),
      ...(opts.progressDeadlineSeconds !== undefined
        ? { progressDeadlineSeconds: opts.progressDeadlineSeconds }
        : {}),
      ...(opts.minReadySeconds !== undefined ? { minReadySeconds: opts.minReadySeconds } : {}),
    },
  };
}

const revisionNumber = (r: ReplicaSet) =>
  Number(r.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? 0);

/** The namespace's ReplicaSets, oldest revision first (creation times have 1 s resolution). */
const replicaSetsOf = async (ns: string): Promise<ReplicaSet[]> =>
  (await t.clients.replicaSets.list(ns)).items.sort((a, b) => revisionNumber(a) - revisionNumber(b));

const revision = (o: { metadata: { annotations?: Record<string, string> } }) =>
  o.metadata.annotations?.['deployment.kubernetes.io/revision'];

const condition = (d: Deployment, type: string): DeploymentCondition | undefined =>
  d.status?.conditions?.find((c) => c.type === type);

/**
 * Plays the ReplicaSet controller (not running here), as upstream's
 * deployment tests do: every ReplicaSet reports spec.replicas pods, of which
 * `available(rs)` (default: all) are available, and its current generation.
 */
async function settle(ns: string, available: (rs: ReplicaSet) => number = (rs) => rs.spec?.replicas ?? 0) {
  for (const rs of await replicaSetsOf(ns)) {
    const replicas = rs.spec?.replicas ?? 0;
    const avail = Math.min(replicas, available(rs));
    const want = {
      replicas,
      fullyLabeledReplicas: replicas,
      readyReplicas: avail,
      availableReplicas: avail,
      observedGeneration: rs.metadata.generation ?? 0,
    };
    const s = rs.status ?? {};
    if (Object.entries(want).every(([k, v]) => (s as Record<string, unknown>)[k] === v)) continue;
    await t.clients.replicaSets
      .patch(ns, rs.metadata.name ?? '', 'merge', { status: want }, { subresource: 'status' })
      .catch((err) => {
        if (!isApiError(err, 'NotFound')) throw err;
      });
  }
}

async function events(ns: string, reason: string): Promise<string[]> {
  const list = await t.clients.events.list(ns);
  return (list.items as Event[]).filter((e) => e.reason === reason).map((e) => e.message ?? '');
}

const getDeployment = (ns: string, name: string) => t.clients.deployments.get(ns, name);

/** Waits until the Deployment reports a finished rollout, settling ReplicaSets meanwhile. */
async function rolledOut(ns: string, name: string, replicas: number) {
  return t.until(`${ns}/${name} rolled out`, async () => {
    await settle(ns);
    const d = await getDeployment(ns, name);
    const s = d.status ?? {};
    return (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 0) &&
      (s.updatedReplicas ?? 0) === replicas &&
      (s.replicas ?? 0) === replicas &&
      (s.availableReplicas ?? 0) === replicas &&
      condition(d, 'Progressing')?.reason === 'NewReplicaSetAvailable'
      ? d
      : undefined;
  });
}

const setImage = (ns: string, name: string, image: string) =>
  t.clients.deployments.patch(ns, name, 'strategic', {
    spec: { template: { spec: { containers: [{ name: 'app', image }] } } },
  });

describe('deployment controller', () => {
  it('creates a ReplicaSet named by pod-template-hash, with revision and replicas annotations', async () => {
    const ns = await namespace();
    await t.clients.deployments.create(ns, deployment(ns, 'web', { replicas: 3 }));
    const [created] = await t.until('a ReplicaSet', async () => {
      const l = await replicaSetsOf(ns);
      return l.length ? l : undefined;
    });
    const r = created as ReplicaSet;
    const hash = r.metadata.labels?.['pod-template-hash'] ?? '';
    assert.match(hash, /^[bcdfghjklmnpqrstvwxz2456789]+$/);
    assert.equal(r.metadata.name, `web-${hash}`);
    assert.equal(r.spec?.selector?.matchLabels?.['pod-template-hash'], hash);
    assert.equal(r.spec?.template?.metadata?.labels?.['pod-template-hash'], hash);
    assert.equal(r.spec?.template?.metadata?.labels?.app, 'web');
    assert.equal(r.spec?.replicas, 3);
    assert.equal(r.metadata.ownerReferences?.[0]?.kind, 'Deployment');
    assert.equal(r.metadata.ownerReferences?.[0]?.controller, true);
    assert.equal(revision(r), '1');
    assert.equal(r.metadata.annotations?.['deployment.kubernetes.io/desired-replicas'], '3');
    // 25% of 3 rounded up.
    assert.equal(r.metadata.annotations?.['deployment.kubernetes.io/max-replicas'], '4');

    const d = await t.until('revision and NewReplicaSetCreated', async () => {
      const d = await getDeployment(ns, 'web');
      return revision(d) === '1' && condition(d, 'Progressing') ? d : undefined;
    });
    assert.equal(condition(d, 'Available')?.reason, 'MinimumReplicasUnavailable');
    assert.equal(condition(d, 'Available')?.status, 'False');
    assert.deepEqual(
      await t.until('event', () => events(ns, 'ScalingReplicaSet').then((e) => e.length && e)),
      [`Scaled up replica set web-${hash} to 3`],
    );

    const done = await rolledOut(ns, 'web', 3);
    assert.equal(done.status?.readyReplicas, 3);
    assert.equal(done.status?.unavailableReplicas, undefined);
    assert.equal(done.status?.observedGeneration, done.metadata.generation);
    assert.equal(condition(done, 'Available')?.status, 'True');
    assert.equal(condition(done, 'Available')?.reason, 'MinimumReplicasAvailable');
    assert.equal(condition(done, 'Progressing')?.status, 'True');
    assert.equal(
      condition(done, 'Progressing')?.message,
      `ReplicaSet "web-${hash}" has successfully progressed.`,
    );
  });

  it('rolls out a new template within maxSurge and maxUnavailable', async () => {
    const ns = await namespace();
    const strategy = { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } };
    await t.clients.deployments.create(ns, deployment(ns, 'web', { replicas: 4, strategy }));
    await rolledOut(ns, 'web', 4);
    await setImage(ns, 'web', 'nginx:2');

    // Each poll plays the ReplicaSet controller and checks the invariants:
    // never more than 4 + 1 pods wanted, never fewer than 4 - 0 available.
    let steps = 0;
    const finished = await t.until('rolled out to nginx:2', async () => {
      const list = await replicaSetsOf(ns);
      const wanted = list.reduce((n, r) => n + (r.spec?.replicas ?? 0), 0);
      const available = list.reduce(
        (n, r) => n + Math.min(r.spec?.replicas ?? 0, r.status?.availableReplicas ?? 0),
        0,
      );
      assert.ok(wanted <= 5, `at most 5 pods wanted, got ${wanted}`);
      assert.ok(available >= 4, `at least 4 available, got ${available}`);
      steps++;
      await settle(ns);
      const d = await getDeployment(ns, 'web');
      // observedGeneration first: until the controller has seen the new
      // template, the status still describes the previous rollout.
      return d.status?.observedGeneration === d.metadata.generation &&
        condition(d, 'Progressing')?.reason === 'NewReplicaSetAvailable' &&
        d.status?.updatedReplicas === 4 &&
        d.status?.replicas === 4
        ? d
        : undefined;
    });
    assert.ok(steps > 1);
    assert.equal(revision(finished), '2');
    const list = await replicaSetsOf(ns);
    assert.equal(list.length, 2);
    const [oldRS, newRS] = list as [ReplicaSet, ReplicaSet];
    assert.equal(oldRS.spec?.replicas, 0);
    assert.equal(revision(oldRS), '1');
    assert.equal(newRS.spec?.replicas, 4);
    assert.equal(revision(newRS), '2');
    assert.equal(newRS.spec?.template?.spec?.containers?.[0]?.image, 'nginx:2');
    const scaled = await events(ns, 'ScalingReplicaSet');
    assert.ok(scaled.includes(`Scaled up replica set ${newRS.metadata.name} to 1`), scaled.join('\n'));
    assert.ok(
      scaled.includes(`Scaled down replica set ${oldRS.metadata.name} to 0 from 1`),
      scaled.join('\n'),
    );
  });

  it('Recreate scales the old ReplicaSet to 0 and waits for its pods before creating the new one', async () => {
    const ns = await namespace();
    await t.clients.deployments.create(
      ns,
      deployment(ns, 'db', { replicas: 2, strategy: { type: 'Recreate' } }),
    );
    await rolledOut(ns, 'db', 2);
    const [oldRS] = (await replicaSetsOf(ns)) as [ReplicaSet];
    // A pod of the old ReplicaSet, still running.
    await t.clients.pods.create(ns, {
      metadata: {
        name: 'db-old-pod',
        labels: { ...oldRS.spec?.template?.metadata?.labels },
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'ReplicaSet',
            name: oldRS.metadata.name ?? '',
            uid: oldRS.metadata.uid ?? '',
            controller: true,
          },
        ],
      },
      spec: { containers: [{ name: 'app', image: 'nginx:1' }] },
    });
    await setImage(ns, 'db', 'postgres:2');
    await t.until(
      'old ReplicaSet scaled to 0',
      async () => (await t.clients.replicaSets.get(ns, oldRS.metadata.name ?? '')).spec?.replicas === 0,
    );
    // Its status still says 2 pods: no new ReplicaSet yet.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await replicaSetsOf(ns)).length, 1);
    // The ReplicaSet reports its pods gone, but one is still there.
    await settle(ns);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await replicaSetsOf(ns)).length, 1, 'waits for the old pod');
    await t.clients.pods.delete(ns, 'db-old-pod', { gracePeriodSeconds: 0 });
    const newRS = await t.until('new ReplicaSet at full size', async () =>
      (await replicaSetsOf(ns)).find((r) => r.metadata.uid !== oldRS.metadata.uid),
    );
    assert.equal(newRS.spec?.replicas, 2);
    assert.equal(revision(newRS), '2');
    await rolledOut(ns, 'db', 2);
  });

  it('scales proportionally while paused mid-rollout, and resumes the rollout', async () => {
    const ns = await namespace();
    const strategy = { type: 'RollingUpdate', rollingUpdate: { maxSurge: 3, maxUnavailable: 2 } };
    await t.clients.deployments.create(ns, deployment(ns, 'api', { replicas: 10, strategy }));
    await rolledOut(ns, 'api', 10);
    const [oldRS] = (await replicaSetsOf(ns)) as [ReplicaSet];
    await setImage(ns, 'api', 'api:2');
    // New pods never become available: the rollout stops at old 8 (10 -
    // maxUnavailable must stay up), new 5 (13 = 10 + maxSurge pods in all).
    const newName = await t.until('mid-rollout', async () => {
      await settle(ns, (r) => (r.metadata.uid === oldRS.metadata.uid ? (r.spec?.replicas ?? 0) : 0));
      const list = await replicaSetsOf(ns);
      const o = list.find((r) => r.metadata.uid === oldRS.metadata.uid);
      const n = list.find((r) => r.metadata.uid !== oldRS.metadata.uid);
      return o?.spec?.replicas === 8 && n?.spec?.replicas === 5 ? n.metadata.name : undefined;
    });
    await t.clients.deployments.patch(ns, 'api', 'merge', { spec: { paused: true } });
    await t.until('Progressing DeploymentPaused', async () => {
      const c = condition(await getDeployment(ns, 'api'), 'Progressing');
      return c?.reason === 'DeploymentPaused' && c.status === 'Unknown';
    });
    // A template change while paused starts no rollout.
    await setImage(ns, 'api', 'api:3');
    await t.clients.deployments.patch(ns, 'api', 'merge', { spec: { replicas: 15 } });
    // 18 = 15 + maxSurge pods, shared as the ReplicaSets were last sized
    // for 13 (max-replicas): old round(8*18/13) = 11, new round(5*18/13) = 7.
    await t.until('proportional scale', async () => {
      const list = await replicaSetsOf(ns);
      const o = list.find((r) => r.metadata.uid === oldRS.metadata.uid);
      const n = list.find((r) => r.metadata.name === newName);
      return list.length === 2 && o?.spec?.replicas === 11 && n?.spec?.replicas === 7;
    });
    for (const r of await replicaSetsOf(ns)) {
      assert.equal(r.metadata.annotations?.['deployment.kubernetes.io/desired-replicas'], '15');
      assert.equal(r.metadata.annotations?.['deployment.kubernetes.io/max-replicas'], '18');
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await replicaSetsOf(ns)).length, 2, 'still no rollout while paused');

    await t.clients.deployments.patch(ns, 'api', 'merge', { spec: { paused: false } });
    const done = await rolledOut(ns, 'api', 15);
    assert.equal(revision(done), '3');
    const list = await replicaSetsOf(ns);
    assert.equal(list.length, 3);
    assert.deepEqual(
      list.map((r) => r.spec?.replicas),
      [0, 0, 15],
    );
    assert.equal(list[2]?.spec?.template?.spec?.containers?.[0]?.image, 'api:3');
  });

  it('keeps revisionHistoryLimit old ReplicaSets, reuses one on rollback, copies change-cause', async () => {
    const ns = await namespace();
    await t.clients.deployments.create(
      ns,
      deployment(ns, 'web', {
        replicas: 1,
        revisionHistoryLimit: 1,
        annotations: { 'kubernetes.io/change-cause': 'v1' },
      }),
    );
    await rolledOut(ns, 'web', 1);
    for (const v of ['2', '3']) {
      await t.clients.deployments.patch(ns, 'web', 'strategic', {
        metadata: { annotations: { 'kubernetes.io/change-cause': `v${v}` } },
        spec: { template: { spec: { containers: [{ name: 'app', image: `nginx:${v}` }] } } },
      });
      await rolledOut(ns, 'web', 1);
    }
    const list = await t.until('revision 1 deleted', async () => {
      await settle(ns);
      const l = await replicaSetsOf(ns);
      return l.length === 2 ? l : undefined;
    });
    assert.deepEqual(list.map(revision), ['2', '3']);
    assert.deepEqual(
      list.map((r) => r.metadata.annotations?.['kubernetes.io/change-cause']),
      ['v2', 'v3'],
    );

    // Rolling back to revision 2: the template comes back, the ReplicaSet is
    // reused as revision 4 and remembers it was 2.
    await setImage(ns, 'web', 'nginx:2');
    const d = await rolledOut(ns, 'web', 1);
    assert.equal(revision(d), '4');
    const after = await replicaSetsOf(ns);
    assert.equal(after.length, 2);
    const back = after.find((r) => r.metadata.uid === list[0]?.metadata.uid);
    assert.equal(back?.spec?.replicas, 1);
    assert.equal(revision(back as ReplicaSet), '4');
    assert.equal(back?.metadata.annotations?.['deployment.kubernetes.io/revision-history'], '2');
  });

  it('reports ProgressDeadlineExceeded when no progress is made in progressDeadlineSeconds', async (tc) => {
    tc.after(() => {
      clockOffsetMs = 0;
    });
    const ns = await namespace();
    await t.clients.deployments.create(
      ns,
      deployment(ns, 'slow', { replicas: 2, progressDeadlineSeconds: 60 }),
    );
    await t.until('NewReplicaSetCreated', async () => {
      return condition(await getDeployment(ns, 'slow'), 'Progressing')?.reason === 'NewReplicaSetCreated';
    });
    // Two minutes later, still nothing available.
    clockOffsetMs = 120_000;
    const controller = t.manager.controllers.find((c) => c.name === 'deployment') as QueueController;
    const timedOut = await t.until('ProgressDeadlineExceeded', async () => {
      controller.queue.add(`${ns}/slow`); // what the deadline requeue or a resync would do
      const c = condition(await getDeployment(ns, 'slow'), 'Progressing');
      return c?.reason === 'ProgressDeadlineExceeded' ? c : undefined;
    });
    assert.equal(timedOut.status, 'False');
    assert.match(timedOut.message ?? '', /^ReplicaSet "slow-[a-z0-9]+" has timed out progressing\.$/);
    // Pods becoming available afterwards complete the rollout.
    const done = await rolledOut(ns, 'slow', 2);
    assert.equal(condition(done, 'Progressing')?.status, 'True');
  });

  it('adopts a matching orphan ReplicaSet and releases one that stops matching', async () => {
    const ns = await namespace();
    const d = deployment(ns, 'web', { replicas: 2, paused: true });
    const created = await t.clients.deployments.create(ns, d);
    // Paused: no ReplicaSet is created, so we can make one of the same template.
    const hash = computeHash(created.spec?.template);
    const labels = { app: 'web', 'pod-template-hash': hash };
    await t.clients.replicaSets.create(ns, {
      metadata: { name: `web-${hash}`, labels },
      spec: {
        replicas: 2,
        selector: { matchLabels: labels },
        template: { ...created.spec?.template, metadata: { labels } },
      },
    });
    const adopted = await t.until('adopted', async () => {
      const r = await t.clients.replicaSets.get(ns, `web-${hash}`);
      return r.metadata.ownerReferences?.[0]?.uid === created.metadata.uid ? r : undefined;
    });
    assert.equal(adopted.metadata.ownerReferences?.[0]?.controller, true);
    await t.clients.deployments.patch(ns, 'web', 'merge', { spec: { paused: false } });
    await rolledOut(ns, 'web', 2);
    assert.equal((await replicaSetsOf(ns)).length, 1, 'the adopted ReplicaSet is the new one');

    await t.clients.replicaSets.patch(ns, `web-${hash}`, 'merge', { metadata: { labels: { app: 'other' } } });
    await t.until('released', async () => {
      const r = await t.clients.replicaSets.get(ns, `web-${hash}`);
      return !r.metadata.ownerReferences?.length;
    });
  });

  it('counts a pod-template-hash collision in status.collisionCount and picks another name', async () => {
    const ns = await namespace();
    const created = await t.clients.deployments.create(
      ns,
      deployment(ns, 'web', { replicas: 1, paused: true }),
    );
    const hash = computeHash(created.spec?.template);
    // Someone else's ReplicaSet already has the name the template hashes to.
    const otherLabels = { app: 'not-web' };
    await t.clients.replicaSets.create(ns, {
      metadata: { name: `web-${hash}`, labels: otherLabels },
      spec: {
        replicas: 0,
        selector: { matchLabels: otherLabels },
        template: { metadata: { labels: otherLabels }, spec: { containers: [{ name: 'x', image: 'x' }] } },
      },
    });
    await t.clients.deployments.patch(ns, 'web', 'merge', { spec: { paused: false } });
    const d = await rolledOut(ns, 'web', 1);
    assert.equal(d.status?.collisionCount, 1);
    const ours = (await replicaSetsOf(ns)).filter((r) => r.metadata.ownerReferences?.length);
    assert.deepEqual(
      ours.map((r) => r.metadata.name),
      [`web-${computeHash(created.spec?.template, 1)}`],
    );
  });

  it('scales the one active ReplicaSet with the Deployment (kubectl scale)', async () => {
    const ns = await namespace();
    await t.clients.deployments.create(ns, deployment(ns, 'web', { replicas: 3 }));
    await rolledOut(ns, 'web', 3);
    await t.clients.deployments.patch(
      ns,
      'web',
      'merge',
      { spec: { replicas: 5 } },
      { subresource: 'scale' },
    );
    const d = await rolledOut(ns, 'web', 5);
    assert.equal(revision(d), '1', 'a scale is not a new revision');
    const [only] = (await replicaSetsOf(ns)) as [ReplicaSet];
    assert.equal(only.spec?.replicas, 5);
    assert.equal(only.metadata.annotations?.['deployment.kubernetes.io/desired-replicas'], '5');
    assert.equal(only.metadata.annotations?.['deployment.kubernetes.io/max-replicas'], '7');
    const scaled = await events(ns, 'ScalingReplicaSet');
    assert.ok(scaled.includes(`Scaled up replica set ${only.metadata.name} to 5 from 3`), scaled.join('\n'));
  });

  it('sets minReadySeconds on its ReplicaSets', async () => {
    const ns = await namespace();
    await t.clients.deployments.create(ns, deployment(ns, 'web', { replicas: 1, minReadySeconds: 5 }));
    const [r] = await t.until('ReplicaSet', async () => {
      const l = await replicaSetsOf(ns);
      return l.length ? l : undefined;
    });
    assert.equal(r?.spec?.minReadySeconds, 5);
    await t.clients.deployments.patch(ns, 'web', 'merge', { spec: { minReadySeconds: 9 } });
    await t.until('minReadySeconds updated in place', async () => {
      const l = await replicaSetsOf(ns);
      return l.length === 1 && l[0]?.spec?.minReadySeconds === 9;
    });
  });
});

// ---- with the real ReplicaSet controller; the test plays the kubelet ----

describe('deployment and replicaset controllers together', () => {
  let tt: ControllerTest;
  before(async () => {
    tt = await startControllerTest({ deployment: deploymentController, replicaset: replicaSetController });
  });
  after(() => tt.close());

  /** Marks every pod of the namespace Running and Ready, as a kubelet would. */
  async function kubelet(ns: string) {
    for (const pod of (await tt.clients.pods.list(ns)).items) {
      if (pod.metadata.deletionTimestamp || pod.status?.phase === 'Running') continue;
      await tt.clients.pods
        .patch(
          ns,
          pod.metadata.name ?? '',
          'merge',
          {
            status: {
              phase: 'Running',
              conditions: [
                {
                  type: 'Ready',
                  status: 'True',
                  lastTransitionTime: new Date().toISOString().slice(0, 19) + 'Z',
                },
              ],
            },
          },
          { subresource: 'status' },
        )
        .catch(() => {});
    }
  }

  it('rolls a Deployment from one image to another through real pods', async () => {
    await tt.clients.namespaces.create(undefined, { metadata: { name: 'together' } });
    await tt.clients.deployments.create('together', {
      ...deployment('together', 'web', { replicas: 3 }),
    });
    const ready = async (image: string) =>
      tt.until(
        `3 ready pods of ${image}`,
        async () => {
          await kubelet('together');
          const d = await tt.clients.deployments.get('together', 'web');
          const pods = (await tt.clients.pods.list('together')).items.filter(
            (p) => !p.metadata.deletionTimestamp,
          );
          return d.status?.availableReplicas === 3 &&
            d.status.updatedReplicas === 3 &&
            d.status.replicas === 3 &&
            condition(d, 'Progressing')?.reason === 'NewReplicaSetAvailable' &&
            pods.length === 3 &&
            pods.every((p) => p.spec?.containers?.[0]?.image === image)
            ? d
            : undefined;
        },
        30_000,
      );
    await ready('nginx:1');
    await tt.clients.deployments.patch('together', 'web', 'strategic', {
      spec: { template: { spec: { containers: [{ name: 'app', image: 'nginx:2' }] } } },
    });
    const d = await ready('nginx:2');
    assert.equal(revision(d), '2');
    const pods = (await tt.clients.pods.list('together')).items;
    const hash = (await tt.clients.replicaSets.list('together')).items.find((r) => r.spec?.replicas === 3)
      ?.metadata.labels?.['pod-template-hash'];
    assert.ok(
      pods
        .filter((p) => !p.metadata.deletionTimestamp)
        .every((p) => p.metadata.labels?.['pod-template-hash'] === hash),
    );
  });
});
