// The cluster's bootstrap data, kept in the datastore sealed with the join
// token, as k3s's (pkg/bootstrap, pkg/cluster/storage.go): the files every
// server of one cluster must share, which are
//
//   server/tls/ca.crt, ca.key    the cluster CA (serving, client and kubelet certificates)
//   server/tls/service.key       the ServiceAccount token signing key
//   server/token                 the join token's secret
//   server/cred/encryption-config.json  the Secrets encryption keys, when on
//
// The first server of a cluster makes them and stores them under
// /bootstrap/<hash of the token's secret>; a server that starts with the
// same token (`--token`) and an empty data dir finds them there, unseals them
// and writes them into its data dir before it makes anything, so it comes up
// with the same CA and keys. Each server still makes its own leaf
// certificates from that CA.
//
// Sealing: AES-256-GCM with a key derived from the secret by PBKDF2-SHA256
// (k3s: PBKDF2-SHA1, 4096 rounds, AES-GCM). Without the token the datastore
// holds nothing usable, so an etcd backup does not leak the CA's key. A wrong
// token fails the GCM tag check, and the server says so.

import { createCipheriv, createDecipheriv, createHash, pbkdf2Sync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { StorageError, type Store } from '../storage/store.ts';

/** The files shared by every server, relative to the data dir. */
export const BOOTSTRAP_FILES = [
  'server/tls/ca.crt',
  'server/tls/ca.key',
  'server/tls/service.key',
  'server/token',
  'server/cred/encryption-config.json',
] as const;

const PBKDF2_ROUNDS = 100_000;

/** The store key for the data sealed with this secret (k3s: /bootstrap/<keyHash>). */
export const bootstrapKey = (secret: string): string =>
  `/bootstrap/${createHash('sha256').update(secret).digest('hex').slice(0, 12)}`;

export class BootstrapError extends Error {
  override name = 'BootstrapError';
}

export function seal(files: BootstrapFiles, secret: string): string {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const key = pbkdf2Sync(secret, salt, PBKDF2_ROUNDS, 32, 'sha256');
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const data = Buffer.concat([cipher.update(JSON.stringify(files), 'utf8'), cipher.final()]);
  return JSON.stringify({
    version: 1,
    salt: salt.toString('base64'),
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    data: data.toString('base64'),
  });
}

export function unseal(sealed: string, secret: string): BootstrapFiles {
  let box: { salt: string; iv: string; tag: string; data: string };
  try {
    box = JSON.parse(sealed);
  } catch {
    throw new BootstrapError('the bootstrap data in the datastore is not readable (not JSON)');
  }
  try {
    const key = pbkdf2Sync(secret, Buffer.from(box.salt, 'base64'), PBKDF2_ROUNDS, 32, 'sha256');
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(box.iv, 'base64'));
    decipher.setAuthTag(Buffer.from(box.tag, 'base64'));
    const plain = Buffer.concat([decipher.update(Buffer.from(box.data, 'base64')), decipher.final()]);
    return JSON.parse(plain.toString('utf8')) as BootstrapFiles;
  } catch {
    throw new BootstrapError(
      'the bootstrap data in the datastore cannot be unsealed with this token: start this server with the ' +
        "cluster's token (--token, from <first-server-data-dir>/server/token or node-token)",
    );
  }
}

/** The secret a --token names: a full K10 token's secret part, or the string itself (k3s accepts both). */
export function tokenSecret(token: string): string {
  const m = /^K10[0-9a-fA-F]{64}::[^:]+:(.+)$/.exec(token.trim());
  return m ? m[1]! : token.trim();
}

/** A file's content and when it was last written: the newer copy wins, as k3s's reconcile. */
interface BootstrapFile {
  content: string;
  mtimeMs: number;
}
type BootstrapFiles = Record<string, BootstrapFile>;

// The CA is the cluster's identity: the datastore's always wins over a data
// dir's (a machine that was once another cluster's server). The other files
// change on purpose (a rotated encryption key, written by `skiff
// secrets-encrypt` on one server): there the newer copy wins, by mtime.
const CA_FILES = new Set(['server/tls/ca.crt', 'server/tls/ca.key']);

const readLocal = (dataDir: string): BootstrapFiles => {
  const files: BootstrapFiles = {};
  for (const f of BOOTSTRAP_FILES) {
    const path = join(dataDir, f);
    if (existsSync(path)) files[f] = { content: readFileSync(path, 'utf8'), mtimeMs: statSync(path).mtimeMs };
  }
  return files;
};

/** Writes the stored files that are missing here, or newer, or the CA (all of them when forced); returns which changed. */
const writeLocal = (dataDir: string, files: BootstrapFiles, force = false): string[] => {
  const local = readLocal(dataDir);
  const changed: string[] = [];
  for (const f of BOOTSTRAP_FILES) {
    const stored = files[f];
    const mine = local[f];
    if (!stored || mine?.content === stored.content) continue;
    if (mine && !force && !CA_FILES.has(f) && mine.mtimeMs >= stored.mtimeMs) continue;
    const path = join(dataDir, f);
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, stored.content, { mode: 0o600 });
    utimesSync(path, new Date(), new Date(stored.mtimeMs));
    changed.push(f);
  }
  return changed;
};

/**
 * Before the server makes its PKI: the secret to use, and the cluster's
 * files written into the data dir if the datastore has them. Returns the
 * files that changed (a data dir that had another cluster's CA).
 */
export async function restoreBootstrapData(
  store: Store,
  dataDir: string,
  token: string | undefined,
): Promise<{ secret: string; restored: boolean; changed: string[] }> {
  const secretFile = join(dataDir, 'server', 'token');
  let secret = token ? tokenSecret(token) : '';
  if (!secret && existsSync(secretFile)) secret = readFileSync(secretFile, 'utf8').trim();
  if (!secret) {
    secret = randomBytes(24).toString('hex');
  }
  mkdirSync(dirname(secretFile), { recursive: true, mode: 0o700 });
  if (!existsSync(secretFile) || readFileSync(secretFile, 'utf8').trim() !== secret)
    writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  const stored = await store.get(bootstrapKey(secret));
  if (!stored) return { secret, restored: false, changed: [] };
  const files = unseal(stored.value, secret);
  return { secret, restored: true, changed: writeLocal(dataDir, files) };
}

/**
 * After the server has made (or found) its files: stores them sealed, or
 * updates the stored copy when this server changed one (a new encryption
 * config). If another server stored its own first, that one wins: its files
 * are written here and `adopted` is true, so the caller starts over with them.
 */
export async function saveBootstrapData(
  store: Store,
  dataDir: string,
  secret: string,
): Promise<{ adopted: boolean }> {
  const key = bootstrapKey(secret);
  const local = readLocal(dataDir);
  const stored = await store.get(key);
  if (!stored) {
    try {
      await store.create(key, seal(local, secret));
      return { adopted: false };
    } catch (err) {
      if (!(err instanceof StorageError && err.code === 'KeyExists')) throw err;
      const winner = await store.get(key);
      if (!winner) throw err;
      writeLocal(dataDir, unseal(winner.value, secret), true);
      return { adopted: true };
    }
  }
  const current = unseal(stored.value, secret);
  if (current['server/tls/ca.crt']?.content !== local['server/tls/ca.crt']?.content) {
    // Another server stored its CA between our restore and now: all of its files win.
    writeLocal(dataDir, current, true);
    return { adopted: true };
  }
  // This server's newer files (a key rotated here) go to the others.
  const merged: BootstrapFiles = { ...current };
  let newer = false;
  for (const [f, file] of Object.entries(local)) {
    const theirs = current[f];
    if (theirs?.content === file.content) continue;
    if (!theirs || (!CA_FILES.has(f) && file.mtimeMs > theirs.mtimeMs)) {
      merged[f] = file;
      newer = true;
    }
  }
  if (newer) {
    try {
      await store.update(key, seal(merged, secret), stored.modRevision);
    } catch (err) {
      if (!(err instanceof StorageError)) throw err;
    }
  }
  return { adopted: false };
}

/** Writes sealed bootstrap data fetched from another server (server-join.ts): all of its files win. */
export function writeBootstrapFiles(dataDir: string, sealed: string, secret: string): string[] {
  return writeLocal(dataDir, unseal(sealed, secret), true);
}
