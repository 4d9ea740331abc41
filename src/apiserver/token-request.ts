// The TokenRequest API (serviceaccounts/<name>/token, authentication.k8s.io/v1
// TokenRequest), as upstream's pkg/registry/core/serviceaccount/storage/token.go:
// a signed, expiring token for a ServiceAccount, optionally bound to a Pod,
// Secret or Node that must exist with the uid given. `kubectl create token`
// and the kubelet's projected token volumes ask for these. Nothing is stored.

import { badRequest, conflict, type InvalidCause, invalid } from '../api/errors.ts';
import { isObject, type KubeObject, rfc3339 } from '../api/meta.ts';
import type { ObjectRef, TokenSigner } from './authn/serviceaccount-token.ts';

/** upstream's minimum (pkg/apis/authentication/validation): ten minutes. */
const MIN_EXPIRATION_SECONDS = 600;
const MAX_EXPIRATION_SECONDS = 2 ** 32;
const DEFAULT_EXPIRATION_SECONDS = 3600;

export interface TokenIssuer {
  signer: TokenSigner;
  /** The API server's audiences: a request naming none gets these. */
  audiences: string[];
}

export interface TokenRequestDeps extends TokenIssuer {
  /** Reads an object; throws the store's 404 when it does not exist. */
  get(
    resource: 'serviceaccounts' | 'pods' | 'secrets' | 'nodes',
    namespace: string,
    name: string,
  ): Promise<KubeObject>;
  now: () => Date;
}

interface BoundObjectRef {
  kind?: string;
  apiVersion?: string;
  name?: string;
  uid?: string;
}

const BINDABLE: Record<string, 'pods' | 'secrets' | 'nodes'> = {
  Pod: 'pods',
  Secret: 'secrets',
  Node: 'nodes',
};

/** Answers a POST to serviceaccounts/<name>/token with the TokenRequest, its status filled in. */
export async function answerTokenRequest(
  deps: TokenRequestDeps,
  namespace: string,
  name: string,
  body: KubeObject,
): Promise<KubeObject> {
  const spec = (isObject(body.spec) ? body.spec : {}) as {
    audiences?: string[];
    expirationSeconds?: number;
    boundObjectRef?: BoundObjectRef;
  };
  const expirationSeconds = spec.expirationSeconds ?? DEFAULT_EXPIRATION_SECONDS;
  const causes: InvalidCause[] = [];
  const tooShort = expirationSeconds < MIN_EXPIRATION_SECONDS;
  if (tooShort || expirationSeconds > MAX_EXPIRATION_SECONDS)
    causes.push({
      type: 'FieldValueInvalid',
      field: 'spec.expirationSeconds',
      message: `Invalid value: ${expirationSeconds}: may not specify a duration ${
        tooShort ? 'less than 10 minutes' : 'larger than 2^32 seconds'
      }`,
    });
  if (causes.length > 0) throw invalid('authentication.k8s.io', 'TokenRequest', name, causes);

  const sa = await deps.get('serviceaccounts', namespace, name);
  const serviceAccount: ObjectRef = { name, uid: sa.metadata.uid ?? '' };
  const audiences = spec.audiences?.length ? spec.audiences : deps.audiences;

  let pod: ObjectRef | undefined;
  let secret: ObjectRef | undefined;
  let node: ObjectRef | undefined;
  const ref = spec.boundObjectRef;
  if (ref) {
    const resource = ref.apiVersion === 'v1' ? BINDABLE[ref.kind ?? ''] : undefined;
    if (!resource)
      throw badRequest(`cannot bind token to object of type ${ref.apiVersion ?? ''}, Kind=${ref.kind ?? ''}`);
    const target = await deps.get(resource, resource === 'nodes' ? '' : namespace, ref.name ?? '');
    const uid = target.metadata.uid ?? '';
    if (ref.uid && ref.uid !== uid)
      throw conflict(
        { group: '', resource: ref.kind ?? '' },
        ref.name ?? '',
        `the UID in the bound object reference (${ref.uid}) does not match the UID in record. The object might have been deleted and then recreated`,
      );
    const bound = { name: ref.name ?? '', uid };
    if (resource === 'pods') {
      pod = bound;
      // A pod's token also names its node (upstream's ServiceAccountTokenPodNodeInfo, on since 1.30).
      const nodeName = (target.spec as { nodeName?: string } | undefined)?.nodeName;
      if (nodeName) {
        const n = await deps.get('nodes', '', nodeName).catch(() => undefined);
        if (n) node = { name: nodeName, uid: n.metadata.uid ?? '' };
      }
    } else if (resource === 'secrets') secret = bound;
    else node = bound;
  }

  const now = deps.now();
  const token = await deps.signer.bound({
    namespace,
    serviceAccount,
    ...(pod ? { pod } : {}),
    ...(secret ? { secret } : {}),
    ...(node ? { node } : {}),
    audiences,
    expirationSeconds,
    now,
  });
  return {
    kind: 'TokenRequest',
    apiVersion: 'authentication.k8s.io/v1',
    metadata: { name, namespace, creationTimestamp: rfc3339(now) },
    spec: {
      audiences,
      expirationSeconds,
      boundObjectRef: ref ?? null,
    },
    status: {
      token,
      expirationTimestamp: rfc3339(
        new Date(Math.floor(now.getTime() / 1000) * 1000 + expirationSeconds * 1000),
      ),
    },
  };
}
