// `skiff server` as a process: authentication, restarts, and the etcd datastore.

import assert from 'node:assert/strict';
import { request } from 'node:https';
import { after, describe, it } from 'node:test';
import { startEtcd } from '../../src/storage/etcd/etcd-harness.ts';
import { ok, type Skiff, startSkiff } from './harness.ts';

const servers: Skiff[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

function anonymous(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('skiff server', () => {
  it('refuses anonymous requests with a 401 Status', async () => {
    const s = await startSkiff();
    servers.push(s);
    const r = await anonymous(s.port, '/api/v1/namespaces');
    assert.equal(r.status, 401);
    const status = JSON.parse(r.body);
    assert.equal(status.kind, 'Status');
    assert.equal(status.reason, 'Unauthorized');
    // A method the HTTP parser does not know is answered, as upstream, not dropped.
    const foo = await anonymous(s.port, '/api/v1/namespaces', 'FOO');
    assert.equal(foo.status, 405);
    assert.equal(JSON.parse(foo.body).reason, 'MethodNotAllowed');
  });

  it('keeps every object and its certificates across a restart', async () => {
    const s = await startSkiff();
    servers.push(s);
    await ok(s, ['create', 'configmap', 'survivor', '--from-literal=a=b']);
    const before = JSON.parse(await ok(s, ['get', 'configmap', 'survivor', '-o', 'json']));
    await s.restart();
    // The old kubeconfig still works: same CA, same admin certificate.
    const after = JSON.parse(await ok(s, ['get', 'configmap', 'survivor', '-o', 'json']));
    assert.equal(after.metadata.uid, before.metadata.uid);
    assert.equal(after.metadata.resourceVersion, before.metadata.resourceVersion);
    const created = JSON.parse(await ok(s, ['create', 'configmap', 'later', '-o', 'json']));
    assert.ok(Number(created.metadata.resourceVersion) > Number(before.metadata.resourceVersion));
    assert.match(await ok(s, ['get', 'namespaces']), /kube-node-lease/);
  });

  it('runs on a real etcd cluster with --datastore-endpoint', async () => {
    const etcd = await startEtcd({ members: 3 });
    try {
      const endpoint = `etcd://${etcd.endpoints.map((e) => e.replace('http://', '')).join(',')}`;
      const s = await startSkiff(['--datastore-endpoint', endpoint]);
      servers.push(s);
      await ok(s, ['create', 'deployment', 'on-etcd', '--image=busybox']);
      const list = await ok(s, ['get', 'deployments', '-o', 'name']);
      assert.match(list, /deployment.apps\/on-etcd/);
      assert.match(s.logs(), /"datastore":"etcd /);
      await s.stop();
    } finally {
      await etcd.stop();
    }
  });
});
