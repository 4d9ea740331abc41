// Secrets encryption at rest for `skiff server`, as k3s's
// --secrets-encryption: an EncryptionConfiguration kept at
// <data-dir>/server/cred/encryption-config.json (made with a random aescbc
// key on first start), or upstream's --encryption-provider-config FILE.
// At every start the server rewrites each Secret not written with the
// current key (encryption just turned on, or a key rotated), and records
// what it found in encryption-state.json beside the config, which
// `skiff secrets-encrypt status` reads.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  type EncryptionConfiguration,
  newEncryptionConfig,
  parseEncryptionConfig,
  transformerFor,
} from '../storage/encryption/config.ts';
import { type EncryptedStore, encryptedStore } from '../storage/encryption/encrypted-store.ts';
import type { Store } from '../storage/store.ts';

export const managedConfigPath = (dataDir: string) =>
  join(dataDir, 'server', 'cred', 'encryption-config.json');
export const statePath = (configPath: string) => join(dirname(configPath), 'encryption-state.json');

export interface EncryptionState {
  writer: string;
  secrets: number;
  rewritten: number;
  at: string;
}

export function writeConfig(path: string, config: EncryptionConfiguration): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
}

/** The config in force: the given file, else k3s's managed one (made when missing). */
export function loadEncryptionConfig(
  dataDir: string,
  providerConfig?: string,
): { path: string; config: EncryptionConfiguration } {
  const path = providerConfig ?? managedConfigPath(dataDir);
  if (!providerConfig && !existsSync(path)) writeConfig(path, newEncryptionConfig());
  return { path, config: parseEncryptionConfig(readFileSync(path, 'utf8'), path) };
}

/** Wraps the store and re-encrypts what is stale; returns the store to use. */
export async function encryptSecrets(
  store: Store,
  dataDir: string,
  providerConfig: string | undefined,
): Promise<{ store: EncryptedStore; state: EncryptionState; path: string }> {
  const { path, config } = loadEncryptionConfig(dataDir, providerConfig);
  const secrets = transformerFor(config, 'secrets');
  const wrapped = encryptedStore(store, secrets ? { secrets } : {});
  const r = await wrapped.reencrypt();
  const state: EncryptionState = {
    writer: secrets?.writer ?? 'identity',
    secrets: r.total,
    rewritten: r.rewritten,
    at: new Date().toISOString(),
  };
  writeFileSync(statePath(path), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  return { store: wrapped, state, path };
}
