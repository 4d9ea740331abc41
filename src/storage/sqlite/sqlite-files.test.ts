// The database holds every Secret: its files are the owner's alone.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { createSqliteStore } from './sqlite.ts';

const dir = mkdtempSync(join(tmpdir(), 'skiff-sqlite-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));

it('creates state.db, its WAL and its directory owner-only (0600, 0700)', async () => {
  const path = join(dir, 'db', 'state.db');
  const store = await createSqliteStore({ path });
  await store.create('/registry/secrets/default/s', '{}');
  assert.equal(statSync(join(dir, 'db')).mode & 0o777, 0o700);
  for (const f of [path, `${path}-wal`, `${path}-shm`])
    if (existsSync(f)) assert.equal(statSync(f).mode & 0o777, 0o600, f);
  assert.ok(existsSync(`${path}-wal`), 'WAL mode');
  await store.close();
});
