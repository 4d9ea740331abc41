// ServiceAccount bearer tokens (upstream's serviceaccount.JWTTokenAuthenticator
// with its validators): the signature and claims (serviceaccount-token.ts),
// then, against the cluster, that what the token names still exists with
// the same uid. A token for a deleted pod, secret or ServiceAccount stops
// working at once, whatever its expiry says.

import type { KubeObject } from '../../api/meta.ts';
import type { TokenAuthenticator } from './authenticator.ts';
import { InvalidTokenError, TokenVerifier, tokenUser } from './serviceaccount-token.ts';
import type { UserInfo } from './user.ts';

/** Reads one object of the cluster; undefined when it does not exist. */
export type ObjectLookup = (
  resource: 'serviceaccounts' | 'pods' | 'secrets' | 'nodes',
  namespace: string,
  name: string,
) => Promise<KubeObject | undefined>;

export class ServiceAccountAuthenticator implements TokenAuthenticator {
  readonly #verifier: TokenVerifier;
  readonly #issuer: string;
  readonly #lookup: ObjectLookup;
  readonly #now: () => Date;

  constructor(
    verifier: TokenVerifier,
    issuer: string,
    lookup: ObjectLookup,
    now: () => Date = () => new Date(),
  ) {
    this.#verifier = verifier;
    this.#issuer = issuer;
    this.#lookup = lookup;
    this.#now = now;
  }

  async authenticate(token: string): Promise<UserInfo | undefined> {
    // Not one of ours (another issuer, or no JWT at all): the next authenticator may know it.
    if (!TokenVerifier.isServiceAccountToken(token, this.#issuer)) return undefined;
    const now = this.#now();
    const subject = await this.#verifier.verify(token, now);
    const ns = subject.namespace;
    const sa = await this.#lookup('serviceaccounts', ns, subject.serviceAccount.name);
    if (!sa || (subject.serviceAccount.uid && sa.metadata.uid !== subject.serviceAccount.uid))
      throw new InvalidTokenError(
        `service account ${ns}/${subject.serviceAccount.name} has been deleted or recreated`,
      );
    if (subject.pod) {
      const pod = await this.#lookup('pods', ns, subject.pod.name);
      if (!pod || pod.metadata.uid !== subject.pod.uid || deleted(pod, now))
        throw new InvalidTokenError(`pod ${ns}/${subject.pod.name} has been deleted`);
    }
    if (subject.secret) {
      const secret = await this.#lookup('secrets', ns, subject.secret.name);
      const legacy = subject.audiences.length === 0 && subject.expires === undefined;
      const stale =
        !secret ||
        secret.metadata.deletionTimestamp ||
        (legacy
          ? tokenOf(secret) !== token
          : subject.secret.uid !== '' && secret.metadata.uid !== subject.secret.uid);
      if (stale) throw new InvalidTokenError(`secret ${ns}/${subject.secret.name} has been deleted`);
    }
    return tokenUser(subject);
  }
}

const deleted = (obj: KubeObject, now: Date) => {
  const at = obj.metadata.deletionTimestamp;
  return at !== undefined && Date.parse(at) < now.getTime();
};

const tokenOf = (secret: KubeObject) => {
  const data = (secret as { data?: Record<string, string> }).data?.token;
  return data === undefined ? undefined : Buffer.from(data, 'base64').toString('utf8');
};
