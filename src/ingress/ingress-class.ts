// The IngressClass the server creates at bootstrap, as k3s's Traefik chart
// creates `traefik`: `skiff`, controller skiff.io/ingress, marked the
// cluster's default, so an Ingress that names no class gets it (the
// DefaultIngressClass admission plugin) and every node's proxy serves it.
// An existing class of that name is left as it is: an admin may have
// removed the default mark on purpose.

import { ApiError } from '../api/errors.ts';
import type { ApiServer } from '../apiserver/apiserver.ts';
import type { Log } from '../util/log.ts';
import { DEFAULT_INGRESS_CLASS, INGRESS_CONTROLLER, IS_DEFAULT_INGRESS_CLASS } from './model.ts';

export async function ensureDefaultIngressClass(api: ApiServer, log: Log): Promise<void> {
  try {
    await api.storage('networking.k8s.io', 'v1', 'ingressclasses')!.create(undefined, {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'IngressClass',
      metadata: {
        name: DEFAULT_INGRESS_CLASS,
        annotations: { [IS_DEFAULT_INGRESS_CLASS]: 'true' },
        labels: { 'app.kubernetes.io/managed-by': 'skiff' },
      },
      spec: { controller: INGRESS_CONTROLLER },
    });
    log('created', { resource: 'ingressclasses', name: DEFAULT_INGRESS_CLASS });
  } catch (err) {
    if (err instanceof ApiError && err.code === 409) return;
    log.error('could not create the default IngressClass', {
      name: DEFAULT_INGRESS_CLASS,
      error: String(err),
    });
  }
}
