import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { connect } from 'node:tls';
import { ensureCA } from '../pki/pki.ts';
import { freePort } from '../storage/etcd/etcd-harness.ts';
import { openStore } from '../storage/open.ts';
import { createLog } from '../util/log.ts';
import { rotateCertificates } from './certificates.ts';
import { etcdDataDir, hasEtcdMember, restoreEtcdSnapshot, startEmbeddedEtcd } from './embedded-etcd.ts';
import { datastoreOf, saveSnapshot } from './snapshots.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'skiff-embedded-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));
const log = createLog({ component: 'test' }, () => {});
const ca = ensureCA(join(dataDir, 'server', 'tls'));
const tlsFiles = {
  caFile: ca.certFile,
  certFile: join(dataDir, 'server/tls/etcd/client.crt'),
  keyFile: join(dataDir, 'server/tls/etcd/client.key'),
};

describe('the embedded etcd member', () => {
  it('serves over TLS with a client certificate from the CA (what the --datastore-cafile/-certfile/-keyfile flags give); --cluster-reset keeps its data; a snapshot restores as a cluster of one', async () => {
    const clientPort = await freePort();
    const peerPort = await freePort();
    const member = (extra: { forceNewCluster?: boolean } = {}) =>
      startEmbeddedEtcd({
        dataDir,
        name: 'm1',
        advertiseIP: '127.0.0.1',
        clientPort,
        peerPort,
        ca,
        log,
        ...extra,
      });
    let etcd = await member();
    assert.ok(hasEtcdMember(dataDir));
    const endpoint = `https://127.0.0.1:${clientPort}`;
    let { store } = await openStore(endpoint, dataDir, tlsFiles);
    const kv = await store.create('/registry/configmaps/default/a', '{"uid":"u-a"}');
    // Without a CA the https endpoint is refused up front, with the flag to use.
    await assert.rejects(openStore(endpoint, dataDir), /needs --datastore-cafile/);
    const snap = await saveSnapshot({
      datastore: datastoreOf(endpoint, dataDir, tlsFiles),
      dir: join(dataDir, 'snapshots'),
      nodeName: 'm1',
    });
    await store.create('/registry/configmaps/default/b', '{}');
    await store.close();
    await etcd.stop();

    // --cluster-reset without a snapshot: the member forgets its peers, keeps its data.
    etcd = await member({ forceNewCluster: true });
    await etcd.stop();
    etcd = await member();
    ({ store } = await openStore(endpoint, dataDir, tlsFiles));
    assert.ok(await store.get('/registry/configmaps/default/b'));
    await store.close();
    await etcd.stop();

    // --cluster-reset-restore-path: the snapshot's data, the old kept beside.
    const { kept } = restoreEtcdSnapshot(
      snap.location.replace('file://', ''),
      dataDir,
      'm1',
      `https://127.0.0.1:${peerPort}`,
    );
    assert.ok(kept && existsSync(kept));
    assert.ok(existsSync(join(etcdDataDir(dataDir), 'member')));
    etcd = await member();
    ({ store } = await openStore(endpoint, dataDir, tlsFiles));
    const a = await store.get('/registry/configmaps/default/a');
    assert.equal(a?.value, '{"uid":"u-a"}');
    assert.equal(a?.modRevision, kv.modRevision);
    assert.equal(await store.get('/registry/configmaps/default/b'), undefined);

    // skiff certificate rotate --service etcd: the member serves the new certificate to new connections.
    const { rotated } = rotateCertificates(dataDir, ['etcd']);
    assert.equal(rotated.length, 3);
    const want = new X509Certificate(readFileSync(join(dataDir, 'server/tls/etcd/server-client.crt')))
      .serialNumber;
    const served = await new Promise<string>((resolve, reject) => {
      const s = connect(
        {
          host: '127.0.0.1',
          port: clientPort,
          ca: ca.cert,
          cert: readFileSync(tlsFiles.certFile),
          key: readFileSync(tlsFiles.keyFile),
        },
        () => {
          resolve(s.getPeerCertificate().serialNumber);
          s.destroy();
        },
      );
      s.on('error', reject);
    });
    assert.equal(served, want);
    assert.ok(await store.get('/registry/configmaps/default/a'), 'the open client connection carries on');
    await store.close();
    await etcd.stop();
  });
});
