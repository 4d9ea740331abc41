// The proxy contract against the iptables backend, in a network namespace.
import { iptablesBackend } from './iptables.ts';
import { LAB_CLUSTER_CIDR, LAB_SERVICE_CIDR } from './lab.ts';
import { proxyContract } from './proxy.case.ts';

proxyContract('iptables', (lab) => ({
  backend: iptablesBackend({ clusterCIDR: LAB_CLUSTER_CIDR, serviceCIDR: LAB_SERVICE_CIDR, exec: lab.exec }),
  // Our chains only: the built-in chains iptables-save always lists are not ours.
  leftovers: async () =>
    (await lab.exec('iptables-save', []))
      .split('\n')
      .filter((l) => /KUBE-|skiff/.test(l))
      .join('\n'),
}));
