// The key ServiceAccount tokens are signed with: <data-dir>/server/tls/service.key
// (k3s keeps its at the same path), an ECDSA P-256 key made on first start
// and kept across restarts, so tokens already handed out stay valid.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateServiceAccountKey } from '../apiserver/authn/serviceaccount-token.ts';

/** k3s's --service-account-issuer, also the API server's audience. */
export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

export function ensureServiceAccountKey(tlsDir: string): string {
  const file = join(tlsDir, 'service.key');
  if (existsSync(file)) {
    const pem = readFileSync(file, 'utf8');
    if (pem.includes('PRIVATE KEY')) return pem;
  }
  const pem = generateServiceAccountKey();
  writeFileSync(file, pem, { mode: 0o600 });
  return pem;
}
