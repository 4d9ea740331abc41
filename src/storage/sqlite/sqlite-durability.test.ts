import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { durabilityContract, spawnDurabilityWriter } from '../durability.case.ts';
import { createSqliteStore } from './sqlite.ts';

const dir = mkdtempSync(join(tmpdir(), 'skiff-sqlite-durability-'));
const path = join(dir, 'state.db');
after(() => rmSync(dir, { recursive: true, force: true }));

durabilityContract('sqlite', {
  spawnWriter: () => spawnDurabilityWriter('sqlite', { path }),
  open: () => createSqliteStore({ path }),
});
