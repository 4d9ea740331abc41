// The kube-dns Service the server creates at bootstrap, as every cluster
// has one (k3s's coredns manifest: kube-system/kube-dns, 10.43.0.10, ports
// dns/UDP and dns-tcp/TCP 53, label k8s-app=kube-dns). Tools and pods look
// it up by that name; the kubelet's --cluster-dns is its ClusterIP.
//
// It has no selector: no pod serves it. Every node agent answers on the
// address itself (src/dns/node.ts), so its one endpoint is that same
// address, written here by hand (a selector-less Service with a manual
// EndpointSlice). A service proxy that translates the ClusterIP translates
// it to itself, which the node then delivers locally; and the Service never
// looks endpoint-less, which a proxy would answer by rejecting packets.

import { ApiError } from '../api/errors.ts';
import type { KubeObject } from '../api/meta.ts';
import type { ApiServer } from '../apiserver/apiserver.ts';
import type { Log } from '../util/log.ts';

export const KUBE_DNS_SERVICE = 'kube-dns';
const NAMESPACE = 'kube-system';

export async function ensureKubeDNSService(api: ApiServer, dnsIP: string, log: Log): Promise<void> {
  const ports = [
    { name: 'dns', port: 53, protocol: 'UDP' },
    { name: 'dns-tcp', port: 53, protocol: 'TCP' },
  ];
  const labels = {
    'k8s-app': 'kube-dns',
    'kubernetes.io/cluster-service': 'true',
    'kubernetes.io/name': 'KubeDNS',
  };
  const create = async (group: string, plural: string, obj: KubeObject) => {
    try {
      await api.storage(group, 'v1', plural)!.create(NAMESPACE, obj);
      log('created', { resource: plural, namespace: NAMESPACE, name: obj.metadata.name });
    } catch (err) {
      if (err instanceof ApiError && err.code === 409) return;
      // Someone else holds the address (a Service made before the upgrade): DNS
      // still works on every node, only the Service is missing.
      log.error('could not create the kube-dns service', { name: obj.metadata.name, error: String(err) });
    }
  };
  await create('', 'services', {
    metadata: { name: KUBE_DNS_SERVICE, labels },
    spec: {
      type: 'ClusterIP',
      clusterIP: dnsIP,
      clusterIPs: [dnsIP],
      ports: ports.map((p) => ({ ...p, targetPort: 53 })),
      sessionAffinity: 'None',
    },
  });
  await create('discovery.k8s.io', 'endpointslices', {
    metadata: {
      name: KUBE_DNS_SERVICE,
      labels: {
        'kubernetes.io/service-name': KUBE_DNS_SERVICE,
        'endpointslice.kubernetes.io/managed-by': 'skiff-server',
      },
    },
    addressType: 'IPv4',
    endpoints: [{ addresses: [dnsIP], conditions: { ready: true } }],
    ports,
  });
}
