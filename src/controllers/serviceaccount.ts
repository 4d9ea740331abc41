// The ServiceAccount controller: every active namespace has a `default`
// ServiceAccount, recreated if deleted (upstream's serviceaccounts-controller).

import { isApiError } from '../api/errors.ts';
import type { ServiceAccount } from '../api/types/core-v1.ts';
import type { ControllerFactory } from './context.ts';
import { queueController } from './controller.ts';

const ENSURED = ['default'];

export const serviceAccountController: ControllerFactory = (ctx) => {
  const namespaces = ctx.informers.informer('namespaces');
  const serviceAccounts = ctx.informers.informer('serviceAccounts');

  const c = queueController(ctx, {
    name: 'serviceaccount',
    workers: 1,
    async sync(namespace) {
      const ns = namespaces.indexer.get(namespace);
      if (!ns || ns.status?.phase === 'Terminating' || ns.metadata.deletionTimestamp) return;
      for (const name of ENSURED) {
        if (serviceAccounts.indexer.get(`${namespace}/${name}`)) continue;
        const sa: ServiceAccount = {
          apiVersion: 'v1',
          kind: 'ServiceAccount',
          metadata: { name, namespace },
        };
        try {
          await ctx.clients.serviceAccounts.create(namespace, sa);
        } catch (err) {
          // Already there (our cache was behind), or the namespace started
          // terminating meanwhile: nothing to do.
          if (!isApiError(err, 'AlreadyExists') && !isApiError(err, 'Forbidden')) throw err;
        }
      }
    },
  });

  namespaces.on({
    add: (ns) => c.queue.add(ns.metadata.name ?? ''),
    update: (_old, ns) => c.queue.add(ns.metadata.name ?? ''),
  });
  serviceAccounts.on({
    delete: (sa) => {
      if (ENSURED.includes(sa.metadata.name ?? '')) c.queue.add(sa.metadata.namespace ?? '');
    },
  });
  return c;
};
