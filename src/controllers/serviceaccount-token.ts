// The tokens controller (upstream's serviceaccount TokensController, the
// legacy half kept since 1.24): a Secret of type
// kubernetes.io/service-account-token that a user creates, naming a
// ServiceAccount in its kubernetes.io/service-account.name annotation, gets
// a long-lived token for it, the cluster CA and the namespace, and the
// ServiceAccount's uid in its kubernetes.io/service-account.uid annotation.
// A token Secret whose ServiceAccount is gone (or was recreated under
// another uid) is deleted, as upstream deletes it.

import { isApiError } from '../api/errors.ts';
import type { Secret, ServiceAccount } from '../api/types/core-v1.ts';
import type { ControllerFactory } from './context.ts';
import { queueController } from './controller.ts';

export const SERVICE_ACCOUNT_TOKEN_TYPE = 'kubernetes.io/service-account-token';
export const SA_NAME_ANNOTATION = 'kubernetes.io/service-account.name';
export const SA_UID_ANNOTATION = 'kubernetes.io/service-account.uid';

const b64 = (s: string) => Buffer.from(s).toString('base64');

export const serviceAccountTokenController: ControllerFactory = (ctx) => {
  const signer = ctx.options.legacyTokenSigner;
  const secrets = ctx.informers.informer('secrets');
  const serviceAccounts = ctx.informers.informer('serviceAccounts');

  /** The ServiceAccount, from the cache or (a moment-old one) the API; undefined when it does not exist. */
  const serviceAccount = async (ns: string, name: string): Promise<ServiceAccount | undefined> => {
    const cached = serviceAccounts.indexer.get(`${ns}/${name}`);
    if (cached) return cached;
    try {
      return await ctx.clients.serviceAccounts.get(ns, name);
    } catch (err) {
      if (isApiError(err, 'NotFound')) return undefined;
      throw err;
    }
  };

  const c = queueController(ctx, {
    name: 'serviceaccount-token',
    workers: 2,
    async sync(key) {
      if (!signer) return;
      const secret = secrets.indexer.get(key);
      if (!secret || secret.type !== SERVICE_ACCOUNT_TOKEN_TYPE || secret.metadata.deletionTimestamp) return;
      const ns = secret.metadata.namespace ?? '';
      const annotations = secret.metadata.annotations ?? {};
      const saName = annotations[SA_NAME_ANNOTATION] ?? '';
      const sa = saName ? await serviceAccount(ns, saName) : undefined;
      const wantUid = annotations[SA_UID_ANNOTATION];
      if (!sa || (wantUid && wantUid !== sa.metadata.uid)) {
        await ctx.clients.secrets
          .delete(ns, secret.metadata.name ?? '', {
            preconditions: { uid: secret.metadata.uid ?? '' },
          })
          .catch((err) => {
            if (!isApiError(err, 'NotFound') && !isApiError(err, 'Conflict')) throw err;
          });
        return;
      }
      const data = secret.data ?? {};
      const ca = ctx.options.rootCA ?? '';
      if (data.token && data.namespace && (data['ca.crt'] || !ca) && wantUid) return;
      const token = data.token
        ? Buffer.from(data.token, 'base64').toString('utf8')
        : await signer.legacy(ns, { name: saName, uid: sa.metadata.uid ?? '' }, secret.metadata.name ?? '');
      const updated: Secret = {
        ...secret,
        metadata: {
          ...secret.metadata,
          annotations: { ...annotations, [SA_UID_ANNOTATION]: sa.metadata.uid ?? '' },
        },
        data: { ...data, token: b64(token), namespace: b64(ns), ...(ca ? { 'ca.crt': b64(ca) } : {}) },
      };
      try {
        await ctx.clients.secrets.update(updated);
      } catch (err) {
        // Changed meanwhile: the update event brings it back.
        if (!isApiError(err, 'Conflict') && !isApiError(err, 'NotFound')) throw err;
      }
    },
  });

  const enqueue = (s: Secret) => {
    if (s.type === SERVICE_ACCOUNT_TOKEN_TYPE) c.queue.add(`${s.metadata.namespace}/${s.metadata.name}`);
  };
  secrets.on({ add: enqueue, update: (_old, s) => enqueue(s) });
  // A deleted ServiceAccount takes its token Secrets with it.
  serviceAccounts.on({
    delete: (sa) => {
      for (const s of secrets.indexer.list())
        if (
          s.type === SERVICE_ACCOUNT_TOKEN_TYPE &&
          s.metadata.namespace === sa.metadata.namespace &&
          s.metadata.annotations?.[SA_NAME_ANNOTATION] === sa.metadata.name
        )
          enqueue(s);
    },
  });
  return c;
};
