// The proxy contract against the nftables backend, in a network namespace.
import { LAB_CLUSTER_CIDR, LAB_SERVICE_CIDR } from './lab.ts';
import { nftablesBackend } from './nftables.ts';
import { proxyContract } from './proxy.case.ts';

proxyContract('nftables', (lab) => ({
  backend: nftablesBackend({ clusterCIDR: LAB_CLUSTER_CIDR, serviceCIDR: LAB_SERVICE_CIDR, exec: lab.exec }),
  leftovers: () => lab.exec('nft', ['list', 'ruleset']),
}));
