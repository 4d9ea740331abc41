// Rule generation of the iptables backend, without a kernel (the contract
// suite, iptables.netns.test.ts, runs the rules for real).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { portRules, restoreInput } from './iptables.ts';
import type { ServicePort } from './model.ts';

const cfg = { clusterCIDR: '10.42.0.0/16', serviceCIDR: '10.43.0.0/16' };
const port = (over: Partial<ServicePort> = {}): ServicePort => ({
  key: 'ns/web:',
  service: 'ns/web',
  portName: '',
  protocol: 'TCP',
  clusterIP: '10.43.0.10',
  port: 80,
  nodePort: undefined,
  externalIPs: [],
  loadBalancerIPs: [],
  affinitySeconds: undefined,
  externalPolicyLocal: false,
  internalPolicyLocal: false,
  endpoints: ['10.42.0.5', '10.42.0.6', '10.42.0.7'].map((ip) => ({ ip, port: 8080, local: true })),
  ...over,
});

describe('iptables rule generation', () => {
  it('KUBE-SVC balances with statistic 1/3, 1/2, then the rest', () => {
    const r = portRules(port(), cfg);
    const svc = [...r.chains].find(([name]) => name.startsWith('KUBE-SVC-'))!;
    assert.match(r.natServices[0]!, /-d 10\.43\.0\.10\/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-/);
    assert.match(svc[1][0]!, /! -s 10\.42\.0\.0\/16 -j KUBE-MARK-MASQ$/);
    assert.match(svc[1][1]!, /--probability 0\.3333333333 -j KUBE-SEP-/);
    assert.match(svc[1][2]!, /--probability 0\.5000000000 -j KUBE-SEP-/);
    assert.match(svc[1][3]!, /-j KUBE-SEP-\w+$/);
    const sep = [...r.chains].find(([name]) => name.startsWith('KUBE-SEP-'))!;
    assert.match(sep[1][0]!, /-s 10\.42\.0\.5\/32 .* -j KUBE-MARK-MASQ/, 'hairpin');
    assert.match(sep[1][1]!, /-j DNAT --to-destination 10\.42\.0\.5:8080$/);
  });

  it('session affinity with the recent match; no endpoints rejects in filter', () => {
    const r = portRules(port({ affinitySeconds: 30 }), cfg);
    const svc = [...r.chains].find(([name]) => name.startsWith('KUBE-SVC-'))![1];
    assert.match(svc[1]!, /-m recent --name KUBE-SEP-\w+ --rcheck --seconds 30 --reap -j KUBE-SEP-/);
    const empty = portRules(port({ endpoints: [], nodePort: 30080 }), cfg);
    assert.deepEqual(empty.natServices, []);
    assert.match(empty.filterServices[0]!, /--dport 80 -j REJECT --reject-with tcp-reset$/);
    assert.match(empty.filterExternal[0]!, /--dst-type LOCAL -p tcp -m tcp --dport 30080 -j REJECT/);
  });

  it('a partial restore carries the shared chains whole, only the changed port chains, and deletes the gone ones', () => {
    const a = portRules(port(), cfg);
    const changed = new Map([...a.chains].slice(0, 1));
    const input = restoreInput(cfg, [a], changed, ['KUBE-SEP-GONE']);
    const lines = input.split('\n');
    assert.ok(lines.includes(':KUBE-SERVICES - [0:0]'));
    assert.ok(lines.includes(':KUBE-SEP-GONE - [0:0]'), 'flushed before it is deleted');
    assert.ok(lines.indexOf('-X KUBE-SEP-GONE') > lines.indexOf(a.natServices[0]!));
    const declared = lines.filter((l) => /^:KUBE-(SVC|SEP)-/.test(l));
    assert.deepEqual(declared, [`:${[...changed.keys()][0]} - [0:0]`, ':KUBE-SEP-GONE - [0:0]']);
  });
});
