// The NetworkPolicy contract against the nftables table, in a network namespace.
import { networkPolicyContract } from './policy.case.ts';
import { policyTable } from './policy-nft.ts';

networkPolicyContract('nftables', (lab) => ({
  table: policyTable({ table: 'snp-netpol', exec: lab.exec }),
  leftovers: () => lab.exec('nft', ['list', 'ruleset']),
}));
