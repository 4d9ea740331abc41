import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ensureCA } from '../pki/pki.ts';
import { createMemoryStore } from '../storage/memory/memory.ts';
import {
  BootstrapError,
  bootstrapKey,
  restoreBootstrapData,
  saveBootstrapData,
  seal,
  tokenSecret,
  unseal,
} from './bootstrap-data.ts';
import { ensureServiceAccountKey } from './service-account-key.ts';

const dirs: string[] = [];
const dataDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'skiff-bootstrap-'));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** What startServer does with a data dir: restore, make what is missing, save. */
async function startOn(store: ReturnType<typeof createMemoryStore>, dir: string, token?: string) {
  const boot = await restoreBootstrapData(store, dir, token);
  ensureCA(join(dir, 'server', 'tls'));
  ensureServiceAccountKey(join(dir, 'server', 'tls'));
  const saved = await saveBootstrapData(store, dir, boot.secret);
  return { ...boot, ...saved };
}

const read = (dir: string, f: string) => readFileSync(join(dir, f), 'utf8');

describe('bootstrap data sealed with the token (as k3s)', () => {
  it('seals and unseals; a wrong secret is refused with the reason', () => {
    const files = { 'server/token': { content: 'abc', mtimeMs: 1 } };
    const sealed = seal(files, 's3cret');
    assert.ok(!sealed.includes('abc'));
    assert.deepEqual(unseal(sealed, 's3cret'), files);
    assert.throws(
      () => unseal(sealed, 'other'),
      (err: Error) => {
        assert.ok(err instanceof BootstrapError);
        assert.match(err.message, /cannot be unsealed with this token/);
        return true;
      },
    );
  });

  it("a full K10 token's secret part is the passphrase, as is a bare secret", () => {
    assert.equal(tokenSecret(`K10${'a'.repeat(64)}::node:xyz`), 'xyz');
    assert.equal(tokenSecret(' plain '), 'plain');
  });

  it('a second server with the same token gets the first one’s CA, ServiceAccount key and secret', async () => {
    const store = createMemoryStore();
    const first = dataDir();
    const a = await startOn(store, first);
    assert.equal(a.restored, false);
    assert.ok(await store.get(bootstrapKey(a.secret)));
    const second = dataDir();
    const b = await startOn(store, second, a.secret);
    assert.equal(b.restored, true);
    for (const f of ['server/tls/ca.crt', 'server/tls/ca.key', 'server/tls/service.key', 'server/token'])
      assert.equal(read(second, f), read(first, f), f);
    // Another token finds nothing and makes its own cluster's.
    const third = dataDir();
    const c = await startOn(store, third, 'another-token');
    assert.equal(c.restored, false);
    assert.notEqual(read(third, 'server/tls/ca.crt'), read(first, 'server/tls/ca.crt'));
    await store.close();
  });

  it('of two servers that made their CA at once, the one that stored it first wins', async () => {
    const store = createMemoryStore();
    const [x, y] = [dataDir(), dataDir()];
    const bx = await restoreBootstrapData(store, x, 'shared');
    const by = await restoreBootstrapData(store, y, 'shared');
    for (const d of [x, y]) {
      ensureCA(join(d, 'server', 'tls'));
      ensureServiceAccountKey(join(d, 'server', 'tls'));
    }
    assert.notEqual(read(x, 'server/tls/ca.crt'), read(y, 'server/tls/ca.crt'));
    assert.deepEqual(await saveBootstrapData(store, x, bx.secret), { adopted: false });
    assert.deepEqual(await saveBootstrapData(store, y, by.secret), { adopted: true });
    assert.equal(read(y, 'server/tls/ca.crt'), read(x, 'server/tls/ca.crt'));
    assert.equal(read(y, 'server/tls/ca.key'), read(x, 'server/tls/ca.key'));
    assert.equal(read(y, 'server/tls/service.key'), read(x, 'server/tls/service.key'));
    await store.close();
  });

  it('a file changed on one server (a rotated key) reaches the others; an older copy does not win', async () => {
    const store = createMemoryStore();
    const [x, y] = [dataDir(), dataDir()];
    const a = await startOn(store, x, 'rotate');
    await startOn(store, y, 'rotate');
    const config = 'server/cred/encryption-config.json';
    mkdirSync(join(x, 'server', 'cred'), { recursive: true });
    writeFileSync(join(x, config), '{"rotated":true}');
    // x restarts: its newer file is kept and stored.
    await startOn(store, x, 'rotate');
    assert.equal(read(x, config), '{"rotated":true}');
    // y restarts: it gets the new file.
    const b = await startOn(store, y, 'rotate');
    assert.deepEqual(b.changed, [config]);
    assert.equal(read(y, config), '{"rotated":true}');
    // An older copy on x (a data dir restored from a backup) is replaced, not stored.
    writeFileSync(join(x, config), '{"stale":true}');
    utimesSync(join(x, config), new Date(0), new Date(0));
    await startOn(store, x, 'rotate');
    assert.equal(read(x, config), '{"rotated":true}');
    assert.equal(a.secret, 'rotate');
  });
});
