// Bootstrap tokens (upstream's plugin/pkg/auth/authenticator/token/bootstrap):
// `<id>.<secret>` bearer tokens backed by a Secret bootstrap-token-<id> of
// type bootstrap.kubernetes.io/token in kube-system, for joining nodes
// (kubeadm join). They authenticate as system:bootstrap:<id> in the group
// system:bootstrappers plus the secret's auth-extra-groups.

import { timingSafeEqual } from 'node:crypto';
import type { Secret } from '../../api/types/core-v1.ts';
import type { UserInfo } from './user.ts';

const TOKEN = /^([a-z0-9]{6})\.([a-z0-9]{16})$/;
export const BOOTSTRAP_TOKEN_SECRET_TYPE = 'bootstrap.kubernetes.io/token';
export const BOOTSTRAPPERS_GROUP = 'system:bootstrappers';
const EXTRA_GROUP = /^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$/;

const field = (s: Secret, key: string) => {
  const data = s.data?.[key];
  if (data !== undefined) return Buffer.from(data, 'base64').toString();
  return s.stringData?.[key];
};

/**
 * The user for a bootstrap token, or undefined when it is not one or does not
 * check out (missing, wrong secret, expired, not for authentication, being
 * deleted). `secret` looks up kube-system Secrets by name.
 */
export function authenticateBootstrapToken(
  token: string,
  secret: (name: string) => Secret | undefined,
  now: Date = new Date(),
): UserInfo | undefined {
  const m = TOKEN.exec(token);
  if (!m) return undefined;
  const [, id, value] = m as unknown as [string, string, string];
  const s = secret(`bootstrap-token-${id}`);
  if (!s || s.type !== BOOTSTRAP_TOKEN_SECRET_TYPE || s.metadata.deletionTimestamp) return undefined;
  if (field(s, 'token-id') !== id) return undefined;
  const want = Buffer.from(field(s, 'token-secret') ?? '');
  const got = Buffer.from(value);
  if (want.length !== got.length || !timingSafeEqual(want, got)) return undefined;
  const expiration = field(s, 'expiration');
  if (expiration !== undefined) {
    const at = Date.parse(expiration);
    if (Number.isNaN(at) || at <= now.getTime()) return undefined;
  }
  if (field(s, 'usage-bootstrap-authentication') !== 'true') return undefined;
  const extra = (field(s, 'auth-extra-groups') ?? '').split(',').filter((g) => g !== '');
  if (extra.some((g) => !EXTRA_GROUP.test(g))) return undefined;
  return { name: `system:bootstrap:${id}`, groups: [BOOTSTRAPPERS_GROUP, ...extra, 'system:authenticated'] };
}
