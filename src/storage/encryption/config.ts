// Encryption at rest (kube-apiserver's --encryption-provider-config):
// upstream's EncryptionConfiguration (apiserver.config.k8s.io/v1) says, per
// resource, which providers encrypt what is stored. The first provider
// writes; every listed one can read. Skiff has upstream's aescbc
// (AES-256-CBC, PKCS#7, a random IV per value) and identity (plain text).
// A stored value names its provider and key, as upstream's:
//   k8s:enc:aescbc:v1:<key name>:<IV><ciphertext>
// (here base64, since the store keeps text).

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { parse as parseYaml } from 'yaml';

const PREFIX = 'k8s:enc:aescbc:v1:';

export interface AescbcKey {
  name: string;
  /** 32 bytes, base64 (upstream allows 16, 24 or 32). */
  secret: string;
}

export type Provider = { aescbc: { keys: AescbcKey[] } } | { identity: Record<string, never> };

export interface EncryptionConfiguration {
  kind: 'EncryptionConfiguration';
  apiVersion: 'apiserver.config.k8s.io/v1';
  resources: { resources: string[]; providers: Provider[] }[];
}

/** Turns stored text into plain text and back, for one resource. */
export interface Transformer {
  /** The plain value, and whether it was written by anything but the current write provider and key (stale). */
  fromStorage(stored: string): { value: string; stale: boolean };
  toStorage(plain: string): string;
  /** What writes now: "aescbc:<key>" or "identity". */
  readonly writer: string;
}

/** Parses and checks the file, as kube-apiserver refuses a bad one at start. */
export function parseEncryptionConfig(text: string, path = 'encryption config'): EncryptionConfiguration {
  const doc = parseYaml(text) as Partial<EncryptionConfiguration>;
  if (doc?.kind !== 'EncryptionConfiguration' || doc.apiVersion !== 'apiserver.config.k8s.io/v1')
    throw new Error(`${path}: not an apiserver.config.k8s.io/v1 EncryptionConfiguration`);
  for (const [i, r] of (doc.resources ?? []).entries()) {
    if (!r.providers?.length)
      throw new Error(`${path}: resources[${i}].providers: at least one provider is required`);
    for (const p of r.providers) {
      if ('aescbc' in p) {
        if (!p.aescbc.keys?.length)
          throw new Error(`${path}: resources[${i}]: aescbc needs at least one key`);
        for (const k of p.aescbc.keys) {
          const len = Buffer.from(k.secret ?? '', 'base64').length;
          if (!k.name || ![16, 24, 32].includes(len))
            throw new Error(
              `${path}: aescbc key ${JSON.stringify(k.name)}: the secret must be 16, 24 or 32 bytes, base64`,
            );
        }
      } else if (!('identity' in p))
        throw new Error(`${path}: resources[${i}]: unknown provider ${JSON.stringify(Object.keys(p))}`);
    }
  }
  return doc as EncryptionConfiguration;
}

const cipherName = (key: Buffer) => `aes-${key.length * 8}-cbc`;

/** The transformer for a resource ("secrets"), or undefined when the config leaves it alone. */
export function transformerFor(config: EncryptionConfiguration, resource: string): Transformer | undefined {
  const entry = config.resources.find((r) => r.resources.includes(resource) || r.resources.includes('*.*'));
  if (!entry) return undefined;
  const keys = new Map<string, Buffer>();
  for (const p of entry.providers)
    if ('aescbc' in p) for (const k of p.aescbc.keys) keys.set(k.name, Buffer.from(k.secret, 'base64'));
  const first = entry.providers[0]!;
  const writeKey = 'aescbc' in first ? first.aescbc.keys[0]! : undefined;
  const identityReads = entry.providers.some((p) => 'identity' in p);
  return {
    writer: writeKey ? `aescbc:${writeKey.name}` : 'identity',
    toStorage(plain) {
      if (!writeKey) return plain;
      const key = keys.get(writeKey.name)!;
      const iv = randomBytes(16);
      const c = createCipheriv(cipherName(key), key, iv);
      const sealed = Buffer.concat([iv, c.update(plain, 'utf8'), c.final()]);
      return `${PREFIX}${writeKey.name}:${sealed.toString('base64')}`;
    },
    fromStorage(stored) {
      if (!stored.startsWith(PREFIX)) {
        // Written before encryption was on.
        if (!identityReads && writeKey === undefined) return { value: stored, stale: false };
        if (!identityReads)
          throw new Error('the stored value is not encrypted and the identity provider is not configured');
        return { value: stored, stale: writeKey !== undefined };
      }
      const rest = stored.slice(PREFIX.length);
      const i = rest.indexOf(':');
      const name = rest.slice(0, i);
      const key = keys.get(name);
      if (!key)
        throw new Error(
          `the value is encrypted with key ${JSON.stringify(name)}, which the configuration does not have`,
        );
      const sealed = Buffer.from(rest.slice(i + 1), 'base64');
      const d = createDecipheriv(cipherName(key), key, sealed.subarray(0, 16));
      const value = Buffer.concat([d.update(sealed.subarray(16)), d.final()]).toString('utf8');
      return { value, stale: name !== writeKey?.name };
    },
  };
}

/** A config that encrypts Secrets with one new random aescbc key (k3s's --secrets-encryption). */
export function newEncryptionConfig(
  keyName = `aescbckey-${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}`,
): EncryptionConfiguration {
  return {
    kind: 'EncryptionConfiguration',
    apiVersion: 'apiserver.config.k8s.io/v1',
    resources: [
      {
        resources: ['secrets'],
        providers: [
          { aescbc: { keys: [{ name: keyName, secret: randomBytes(32).toString('base64') }] } },
          { identity: {} },
        ],
      },
    ],
  };
}
