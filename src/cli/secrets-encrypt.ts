// `skiff secrets-encrypt status|rotate|prune`: the managed Secrets encryption
// of `skiff server --secrets-encryption` (k3s's `k3s secrets-encrypt`).
// A rotation is two restarts, as k3s's:
//   skiff secrets-encrypt rotate   a new key first; the old ones still read
//   (restart the server)           every Secret is rewritten with the new key
//   skiff secrets-encrypt prune    the old keys go, once the last start
//                                  re-encrypted every Secret
//   (restart the server)

import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  type EncryptionState,
  managedConfigPath,
  statePath,
  writeConfig,
} from '../server/secrets-encryption.ts';
import { newEncryptionConfig, parseEncryptionConfig } from '../storage/encryption/config.ts';

export const secretsEncryptUsage = `Usage: skiff secrets-encrypt status|rotate|prune [--data-dir DIR]

Manages the key of \`skiff server --secrets-encryption\`
(<data-dir>/server/cred/encryption-config.json):
  status   whether Secrets are encrypted, the current key, the keys that can read,
           and what the server's last start found and re-encrypted
  rotate   puts a new key first; restart the server to re-encrypt every Secret
  prune    drops every key but the current one, once a start re-encrypted all
`;

const defaultDataDir = () =>
  process.getuid?.() === 0 ? '/var/lib/skiff' : `${process.env.HOME ?? '.'}/.skiff`;

export async function runSecretsEncrypt(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { 'data-dir': { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } },
    allowPositionals: true,
    strict: true,
  });
  const command = positionals[0];
  if (values.help || !command || !['status', 'rotate', 'prune'].includes(command)) {
    (values.help ? console.log : console.error)(secretsEncryptUsage);
    return values.help ? 0 : 2;
  }
  const path = managedConfigPath(values['data-dir'] ?? defaultDataDir());
  if (!existsSync(path)) {
    console.error(
      `skiff secrets-encrypt: ${path} does not exist: start the server with --secrets-encryption first`,
    );
    return 1;
  }
  const config = parseEncryptionConfig(readFileSync(path, 'utf8'), path);
  const entry = config.resources.find((r) => r.resources.includes('secrets'));
  const aescbc = entry?.providers.find((p) => 'aescbc' in p) as
    | { aescbc: { keys: { name: string; secret: string }[] } }
    | undefined;
  const keys = aescbc?.aescbc.keys ?? [];
  const state: EncryptionState | undefined = existsSync(statePath(path))
    ? JSON.parse(readFileSync(statePath(path), 'utf8'))
    : undefined;

  if (command === 'status') {
    console.log(`Encryption Status: ${keys.length ? 'Enabled' : 'Disabled'}`);
    console.log(`Current Key: ${keys[0] ? `aescbc:${keys[0].name}` : 'identity'}`);
    console.log(`Keys: ${keys.map((k) => k.name).join(', ') || 'none'}`);
    if (state)
      console.log(
        `Last start (${state.at}): ${state.secrets} Secrets, ${state.rewritten} re-encrypted, written with ${state.writer}`,
      );
    const current = state && keys[0] && state.writer === `aescbc:${keys[0].name}`;
    console.log(
      `Rotation: ${current ? 'every Secret uses the current key' : 'restart the server to re-encrypt with the current key'}`,
    );
    return 0;
  }
  if (!aescbc) {
    console.error(`skiff secrets-encrypt: ${path} has no aescbc provider for secrets`);
    return 1;
  }
  if (command === 'rotate') {
    const fresh = newEncryptionConfig();
    const key = (fresh.resources[0]!.providers[0] as { aescbc: { keys: { name: string; secret: string }[] } })
      .aescbc.keys[0]!;
    if (keys.some((k) => k.name === key.name)) key.name = `${key.name}-${keys.length}`;
    aescbc.aescbc.keys = [key, ...keys];
    writeConfig(path, config);
    console.log(
      `New key ${key.name} is first; restart the server to re-encrypt every Secret with it, then run prune.`,
    );
    return 0;
  }
  // prune
  const current = keys[0]!;
  if (!state || state.writer !== `aescbc:${current.name}`) {
    console.error(
      `skiff secrets-encrypt: the server has not yet started with key ${current.name} and re-encrypted every Secret; restart it first`,
    );
    return 1;
  }
  aescbc.aescbc.keys = [current];
  writeConfig(path, config);
  console.log(`Kept key ${current.name} only; restart the server to use the pruned configuration.`);
  return 0;
}
