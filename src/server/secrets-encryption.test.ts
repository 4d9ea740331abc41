// Secrets encryption at rest through a real `skiff server` on sqlite: what
// the database holds, what the API returns, and a key rotation with
// `skiff secrets-encrypt` across restarts.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { createInProcessTransport } from '../apiserver/in-process.ts';
import { runSecretsEncrypt } from '../cli/secrets-encrypt.ts';
import { createClientset } from '../client/clientset.ts';
import { createLog } from '../util/log.ts';
import { startServer } from './server.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'skiff-encryption-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));
const quiet = createLog({ component: 'test' }, () => {});

async function withServer<T>(
  secretsEncryption: boolean,
  fn: (clients: ReturnType<typeof createClientset>) => Promise<T>,
) {
  const server = await startServer(
    {
      dataDir,
      datastoreEndpoint: 'sqlite://',
      bindAddress: '127.0.0.1',
      httpsPort: 0,
      serviceCIDR: '10.43.0.0/16',
      clusterCIDR: '10.42.0.0/16',
      disableAgent: true,
      controllers: false,
      scheduler: false,
      ...(secretsEncryption ? { secretsEncryption } : {}),
    },
    quiet,
  );
  try {
    return await fn(
      createClientset(createInProcessTransport(server.api, { name: 'admin', groups: ['system:masters'] })),
    );
  } finally {
    await server.stop();
  }
}

/** The latest stored value of a key, read from the database file itself. */
function stored(key: string): string {
  const db = new DatabaseSync(join(dataDir, 'server', 'db', 'state.db'), { readOnly: true });
  try {
    const row = db.prepare('SELECT value FROM log WHERE key = ? ORDER BY revision DESC LIMIT 1').get(key) as
      | { value: string }
      | undefined;
    return row?.value ?? '';
  } finally {
    db.close();
  }
}

const cli = async (...args: string[]) => {
  const lines: string[] = [];
  const log = console.log;
  console.log = (l: string) => lines.push(l);
  try {
    return { code: await runSecretsEncrypt([...args, '--data-dir', dataDir]), out: lines.join('\n') };
  } finally {
    console.log = log;
  }
};

const KEY = '/registry/secrets/default/db';

describe('secrets encryption at rest', () => {
  it('encrypts a Secret written before and after it is turned on, reads back plain, and rotates keys', async () => {
    await withServer(false, (c) =>
      c.secrets.create('default', { metadata: { name: 'db' }, stringData: { password: 'hunter2' } }),
    );
    assert.match(stored(KEY), /hunter2|aHVudGVyMg/, 'plain (base64 data) before encryption');

    // Turned on: the existing Secret is rewritten at start; new ones are written encrypted.
    await withServer(true, async (c) => {
      await c.secrets.create('default', { metadata: { name: 'api' }, stringData: { token: 's3cret' } });
      const read = await c.secrets.get('default', 'db');
      assert.equal(Buffer.from(read.data!.password!, 'base64').toString(), 'hunter2');
      const cm = await c.configMaps.create('default', {
        metadata: { name: 'plain' },
        data: { a: 'visible' },
      });
      assert.ok(cm.metadata.uid);
    });
    const first = stored(KEY);
    assert.match(first, /^k8s:enc:aescbc:v1:aescbckey-\d+:/);
    assert.doesNotMatch(first, /hunter2|aHVudGVyMg/);
    assert.doesNotMatch(stored('/registry/secrets/default/api'), /s3cret|czNjcmV0/);
    assert.match(stored('/registry/configmaps/default/plain'), /visible/, 'only Secrets are encrypted');
    const status = await cli('status');
    assert.match(status.out, /Encryption Status: Enabled/);
    assert.match(status.out, /Last start .*: 1 Secrets, 1 re-encrypted/);

    // Rotation: a new key first, a restart re-encrypts with it, prune drops the old one.
    assert.equal((await cli('prune')).code, 0, 'nothing to prune yet: one key');
    assert.equal((await cli('rotate')).code, 0);
    const oldKey = /aescbc:v1:([^:]+):/.exec(first)![1]!;
    assert.equal((await cli('prune')).code, 1, 'refused before a restart re-encrypted everything');
    await withServer(true, async (c) => {
      const read = await c.secrets.get('default', 'db');
      assert.equal(Buffer.from(read.data!.password!, 'base64').toString(), 'hunter2');
    });
    assert.match((await cli('status')).out, /: 2 Secrets, 2 re-encrypted/);
    const rotated = /aescbc:v1:([^:]+):/.exec(stored(KEY))![1]!;
    assert.notEqual(rotated, oldKey);
    assert.equal((await cli('prune')).code, 0);
    assert.match((await cli('status')).out, new RegExp(`Keys: ${rotated}$`, 'm'));
    await withServer(true, async (c) => {
      assert.equal((await c.secrets.list('default')).items.length, 2);
    });
  });
});
