// DefaultBinder: writes the decision as a Binding to the pod's binding
// subresource; the API server sets spec.nodeName and PodScheduled=True.

import type { Clientset } from '../../client/clientset.ts';
import { type BindPlugin, Code, SUCCESS } from '../framework.ts';

export function defaultBinder(clients: Clientset): BindPlugin {
  return {
    name: 'DefaultBinder',
    async bind(_state, pod, nodeName) {
      const ns = pod.metadata.namespace;
      const name = pod.metadata.name ?? '';
      try {
        await clients.transport.request({
          method: 'POST',
          path: clients.pods.path(ns, name, 'binding'),
          body: {
            apiVersion: 'v1',
            kind: 'Binding',
            metadata: { name, namespace: ns, uid: pod.metadata.uid },
            target: { apiVersion: 'v1', kind: 'Node', name: nodeName },
          },
        });
        return SUCCESS;
      } catch (err) {
        return { code: Code.Error, reasons: [String(err)] };
      }
    },
  };
}
