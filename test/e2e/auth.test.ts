// Authorization with the real kubectl: a skiff server with
// --authorization-mode Node,RBAC, users made with `skiff kubeconfig`, and
// upstream's bootstrap roles (the default mode); the admin kubeconfig is
// system:masters.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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

let tokenFile: string;
let auditLog: string;

before(async () => {
  tokenFile = join(mkdtempSync(join(tmpdir(), 'skiff-tokens-')), 'tokens.csv');
  writeFileSync(tokenFile, 'static-token-for-alice,alice,uid-alice,"ops,dev"\n', { mode: 0o600 });
  const dir = dirname(tokenFile);
  auditLog = join(dir, 'audit.log');
  writeFileSync(
    join(dir, 'audit-policy.yaml'),
    `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: RequestResponse
  users: [carol]
  resources: [{group: "", resources: [configmaps]}]
- level: Metadata
  users: [bob, carol]
`,
  );
  skiff = await startSkiff([
    '--authorization-mode',
    'Node,RBAC',
    '--token-auth-file',
    tokenFile,
    '--audit-policy-file',
    join(dir, 'audit-policy.yaml'),
    '--audit-log-path',
    auditLog,
  ]);
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
  if (tokenFile) rmSync(dirname(tokenFile), { recursive: true, force: true });
});

/** kubectl with only a bearer token: no client certificate, the CA from the admin kubeconfig. */
const bare = (version?: string) => ({
  env: { KUBECONFIG: '/dev/null' },
  ...(version ? { version } : {}),
});
const tokenArgs = (token: string) => [
  `--server=https://127.0.0.1:${skiff.port}`,
  `--certificate-authority=${join(skiff.dataDir, 'server', 'tls', 'ca.crt')}`,
  `--token=${token}`,
];

describe('bearer tokens with kubectl', () => {
  for (const version of KUBECTL_VERSIONS) {
    it(`kubectl ${version}: create token; the token reads as the ServiceAccount's view role and is refused the rest`, async () => {
      const sa = `robot-${version.replace(/\W/g, '')}`;
      await ok(skiff, ['create', 'serviceaccount', sa, '-n', 'team']);
      await ok(skiff, [
        'create',
        'rolebinding',
        `${sa}-view`,
        '--clusterrole=view',
        `--serviceaccount=team:${sa}`,
        '-n',
        'team',
      ]);
      const token = (await ok(skiff, ['create', 'token', sa, '-n', 'team'], { version })).trim();
      assert.match(token, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
      // kubectl 1.27 asks for SelfSubjectReview in v1beta1, gone since 1.32: whoami with the default kubectl.
      const who = JSON.parse(await ok(skiff, [...tokenArgs(token), 'auth', 'whoami', '-o', 'json'], bare()))
        .status.userInfo;
      assert.equal(who.username, `system:serviceaccount:team:${sa}`);
      assert.deepEqual(who.groups, [
        'system:serviceaccounts',
        'system:serviceaccounts:team',
        'system:authenticated',
      ]);
      await eventually('view binding in effect', async () => {
        const r = await skiff.kubectl([...tokenArgs(token), 'get', 'configmaps', '-n', 'team'], bare());
        return r.code === 0;
      });
      const secrets = await skiff.kubectl(
        [...tokenArgs(token), 'get', 'secrets', '-n', 'team'],
        bare(version),
      );
      assert.match(
        secrets.stderr,
        new RegExp(
          `User "system:serviceaccount:team:${sa}" cannot list resource "secrets" in API group "" in the namespace "team"`,
        ),
      );
    });
  }

  it('a token stops working when its ServiceAccount or bound pod is deleted; a short duration is refused with upstream 422', async () => {
    await ok(skiff, ['create', 'serviceaccount', 'short-lived', '-n', 'team']);
    await ok(skiff, ['run', 'holder', '--image=localhost/skiff/busybox', '-n', 'team', '--restart=Never']);
    const bound = (
      await ok(skiff, [
        'create',
        'token',
        'short-lived',
        '-n',
        'team',
        '--bound-object-kind=Pod',
        '--bound-object-name=holder',
      ])
    ).trim();
    const unbound = (await ok(skiff, ['create', 'token', 'short-lived', '-n', 'team'])).trim();
    const tooShort = await skiff.kubectl(['create', 'token', 'short-lived', '-n', 'team', '--duration=1m']);
    assert.match(
      tooShort.stderr,
      /TokenRequest.authentication.k8s.io "short-lived" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes/,
    );
    const missing = await skiff.kubectl(['create', 'token', 'nobody', '-n', 'team']);
    assert.match(missing.stderr, /serviceaccounts "nobody" not found/);

    await ok(skiff, ['delete', 'pod', 'holder', '-n', 'team', '--force', '--grace-period=0']);
    const afterPod = await skiff.kubectl([...tokenArgs(bound), 'auth', 'whoami'], bare());
    assert.match(afterPod.stderr, /Unauthorized/);
    await ok(skiff, ['delete', 'serviceaccount', 'short-lived', '-n', 'team']);
    const afterSA = await skiff.kubectl([...tokenArgs(unbound), 'auth', 'whoami'], bare());
    assert.match(afterSA.stderr, /Unauthorized/);
    const bogus = await skiff.kubectl([...tokenArgs('not-a-token'), 'get', 'pods'], bare());
    assert.match(bogus.stderr, /Unauthorized/);
  });

  it('a kubernetes.io/service-account-token Secret gets a long-lived token that authenticates, and kube-root-ca.crt is in every namespace', async () => {
    await ok(skiff, ['create', 'serviceaccount', 'legacy', '-n', 'team']);
    await ok(skiff, ['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: 'legacy-token',
          namespace: 'team',
          annotations: { 'kubernetes.io/service-account.name': 'legacy' },
        },
        type: 'kubernetes.io/service-account-token',
      }),
    });
    const token = await eventually('token filled', async () => {
      const r = await skiff.kubectl([
        'get',
        'secret',
        'legacy-token',
        '-n',
        'team',
        '-o',
        'jsonpath={.data.token}',
      ]);
      return r.stdout ? Buffer.from(r.stdout, 'base64').toString('utf8') : undefined;
    });
    const who = await ok(
      skiff,
      [...tokenArgs(token), 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'],
      bare(),
    );
    assert.equal(who, 'system:serviceaccount:team:legacy');
    const ca = await eventually('kube-root-ca.crt in team', async () => {
      const r = await skiff.kubectl([
        'get',
        'configmap',
        'kube-root-ca.crt',
        '-n',
        'team',
        '-o',
        "jsonpath={.data['ca\\.crt']}",
      ]);
      return r.code === 0 && r.stdout ? r.stdout : undefined;
    });
    assert.match(ca, /^-----BEGIN CERTIFICATE-----/);
  });

  it('--token-auth-file users, and TokenReview answers for any bearer token', async () => {
    const who = JSON.parse(
      await ok(skiff, [...tokenArgs('static-token-for-alice'), 'auth', 'whoami', '-o', 'json'], bare()),
    ).status.userInfo;
    assert.equal(who.username, 'alice');
    assert.equal(who.uid, 'uid-alice');
    assert.deepEqual(who.groups, ['ops', 'dev', 'system:authenticated']);
    const review = (token: string) =>
      ok(skiff, ['create', '-o', 'json', '-f', '-'], {
        input: JSON.stringify({
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token },
        }),
      }).then((out) => JSON.parse(out).status);
    const good = await review('static-token-for-alice');
    assert.equal(good.authenticated, true);
    assert.equal(good.user.username, 'alice');
    assert.deepEqual(good.audiences, ['https://kubernetes.default.svc.cluster.local']);
    const bad = await review('nope');
    assert.equal(bad.authenticated, undefined);
    assert.match(bad.error, /invalid bearer token/);
  });
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

  it('impersonation: the admin acts --as bob (and his groups); carol may not impersonate', async () => {
    await eventually(
      'view aggregated for bob',
      async () =>
        (await skiff.kubectl(['auth', 'can-i', 'list', 'pods', '-n', 'team', '--as=bob'])).stdout.trim() ===
        'yes',
    );
    await ok(skiff, ['get', 'configmaps', '-n', 'team', '--as=bob']);
    const write = await skiff.kubectl(['create', 'configmap', 'as-bob', '-n', 'team', '--as=bob']);
    assert.match(
      write.stderr,
      /User "bob" cannot create resource "configmaps" in API group "" in the namespace "team"/,
    );
    const who = JSON.parse(await ok(skiff, ['auth', 'whoami', '-o', 'json', '--as=bob', '--as-group=dev']))
      .status.userInfo;
    assert.equal(who.username, 'bob');
    assert.deepEqual(who.groups, ['dev', 'system:authenticated']);
    const sa = JSON.parse(
      await ok(skiff, ['auth', 'whoami', '-o', 'json', '--as=system:serviceaccount:team:default']),
    ).status.userInfo;
    assert.deepEqual(sa.groups, [
      'system:serviceaccounts',
      'system:serviceaccounts:team',
      'system:authenticated',
    ]);
    const denied = await skiff.kubectl(['get', 'pods', '-n', 'team', '--as=bob'], as('carol'));
    assert.match(
      denied.stderr,
      /users "bob" is forbidden: User "carol" cannot impersonate resource "users" in API group "" at the cluster scope/,
    );
  });

  it("audit log: upstream's Events at the policy's level, with the authorization decision and admission's notes", async () => {
    await ok(skiff, ['create', 'configmap', 'audited', '--from-literal=k=v', '-n', 'team'], as('carol'));
    // Admitted (and audited) but not kept: PodSecurity notes the level it enforced.
    await ok(skiff, ['run', 'audited', '--image=busybox', '-n', 'team', '--dry-run=server'], as('carol'));
    await skiff.kubectl(['get', 'secrets', '-n', 'team'], as('bob'));
    type Event = {
      level: string;
      stage: string;
      verb: string;
      user: { username: string };
      objectRef?: { resource: string; namespace?: string; name?: string };
      responseStatus?: { code: number };
      requestObject?: { data?: Record<string, string> };
      responseObject?: { metadata?: { uid?: string } };
      annotations?: Record<string, string>;
    };
    const events = await eventually('events in the audit log', async () => {
      const lines = readFileSync(auditLog, 'utf8').trim().split('\n').filter(Boolean);
      const all = lines.map((l) => JSON.parse(l) as Event);
      const create = all.find(
        (e) =>
          e.verb === 'create' &&
          e.objectRef?.resource === 'configmaps' &&
          (e.requestObject as { metadata?: { name?: string } } | undefined)?.metadata?.name === 'audited',
      );
      const denied = all.find((e) => e.objectRef?.resource === 'secrets' && e.user.username === 'bob');
      const pod = all.find(
        (e) => e.verb === 'create' && e.objectRef?.resource === 'pods' && e.user.username === 'carol',
      );
      return create && denied && pod ? { all, create, denied, pod } : undefined;
    });
    assert.equal(events.create.level, 'RequestResponse');
    assert.equal(events.create.stage, 'ResponseComplete');
    assert.equal(events.create.responseStatus?.code, 201);
    assert.deepEqual(events.create.requestObject?.data, { k: 'v' });
    assert.equal(events.create.user.username, 'carol');
    assert.ok(events.create.responseObject?.metadata?.uid);
    assert.equal(events.create.annotations?.['authorization.k8s.io/decision'], 'allow');
    assert.match(
      events.create.annotations?.['authorization.k8s.io/reason'] ?? '',
      /^RBAC: allowed by .*carol-edit/,
    );
    assert.equal(events.pod.level, 'Metadata');
    assert.equal(events.pod.responseStatus?.code, 201);
    assert.equal(events.pod.annotations?.['pod-security.kubernetes.io/enforce-policy'], 'privileged:latest');
    assert.equal(events.denied.level, 'Metadata');
    assert.equal(events.denied.responseStatus?.code, 403);
    assert.equal(events.denied.requestObject, undefined);
    assert.equal(events.denied.annotations?.['authorization.k8s.io/decision'], 'forbid');
    // omitStages: no RequestReceived; users the policy does not name: not logged.
    assert.ok(events.all.every((e) => e.stage !== 'RequestReceived'));
    assert.ok(events.all.every((e) => ['bob', 'carol'].includes(e.user.username)));
  });

  it('skiff kubeconfig refuses a missing or system user', async () => {
    const r = await skiffCli(['kubeconfig', '--user', 'system:admin', '--data-dir', skiff.dataDir]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--user NAME is required/);
  });
});
