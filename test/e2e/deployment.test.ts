// Deployments rolled out, inspected, undone, restarted, paused and resumed
// with the real `kubectl rollout` against a real `skiff server` (its
// Deployment and ReplicaSet controllers). There is no kubelet yet, so the
// test plays it: every pod is marked Running and Ready through the API.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import type { Deployment, ReplicaSet } from '../../src/api/types/apps-v1.ts';
import { type Clientset, createClientset } from '../../src/client/clientset.ts';
import { createHttpTransport } from '../../src/client/http-transport.ts';
import { ok, type Skiff, startSkiff } from './harness.ts';

let skiff: Skiff;
let clients: Clientset;
let closeTransport: () => void;
let kubeletTimer: NodeJS.Timeout | undefined;

const NS = 'rollout';

/** Marks every pod Running and Ready, as a kubelet would once its containers started. */
async function kubelet(): Promise<void> {
  const pods = await clients.pods.list(NS);
  for (const pod of pods.items) {
    if (pod.metadata.deletionTimestamp || pod.status?.phase === 'Running') continue;
    const now = `${new Date().toISOString().slice(0, 19)}Z`;
    await clients.pods
      .patch(
        NS,
        pod.metadata.name ?? '',
        'merge',
        {
          status: {
            phase: 'Running',
            conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now }],
          },
        },
        { subresource: 'status' },
      )
      .catch(() => {}); // deleted meanwhile
  }
}

before(async () => {
  skiff = await startSkiff();
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(skiff.kubeconfig);
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  const b64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64') : undefined);
  const transport = createHttpTransport({
    server: cluster?.server ?? '',
    ...(cluster?.caData ? { ca: b64(cluster.caData) } : {}),
    ...(user?.certData ? { cert: b64(user.certData) } : {}),
    ...(user?.keyData ? { key: b64(user.keyData) } : {}),
  });
  closeTransport = () => transport.close();
  clients = createClientset(transport);
  await ok(skiff, ['create', 'namespace', NS]);
  const tick = () => {
    kubeletTimer = setTimeout(() => {
      kubelet()
        .catch(() => {})
        .finally(() => {
          if (kubeletTimer) tick();
        });
    }, 100);
  };
  tick();
});
after(async () => {
  clearTimeout(kubeletTimer);
  kubeletTimer = undefined;
  closeTransport?.();
  await skiff?.stop();
});

const k = (args: string[], version?: string) =>
  ok(skiff, ['-n', NS, ...args], { ...(version ? { version } : {}), timeoutMs: 90_000 });

const rolloutStatus = () => k(['rollout', 'status', 'deployment/web', '--timeout=60s']);

const image = async () =>
  (await clients.deployments.get(NS, 'web')).spec?.template?.spec?.containers?.[0]?.image;

const revisions = async (): Promise<Map<string, ReplicaSet>> => {
  const list = await clients.replicaSets.list(NS);
  return new Map(
    list.items.map((rs) => [rs.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? '', rs]),
  );
};

describe('kubectl rollout', () => {
  it('status waits for a new deployment to become available', async () => {
    await k(['create', 'deployment', 'web', '--image=nginx:1', '--replicas=3']);
    assert.match(await rolloutStatus(), /deployment "web" successfully rolled out/);
    const d: Deployment = await clients.deployments.get(NS, 'web');
    assert.equal(d.status?.availableReplicas, 3);
    assert.equal(d.metadata.annotations?.['deployment.kubernetes.io/revision'], '1');
    const rs = JSON.parse(await k(['get', 'rs', '-o', 'json'])).items as ReplicaSet[];
    assert.equal(rs.length, 1);
    assert.match(rs[0]?.metadata.name ?? '', /^web-[bcdfghjklmnpqrstvwxz2456789]+$/);
    const events = await k(['get', 'events', '--field-selector', 'reason=ScalingReplicaSet', '-o', 'json']);
    assert.match(events, new RegExp(`Scaled up replica set ${rs[0]?.metadata.name} to 3`));
  });

  it('history lists revisions with their change-cause; --revision shows the template', async () => {
    await k(['set', 'image', 'deployment/web', 'nginx=nginx:2']);
    await k(['annotate', 'deployment/web', 'kubernetes.io/change-cause=upgrade to nginx 2']);
    assert.match(await rolloutStatus(), /successfully rolled out/);
    const history = await k(['rollout', 'history', 'deployment/web']);
    assert.match(history, /REVISION\s+CHANGE-CAUSE/);
    assert.match(history, /^1\s+<none>$/m);
    assert.match(history, /^2\s+upgrade to nginx 2$/m);
    const rev2 = await k(['rollout', 'history', 'deployment/web', '--revision=2']);
    assert.match(rev2, /deployment.apps\/web with revision #2/);
    assert.match(rev2, /Image:\s+nginx:2/);
    assert.match(rev2, /kubernetes.io\/change-cause: upgrade to nginx 2/);
  });

  for (const version of ['1.27', '1.32', '1.33']) {
    it(`undo (kubectl ${version}) brings back the previous template as a new revision`, async () => {
      const before = await image();
      const previous = before === 'nginx:2' ? 'nginx:1' : 'nginx:2';
      assert.match(await k(['rollout', 'undo', 'deployment/web'], version), /rolled back/);
      assert.equal(await image(), previous);
      assert.match(await rolloutStatus(), /successfully rolled out/);
      const d = await clients.deployments.get(NS, 'web');
      const revs = await revisions();
      const current = revs.get(d.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? '');
      assert.equal(current?.spec?.template?.spec?.containers?.[0]?.image, previous);
      assert.equal(current?.spec?.replicas, 3);
      // The ReplicaSet was reused, not copied: still two of them.
      assert.equal(revs.size, 2);
      assert.ok(current?.metadata.annotations?.['deployment.kubernetes.io/revision-history']);
    });
  }

  it('undo --to-revision picks that revision; an unknown revision is an error', async () => {
    const revs = await revisions();
    const target = [...revs.entries()].find(([, rs]) => rs.spec?.replicas === 0);
    assert.ok(target);
    await k(['rollout', 'undo', 'deployment/web', `--to-revision=${target[0]}`]);
    assert.equal(await image(), target[1].spec?.template?.spec?.containers?.[0]?.image);
    assert.match(await rolloutStatus(), /successfully rolled out/);
    const bad = await skiff.kubectl(['-n', NS, 'rollout', 'undo', 'deployment/web', '--to-revision=99']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /unable to find specified revision 99/);
  });

  it('restart rolls out a new ReplicaSet with a restartedAt annotation', async () => {
    const before = (await clients.deployments.get(NS, 'web')).metadata.annotations?.[
      'deployment.kubernetes.io/revision'
    ];
    assert.match(await k(['rollout', 'restart', 'deployment/web']), /restarted/);
    assert.match(await rolloutStatus(), /successfully rolled out/);
    const d = await clients.deployments.get(NS, 'web');
    assert.ok(d.spec?.template?.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt']);
    assert.equal(Number(d.metadata.annotations?.['deployment.kubernetes.io/revision']), Number(before) + 1);
    const current = (await revisions()).get(
      d.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? '',
    );
    assert.equal(current?.spec?.replicas, 3);
    assert.ok(current?.spec?.template?.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt']);
  });

  it('pause holds a template change back; undo is refused while paused; resume rolls it out', async () => {
    assert.match(await k(['rollout', 'pause', 'deployment/web']), /paused/);
    const rsBefore = (await revisions()).size;
    await k(['set', 'image', 'deployment/web', 'nginx=nginx:3']);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await revisions()).size, rsBefore, 'no new ReplicaSet while paused');
    const d = await clients.deployments.get(NS, 'web');
    const progressing = d.status?.conditions?.find((c) => c.type === 'Progressing');
    assert.equal(progressing?.reason, 'DeploymentPaused');
    const undo = await skiff.kubectl(['-n', NS, 'rollout', 'undo', 'deployment/web']);
    assert.notEqual(undo.code, 0);
    assert.match(undo.stderr, /you cannot rollback a paused deployment/);
    // Scaling still works while paused.
    await k(['scale', 'deployment/web', '--replicas=4']);
    await ok(skiff, [
      '-n',
      NS,
      'wait',
      '--for=jsonpath={.status.availableReplicas}=4',
      'deployment/web',
      '--timeout=60s',
    ]);

    assert.match(await k(['rollout', 'resume', 'deployment/web']), /resumed/);
    assert.match(await rolloutStatus(), /successfully rolled out/);
    assert.equal(await image(), 'nginx:3');
    const after = await clients.deployments.get(NS, 'web');
    assert.equal(after.status?.updatedReplicas, 4);
    assert.equal(
      after.status?.conditions?.find((c) => c.type === 'Progressing')?.reason,
      'NewReplicaSetAvailable',
    );
  });

  it('status fails once progressDeadlineSeconds pass without progress', async () => {
    // In a namespace the test's kubelet does not serve: pods never get ready.
    await ok(skiff, ['create', 'namespace', 'stuck']);
    await ok(skiff, ['-n', 'stuck', 'create', 'deployment', 'slow', '--image=nginx:1']);
    await ok(skiff, [
      '-n',
      'stuck',
      'patch',
      'deployment/slow',
      '-p',
      '{"spec":{"progressDeadlineSeconds":2}}',
    ]);
    // Nothing pokes the Deployment: the controller re-queues it for its deadline.
    const r = await skiff.kubectl(['-n', 'stuck', 'rollout', 'status', 'deployment/slow', '--timeout=60s'], {
      timeoutMs: 90_000,
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /deployment "slow" exceeded its progress deadline/);
    const d = await clients.deployments.get('stuck', 'slow');
    const progressing = d.status?.conditions?.find((c) => c.type === 'Progressing');
    assert.equal(progressing?.status, 'False');
    assert.equal(progressing?.reason, 'ProgressDeadlineExceeded');
  });
});
