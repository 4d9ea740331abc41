// The kubelet's ServiceAccount token manager (upstream's
// pkg/kubelet/token): the tokens of projected serviceAccountToken volumes,
// asked of the TokenRequest API as the node, bound to the pod, and kept
// until 80% of their lifetime has passed (or 24 hours, whichever is first),
// when the next sync of the pod's volumes asks for a fresh one. The Node
// authorizer lets a node ask only for the ServiceAccounts of its own pods.

import type { Pod, ServiceAccountTokenProjection } from '../api/types/core-v1.ts';
import type { Clientset } from '../client/clientset.ts';

const MAX_TTL_MS = 24 * 3600_000;

interface Cached {
  token: string;
  issued: number;
  expires: number;
}

interface TokenRequestAnswer {
  status?: { token?: string; expirationTimestamp?: string };
}

export interface TokenManager {
  serviceAccountToken(pod: Pod, projection: ServiceAccountTokenProjection): Promise<string>;
  /** Forgets a pod's tokens (it is gone). */
  forgetPod(uid: string): void;
}

export function createTokenManager(clients: Clientset, now: () => number = Date.now): TokenManager {
  const cache = new Map<string, Cached>();
  const keyOf = (pod: Pod, p: ServiceAccountTokenProjection) =>
    `${pod.metadata.uid}/${pod.spec?.serviceAccountName ?? 'default'}/${p.audience ?? ''}/${p.expirationSeconds ?? 3600}`;
  const fresh = (c: Cached) => {
    const t = now();
    return t < c.expires && t - c.issued < Math.min(0.8 * (c.expires - c.issued), MAX_TTL_MS);
  };
  return {
    async serviceAccountToken(pod, projection) {
      const key = keyOf(pod, projection);
      const hit = cache.get(key);
      if (hit && fresh(hit)) return hit.token;
      const issued = now();
      const answer = await clients.serviceAccounts.createSubresource<TokenRequestAnswer>(
        pod.metadata.namespace,
        pod.spec?.serviceAccountName ?? 'default',
        'token',
        {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: {
            audiences: projection.audience ? [projection.audience] : [],
            expirationSeconds: projection.expirationSeconds ?? 3600,
            boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: pod.metadata.name, uid: pod.metadata.uid },
          },
        },
      );
      const token = answer.status?.token;
      if (!token) throw new Error('the TokenRequest answer has no token');
      const expires = Date.parse(answer.status?.expirationTimestamp ?? '') || issued + 3600_000;
      cache.set(key, { token, issued, expires });
      return token;
    },
    forgetPod(uid) {
      for (const key of cache.keys()) if (key.startsWith(`${uid}/`)) cache.delete(key);
    },
  };
}
