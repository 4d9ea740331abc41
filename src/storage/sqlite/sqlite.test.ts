import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storeContract } from '../store.case.ts';
import type { Store } from '../store.ts';
import { createSqliteStore } from './sqlite.ts';

const dir = mkdtempSync(join(tmpdir(), 'skiff-sqlite-'));
const path = join(dir, 'state.db');

storeContract('sqlite', {
  open: () => createSqliteStore({ path }),
  async reopen(store: Store) {
    await store.close();
    return createSqliteStore({ path });
  },
  async teardown() {
    rmSync(dir, { recursive: true, force: true });
  },
});
