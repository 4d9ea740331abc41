// Authorization with the real kubectl: a skiff server with
// --authorization-mode Node,RBAC, users made with `skiff kubeconfig`, and
// upstream's bootstrap roles (the default mode); the admin kubeconfig is
// system:masters.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, KUBECTL_VERSIONS, ok, type Skiff, skiffCli, startSkiff } from './harness.ts';

let skiff: Skiff;
const kubeconfigs: Record<string, string> = {};

async function makeUser(user: string, groups: string[] = []) {
  const file = join(skiff.dataDir, `${user}.kubeconfig`);
  const r = await skiffCli([
    'kubeconfig',
    '--user',
    user,
    ...groups.flatMap((g) => ['--group', g]),
    '--data-dir',
    skiff.dataDir,
    '-o',
    file,
  ]);
  assert.equal(r.code, 0, r.stderr);
  kubeconfigs[user] = file;
}

const as = (user: string, version?: string) => ({
  env: { KUBECONFIG: kubeconfigs[user]! },
  ...(version ? { version } : {}),
});

before(async () => {
  skiff = await startSkiff(['--authorization-mode', 'Node,RBAC']);
  await ok(skiff, ['create', 'namespace', 'team']);
  await makeUser('bob', ['dev']);
  await makeUser('carol');
  await ok(skiff, ['create', 'rolebinding', 'bob-view', '--clusterrole=view', '--user=bob', '-n', 'team']);
  await ok(skiff, [
    'create',
    'rolebinding',
    'carol-edit',
    '--clusterrole=edit',
    '--user=carol',
    '-n',
    'team',
  ]);
  await ok(skiff, ['create', 'configmap', 'settings', '--from-literal=a=1', '-n', 'team']);
});
after(async () => {
  await skiff?.stop();
});

describe('RBAC with kubectl', () => {
  it('lists upstream bootstrap roles, and aggregates view/edit/admin', async () => {
    const roles = await ok(skiff, ['get', 'clusterroles', '-o', 'name']);
    for (const r of [
      'cluster-admin',
      'admin',
      'edit',
      'view',
      'system:node',
      'system:kube-scheduler',
      'system:discovery',
    ])
      assert.ok(roles.includes(`clusterrole.rbac.authorization.k8s.io/${r}\n`), r);
    await eventually('view aggregated', async () => {
      const view = JSON.parse(await ok(skiff, ['get', 'clusterrole', 'view', '-o', 'json']));
      return (view.rules ?? []).some((r: { resources?: string[] }) => r.resources?.includes('pods'));
    });
  });

  for (const version of KUBECTL_VERSIONS) {
    it(`kubectl ${version}: a user with no binding gets upstream's 403; a view user reads but cannot write`, async () => {
      const denied = await skiff.kubectl(['get', 'pods', '-n', 'default'], as('bob', version));
      assert.notEqual(denied.code, 0);
      assert.match(
        denied.stderr,
        /Error from server \(Forbidden\): pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "default"/,
      );
      // The view binding in team takes effect once the aggregation controller has filled view.
      await eventually(
        'bob reads team',
        async () => (await skiff.kubectl(['get', 'configmaps', '-n', 'team'], as('bob', version))).code === 0,
      );
      const write = await skiff.kubectl(
        ['create', 'configmap', `by-bob-${version}`, '-n', 'team'],
        as('bob', version),
      );
      assert.notEqual(write.code, 0);
      assert.match(
        write.stderr,
        /configmaps is forbidden: User "bob" cannot create resource "configmaps" in API group "" in the namespace "team"/,
      );
      const secret = await skiff.kubectl(['get', 'secrets', '-n', 'team'], as('bob', version));
      assert.match(secret.stderr, /secrets is forbidden/, 'view does not read secrets');
    });
  }

  it('an edit user writes and reads secrets but cannot read roles', async () => {
    await eventually(
      'edit aggregated',
      async () =>
        (await skiff.kubectl(['create', 'configmap', 'by-carol', '-n', 'team'], as('carol'))).code === 0,
    );
    await ok(skiff, ['get', 'secrets', '-n', 'team'], as('carol'));
    const roles = await skiff.kubectl(['get', 'roles', '-n', 'team'], as('carol'));
    assert.match(
      roles.stderr,
      /roles.rbac.authorization.k8s.io is forbidden: User "carol" cannot list resource "roles" in API group "rbac.authorization.k8s.io" in the namespace "team"/,
    );
  });

  for (const version of KUBECTL_VERSIONS) {
    it(`kubectl ${version}: exec is authorized before it reaches the kubelet`, async () => {
      // A pod with no node: the 403 must come before the server looks for a kubelet.
      const pod = `exec-target-${version.replace(/\W/g, '')}`;
      await ok(skiff, ['run', pod, '--image=localhost/skiff/busybox', '-n', 'team', '--restart=Never']);
      await eventually(
        'view aggregated for bob',
        async () => (await skiff.kubectl(['get', 'pod', pod, '-n', 'team'], as('bob'))).code === 0,
      );
      // kubectl < 1.30 upgrades over SPDY (a POST: create); newer ones over WebSocket (a GET: get, then create).
      const r = await skiff.kubectl(['exec', pod, '-n', 'team', '--', 'true'], as('bob', version));
      assert.notEqual(r.code, 0);
      assert.match(
        r.stderr,
        /User "bob" cannot (get|create) resource "pods\/exec" in API group "" in the namespace "team"/,
      );
      await ok(skiff, ['delete', 'pod', pod, '-n', 'team', '--force', '--grace-period=0']);
    });
  }

  it('kubectl auth can-i, can-i --list and whoami', async () => {
    await eventually(
      'view aggregated for bob',
      async () =>
        (await skiff.kubectl(['auth', 'can-i', 'list', 'pods', '-n', 'team'], as('bob'))).code === 0,
    );
    const yes = await skiff.kubectl(['auth', 'can-i', 'list', 'pods', '-n', 'team'], as('bob'));
    assert.equal(yes.stdout.trim(), 'yes');
    const no = await skiff.kubectl(['auth', 'can-i', 'delete', 'pods', '-n', 'team'], as('bob'));
    assert.equal(no.code, 1);
    assert.equal(no.stdout.trim(), 'no');
    const list = await ok(skiff, ['auth', 'can-i', '--list', '-n', 'team'], as('bob'));
    assert.match(list, /^pods\s+\[\]\s+\[\]\s+\[get list watch\]$/m);
    assert.match(list, /selfsubjectaccessreviews\.authorization\.k8s\.io\s+\[\]\s+\[\]\s+\[create\]/);
    const who = await ok(skiff, ['auth', 'whoami', '-o', 'json'], as('bob'));
    const info = JSON.parse(who).status.userInfo;
    assert.equal(info.username, 'bob');
    assert.deepEqual(info.groups, ['dev', 'system:authenticated']);
    // The admin may do anything.
    assert.equal((await ok(skiff, ['auth', 'can-i', '*', '*'])).trim(), 'yes');
  });

  it('skiff kubeconfig refuses a missing or system user', async () => {
    const r = await skiffCli(['kubeconfig', '--user', 'system:admin', '--data-dir', skiff.dataDir]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--user NAME is required/);
  });
});
