// Test fixtures shared by the Endpoints and EndpointSlice controller tests:
// Services, and pods whose kubelet part (IP, phase, Ready) the test plays
// through the /status subresource.

import type { Container, Pod, Service } from '../api/types/core-v1.ts';
import type { Clientset } from '../client/clientset.ts';

export interface PodOpts {
  labels: Record<string, string>;
  ip?: string;
  ready?: boolean;
  phase?: string;
  nodeName?: string;
  ports?: Container['ports'];
  hostname?: string;
  subdomain?: string;
}

export interface EndpointFixtureOptions {
  namespace: string;
  /** The node pods run on unless they say otherwise: a pod with an IP runs somewhere. */
  nodeName: string;
  /** The Ready condition's lastTransitionTime (trigger-time annotations are computed from it). */
  transitionTime: () => string;
}

export function endpointFixtures(clients: () => Clientset, opts: EndpointFixtureOptions) {
  const ns = opts.namespace;

  const createService = (name: string, spec: Service['spec'], labels?: Record<string, string>) =>
    clients().services.create(ns, { metadata: { name, ...(labels ? { labels } : {}) }, spec });

  const setPodStatus = (name: string, ip: string, ready: boolean, phase = 'Running') =>
    clients().pods.patch(
      ns,
      name,
      'merge',
      {
        status: {
          phase,
          podIP: ip,
          podIPs: [{ ip }],
          conditions: [
            { type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: opts.transitionTime() },
          ],
        },
      },
      { subresource: 'status' },
    );

  /** Creates a pod on a node, then plays the kubelet: IP, phase and Ready condition through /status. */
  async function createPod(name: string, o: PodOpts): Promise<Pod> {
    await clients().pods.create(ns, {
      metadata: { name, labels: o.labels },
      spec: {
        // A pod on no node would be deleted at once, without a grace period.
        nodeName: o.nodeName ?? opts.nodeName,
        containers: [{ name: 'c', image: 'nginx', ...(o.ports ? { ports: o.ports } : {}) }],
        ...(o.hostname ? { hostname: o.hostname } : {}),
        ...(o.subdomain ? { subdomain: o.subdomain } : {}),
      },
    });
    if (!o.ip) return clients().pods.get(ns, name);
    return setPodStatus(name, o.ip, o.ready ?? true, o.phase);
  }

  return { createService, createPod, setPodStatus };
}
