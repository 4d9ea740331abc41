// Writes a volume's files (configMap, secret, downwardAPI, projected) so a
// container never sees a half-updated set, as upstream's AtomicWriter
// (pkg/volume/util/atomic_writer.go). The volume directory holds:
//
//   ..2025_01_01_00_00_00.a1b2c3/   the files of one version (timestamped)
//   ..data -> ..2025_01_01_00_00_00.a1b2c3
//   key -> ..data/key                the names the user asked for
//
// An update writes a new timestamped directory, points a new symlink at it
// and renames that over ..data (rename is atomic), then adds and removes the
// user-visible links and deletes the old version. A payload equal to what is
// there already writes nothing.

import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  stat,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative } from 'node:path';

export interface FileProjection {
  data: Buffer;
  /** Permission bits, e.g. 0o644. */
  mode: number;
}

const DATA_DIR = '..data';
const DATA_DIR_TMP = '..data_tmp';

/** upstream validatePath: relative, no '..' element, not starting with '..'. */
export function validatePayloadPath(path: string): void {
  if (path === '') throw new Error('invalid path: must not be empty');
  if (isAbsolute(path)) throw new Error(`invalid path: must be relative path: ${path}`);
  const parts = path.split('/');
  if (parts.includes('..')) throw new Error(`invalid path: must not contain '..': ${path}`);
  if (path.startsWith('..')) throw new Error(`invalid path: must not start with '..': ${path}`);
}

/** Every file under dir, by path relative to it. */
async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else out.push(rel);
  }
  return out;
}

async function sameAsWritten(tsDir: string, payload: Map<string, FileProjection>): Promise<boolean> {
  const existing = await listFiles(tsDir).catch(() => undefined);
  if (!existing || existing.length !== payload.size) return false;
  for (const path of existing) {
    const want = payload.get(path);
    if (!want) return false;
    const [have, info] = await Promise.all([readFile(join(tsDir, path)), stat(join(tsDir, path))]);
    if ((info.mode & 0o7777) !== want.mode || !have.equals(want.data)) return false;
  }
  return true;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
/** Go's "..2006_01_02_15_04_05." in UTC. */
function tsPrefix(now: Date): string {
  return `..${now.getUTCFullYear()}_${pad(now.getUTCMonth() + 1)}_${pad(now.getUTCDate())}_${pad(now.getUTCHours())}_${pad(now.getUTCMinutes())}_${pad(now.getUTCSeconds())}.`;
}

/** Writes the payload into targetDir. Returns whether anything changed. */
export async function writeAtomically(
  targetDir: string,
  payload: Map<string, FileProjection>,
  now: Date = new Date(),
): Promise<boolean> {
  for (const path of payload.keys()) validatePayloadPath(path);
  await mkdir(targetDir, { recursive: true });
  const oldTsName = await readlink(join(targetDir, DATA_DIR)).catch(() => undefined);
  const oldTsDir = oldTsName ? join(targetDir, oldTsName) : undefined;
  if (oldTsDir && (await sameAsWritten(oldTsDir, payload))) return false;

  const oldTopLevel = new Set(oldTsDir ? (await listFiles(oldTsDir).catch(() => [])).map(topLevel) : []);
  const newTopLevel = new Set([...payload.keys()].map(topLevel));

  const tsDir = await mkdtemp(join(targetDir, tsPrefix(now)));
  await chmod(tsDir, 0o755);
  for (const [path, file] of payload) {
    const full = join(tsDir, path);
    await mkdir(dirname(full), { recursive: true, mode: 0o755 });
    await writeFile(full, file.data, { mode: file.mode });
    await chmod(full, file.mode); // the umask must not change the mode asked for
  }

  const tmpLink = join(targetDir, DATA_DIR_TMP);
  await rm(tmpLink, { force: true });
  await symlink(basename(tsDir), tmpLink);
  await rename(tmpLink, join(targetDir, DATA_DIR));

  for (const name of newTopLevel) {
    const link = join(targetDir, name);
    const exists = await lstat(link).then(
      () => true,
      () => false,
    );
    if (!exists) await symlink(join(DATA_DIR, name), link);
  }
  for (const name of oldTopLevel) {
    if (!newTopLevel.has(name)) await unlink(join(targetDir, name)).catch(() => undefined);
  }
  if (oldTsDir && relative(targetDir, oldTsDir) !== basename(tsDir)) {
    await rm(oldTsDir, { recursive: true, force: true });
  }
  return true;
}

const topLevel = (path: string) => path.split('/')[0] ?? path;
