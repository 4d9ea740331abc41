// The root CA publisher (upstream's root-ca-cert-publisher): every active
// namespace has a ConfigMap kube-root-ca.crt holding the cluster CA, so a
// pod can verify the API server it reaches through the kubernetes Service
// (the ServiceAccount admission plugin projects it into every pod, beside
// the token). Edits and deletes are put back.

import { isApiError } from '../api/errors.ts';
import type { ConfigMap } from '../api/types/core-v1.ts';
import type { ControllerFactory } from './context.ts';
import { queueController } from './controller.ts';

export const ROOT_CA_CONFIGMAP = 'kube-root-ca.crt';
const DESCRIPTION_ANNOTATION = 'kubernetes.io/description';
// upstream's text, word for word.
const DESCRIPTION =
  'Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.';

export const rootCAPublisherController: ControllerFactory = (ctx) => {
  const ca = ctx.options.rootCA;
  const namespaces = ctx.informers.informer('namespaces');
  const configMaps = ctx.informers.informer('configMaps');

  const c = queueController(ctx, {
    name: 'root-ca-cert-publisher',
    workers: 1,
    async sync(namespace) {
      if (!ca) return;
      const ns = namespaces.indexer.get(namespace);
      if (!ns || ns.status?.phase === 'Terminating' || ns.metadata.deletionTimestamp) return;
      const current = configMaps.indexer.get(`${namespace}/${ROOT_CA_CONFIGMAP}`);
      const want = { 'ca.crt': ca };
      try {
        if (!current) {
          const cm: ConfigMap = {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: {
              name: ROOT_CA_CONFIGMAP,
              namespace,
              annotations: { [DESCRIPTION_ANNOTATION]: DESCRIPTION },
            },
            data: want,
          };
          await ctx.clients.configMaps.create(namespace, cm);
          return;
        }
        const same =
          current.data?.['ca.crt'] === ca &&
          Object.keys(current.data ?? {}).length === 1 &&
          current.metadata.annotations?.[DESCRIPTION_ANNOTATION] === DESCRIPTION &&
          !current.binaryData;
        if (same) return;
        const { binaryData: _, ...rest } = current;
        await ctx.clients.configMaps.update({
          ...rest,
          metadata: {
            ...current.metadata,
            annotations: { ...current.metadata.annotations, [DESCRIPTION_ANNOTATION]: DESCRIPTION },
          },
          data: want,
        });
      } catch (err) {
        // The cache was behind, or the namespace began terminating: the next event requeues.
        if (
          !isApiError(err, 'AlreadyExists') &&
          !isApiError(err, 'Conflict') &&
          !isApiError(err, 'Forbidden')
        )
          throw err;
      }
    },
  });

  namespaces.on({
    add: (ns) => c.queue.add(ns.metadata.name ?? ''),
    update: (_old, ns) => c.queue.add(ns.metadata.name ?? ''),
  });
  const requeue = (cm: ConfigMap) => {
    if (cm.metadata.name === ROOT_CA_CONFIGMAP) c.queue.add(cm.metadata.namespace ?? '');
  };
  configMaps.on({ update: (_old, cm) => requeue(cm), delete: requeue });
  return c;
};
