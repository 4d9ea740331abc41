// ServiceAccount tokens: signed JWTs, as upstream's pkg/serviceaccount.
//
// Bound tokens (TokenRequest, the projected volume) carry an audience, an
// expiry and what they are bound to (a pod or a secret, and the node), under
// the "kubernetes.io" claim. Legacy tokens (kubernetes.io/service-account-token
// Secrets) carry the flat "kubernetes.io/serviceaccount/..." claims and no
// expiry. Both are signed with the cluster's service-account key (ES256); the
// authenticator checks the signature and the claims here, and then, against
// the store, that what the token names still exists with the same uid.
//
// jose (zero dependencies, widely used) does the JOSE/JWT work: it checks
// algorithms, encodings and registered claims carefully, which is exactly
// the part not to get subtly wrong by hand.

import { createHash, createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { type CryptoKey, decodeJwt, importPKCS8, importSPKI, jwtVerify, SignJWT } from 'jose';
import { serviceAccountUser, type UserInfo } from './user.ts';

const ALG = 'ES256';
export const LEGACY_ISSUER = 'kubernetes/serviceaccount';
export const SERVICE_ACCOUNTS_GROUP = 'system:serviceaccounts';

/** A new P-256 private key, PKCS#8 PEM (what the server keeps, created on first start). */
export function generateServiceAccountKey(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' })
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString();
}

/** The public half, SPKI PEM. */
export const publicKeyOf = (privateKeyPem: string): string =>
  createPublicKey(privateKeyPem).export({ type: 'spki', format: 'pem' }).toString();

/** upstream's keyIDFromPublicKey: base64url(sha256(DER of the public key)). */
export function keyId(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64url');
}

export interface ObjectRef {
  name: string;
  uid: string;
}

/** What a token says about whom it is for (the claims, decoded). */
export interface TokenSubject {
  namespace: string;
  serviceAccount: ObjectRef;
  pod?: ObjectRef;
  secret?: ObjectRef;
  node?: ObjectRef;
  /** The token's id (jti), for audit and credential-id. */
  id?: string;
  audiences: string[];
  /** Seconds since the epoch; undefined for legacy tokens. */
  expires?: number;
}

export interface BoundTokenRequest {
  namespace: string;
  serviceAccount: ObjectRef;
  pod?: ObjectRef;
  secret?: ObjectRef;
  node?: ObjectRef;
  audiences: string[];
  expirationSeconds: number;
  now?: Date;
}

interface KubernetesClaim {
  namespace?: string;
  serviceaccount?: Partial<ObjectRef>;
  pod?: Partial<ObjectRef>;
  secret?: Partial<ObjectRef>;
  node?: Partial<ObjectRef>;
}

export class InvalidTokenError extends Error {
  override name = 'InvalidTokenError';
}

const ref = (r: Partial<ObjectRef> | undefined): ObjectRef | undefined =>
  r?.name ? { name: r.name, uid: r.uid ?? '' } : undefined;

export class TokenSigner {
  readonly #key: Promise<CryptoKey>;
  readonly #kid: string;
  readonly issuer: string;

  constructor(privateKeyPem: string, issuer: string) {
    this.#key = importPKCS8(privateKeyPem, ALG);
    this.#kid = keyId(publicKeyOf(privateKeyPem));
    this.issuer = issuer;
  }

  /** A bound token, as TokenRequest and the kubelet's projected volume get. */
  async bound(req: BoundTokenRequest): Promise<string> {
    const now = Math.floor((req.now ?? new Date()).getTime() / 1000);
    const claim: KubernetesClaim = {
      namespace: req.namespace,
      serviceaccount: req.serviceAccount,
      ...(req.pod ? { pod: req.pod } : {}),
      ...(req.secret ? { secret: req.secret } : {}),
      ...(req.node ? { node: req.node } : {}),
    };
    return new SignJWT({ 'kubernetes.io': claim })
      .setProtectedHeader({ alg: ALG, kid: this.#kid })
      .setIssuer(this.issuer)
      .setSubject(serviceAccountUser(req.namespace, req.serviceAccount.name))
      .setAudience(req.audiences)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + req.expirationSeconds)
      .setJti(randomUUID())
      .sign(await this.#key);
  }

  /** A legacy token for a kubernetes.io/service-account-token Secret: no audience, no expiry. */
  async legacy(namespace: string, serviceAccount: ObjectRef, secretName: string): Promise<string> {
    return new SignJWT({
      'kubernetes.io/serviceaccount/namespace': namespace,
      'kubernetes.io/serviceaccount/secret.name': secretName,
      'kubernetes.io/serviceaccount/service-account.name': serviceAccount.name,
      'kubernetes.io/serviceaccount/service-account.uid': serviceAccount.uid,
    })
      .setProtectedHeader({ alg: ALG, kid: this.#kid })
      .setIssuer(LEGACY_ISSUER)
      .setSubject(serviceAccountUser(namespace, serviceAccount.name))
      .sign(await this.#key);
  }
}

export class TokenVerifier {
  readonly #keys: Promise<CryptoKey[]>;
  readonly #issuer: string;
  readonly #audiences: string[];

  /** `publicKeysPem`: every key whose tokens are accepted (more than one during a rotation). */
  constructor(publicKeysPem: string[], issuer: string, audiences: string[]) {
    this.#keys = Promise.all(publicKeysPem.map((k) => importSPKI(k, ALG)));
    this.#issuer = issuer;
    this.#audiences = audiences;
  }

  /** Whether this looks like one of ours (a JWT with our issuer), so other bearer authenticators can be asked otherwise. */
  static isServiceAccountToken(token: string, issuer: string): boolean {
    try {
      const iss = decodeJwt(token).iss;
      return iss === issuer || iss === LEGACY_ISSUER;
    } catch {
      return false;
    }
  }

  /** The token's subject, or InvalidTokenError saying why not (signature, expiry, audience, claims). */
  async verify(token: string, now: Date = new Date()): Promise<TokenSubject> {
    let iss: string | undefined;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      throw new InvalidTokenError('not a JWT');
    }
    const legacy = iss === LEGACY_ISSUER;
    let payload: Record<string, unknown> | undefined;
    let lastError: unknown;
    for (const key of await this.#keys) {
      try {
        ({ payload } = await jwtVerify(token, key, {
          algorithms: [ALG],
          issuer: legacy ? LEGACY_ISSUER : this.#issuer,
          ...(legacy ? {} : { audience: this.#audiences, requiredClaims: ['exp', 'sub'] }),
          currentDate: now,
        }));
        break;
      } catch (err) {
        lastError = err;
      }
    }
    if (!payload) throw new InvalidTokenError((lastError as Error)?.message ?? 'invalid signature');
    const subject = legacy ? legacySubject(payload) : boundSubject(payload);
    if (payload.sub !== serviceAccountUser(subject.namespace, subject.serviceAccount.name))
      throw new InvalidTokenError('sub does not name the service account of the claims');
    return subject;
  }
}

function boundSubject(p: Record<string, unknown>): TokenSubject {
  const k = (p['kubernetes.io'] ?? {}) as KubernetesClaim;
  const serviceAccount = ref(k.serviceaccount);
  if (!k.namespace || !serviceAccount)
    throw new InvalidTokenError('token has no kubernetes.io service account claims');
  const aud = p.aud;
  return {
    namespace: k.namespace,
    serviceAccount,
    ...(ref(k.pod) ? { pod: ref(k.pod) } : {}),
    ...(ref(k.secret) ? { secret: ref(k.secret) } : {}),
    ...(ref(k.node) ? { node: ref(k.node) } : {}),
    ...(typeof p.jti === 'string' ? { id: p.jti } : {}),
    audiences: Array.isArray(aud) ? (aud as string[]) : typeof aud === 'string' ? [aud] : [],
    ...(typeof p.exp === 'number' ? { expires: p.exp } : {}),
  };
}

function legacySubject(p: Record<string, unknown>): TokenSubject {
  const s = (k: string) => {
    const v = p[`kubernetes.io/serviceaccount/${k}`];
    return typeof v === 'string' ? v : '';
  };
  const namespace = s('namespace');
  const name = s('service-account.name');
  const secret = s('secret.name');
  if (!namespace || !name || !secret)
    throw new InvalidTokenError('token has no legacy service account claims');
  return {
    namespace,
    serviceAccount: { name, uid: s('service-account.uid') },
    secret: { name: secret, uid: '' },
    audiences: [],
  };
}

/** The user a verified token authenticates as (upstream's ServiceAccountInfo.UserInfo). */
export function tokenUser(t: TokenSubject): UserInfo & { uid: string; extra: Record<string, string[]> } {
  const extra: Record<string, string[]> = {};
  if (t.pod) {
    extra['authentication.kubernetes.io/pod-name'] = [t.pod.name];
    extra['authentication.kubernetes.io/pod-uid'] = [t.pod.uid];
  }
  if (t.node) {
    extra['authentication.kubernetes.io/node-name'] = [t.node.name];
    extra['authentication.kubernetes.io/node-uid'] = [t.node.uid];
  }
  if (t.id) extra['authentication.kubernetes.io/credential-id'] = [`JTI=${t.id}`];
  return {
    name: serviceAccountUser(t.namespace, t.serviceAccount.name),
    uid: t.serviceAccount.uid,
    groups: [SERVICE_ACCOUNTS_GROUP, `${SERVICE_ACCOUNTS_GROUP}:${t.namespace}`, 'system:authenticated'],
    extra,
  };
}
