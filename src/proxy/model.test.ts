import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Service } from '../api/types/core-v1.ts';
import type { EndpointSlice } from '../api/types/discovery-v1.ts';
import { externalEndpoints, internalEndpoints, servicePortsOf } from './model.ts';

const svc = (spec: Service['spec'], status?: Service['status']): Service => ({
  metadata: { namespace: 'ns', name: 'web' },
  spec: { clusterIP: '10.43.0.10', ...spec },
  ...(status ? { status } : {}),
});
const slice = (endpoints: EndpointSlice['endpoints'], ports: EndpointSlice['ports']): EndpointSlice => ({
  metadata: { namespace: 'ns', name: 'web-1' },
  addressType: 'IPv4',
  endpoints,
  ports,
});

describe('servicePortsOf', () => {
  it('skips headless and ExternalName Services, and those another proxy claims', () => {
    assert.deepEqual(servicePortsOf(svc({ clusterIP: 'None', ports: [{ port: 80 }] }), [], 'n'), []);
    assert.deepEqual(servicePortsOf(svc({ type: 'ExternalName', externalName: 'x.example' }), [], 'n'), []);
    const other = svc({ ports: [{ port: 80 }] });
    other.metadata.labels = { 'service.kubernetes.io/service-proxy-name': 'other' };
    assert.deepEqual(servicePortsOf(other, [], 'n'), []);
  });

  it('matches slice ports by name and protocol (how a named targetPort arrives)', () => {
    const s = svc({
      ports: [
        { name: 'web', port: 80, targetPort: 'http' },
        { name: 'dns', port: 53, protocol: 'UDP' },
      ],
    });
    const sl = slice(
      [{ addresses: ['10.42.0.5'], conditions: { ready: true } }],
      [
        { name: 'web', port: 8080, protocol: 'TCP' },
        { name: 'dns', port: 5353, protocol: 'UDP' },
        { name: 'dns', port: 9999, protocol: 'TCP' },
      ],
    );
    const [web, dns] = servicePortsOf(s, [sl], 'n');
    assert.deepEqual(web!.endpoints, [{ ip: '10.42.0.5', port: 8080, local: false }]);
    assert.equal(dns!.protocol, 'UDP');
    assert.deepEqual(dns!.endpoints, [{ ip: '10.42.0.5', port: 5353, local: false }]);
  });

  it('uses ready endpoints (unset counts as ready), else serving terminating ones', () => {
    const ports = [{ name: '', port: 8080 }];
    const s = svc({ ports: [{ port: 80 }] });
    const mixed = slice(
      [
        { addresses: ['10.42.0.1'], conditions: { ready: false } },
        { addresses: ['10.42.0.2'] },
        { addresses: ['10.42.0.3'], conditions: { ready: false, serving: true, terminating: true } },
      ],
      ports,
    );
    assert.deepEqual(
      servicePortsOf(s, [mixed], 'n')[0]!.endpoints.map((e) => e.ip),
      ['10.42.0.2'],
    );
    const draining = slice(
      [
        { addresses: ['10.42.0.3'], conditions: { ready: false, serving: true, terminating: true } },
        { addresses: ['10.42.0.4'], conditions: { ready: false, serving: false, terminating: true } },
      ],
      ports,
    );
    assert.deepEqual(
      servicePortsOf(s, [draining], 'n')[0]!.endpoints.map((e) => e.ip),
      ['10.42.0.3'],
    );
  });

  it('traffic policies: Local keeps this node’s endpoints; external policy only for NodePort/LoadBalancer', () => {
    const sl = slice(
      [
        { addresses: ['10.42.0.1'], nodeName: 'a' },
        { addresses: ['10.42.0.2'], nodeName: 'b' },
      ],
      [{ port: 8080 }],
    );
    const np = servicePortsOf(
      svc({ type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ port: 80, nodePort: 30080 }] }),
      [sl],
      'a',
    )[0]!;
    assert.equal(np.nodePort, 30080);
    assert.deepEqual(
      externalEndpoints(np).map((e) => e.ip),
      ['10.42.0.1'],
    );
    assert.equal(internalEndpoints(np).length, 2);
    const cluster = servicePortsOf(
      svc({ externalTrafficPolicy: 'Local', ports: [{ port: 80 }] }),
      [sl],
      'a',
    )[0]!;
    assert.equal(cluster.externalPolicyLocal, false, 'a ClusterIP Service has no external policy');
    const itp = servicePortsOf(svc({ internalTrafficPolicy: 'Local', ports: [{ port: 80 }] }), [sl], 'b')[0]!;
    assert.deepEqual(
      internalEndpoints(itp).map((e) => e.ip),
      ['10.42.0.2'],
    );
  });

  it('session affinity defaults to upstream’s 10800 s; load balancer IPs come from status', () => {
    const lb = servicePortsOf(
      svc(
        { type: 'LoadBalancer', sessionAffinity: 'ClientIP', ports: [{ port: 80, nodePort: 31000 }] },
        {
          loadBalancer: { ingress: [{ ip: '192.168.1.10' }, { hostname: 'lb.example' }] },
        },
      ),
      [],
      'a',
    )[0]!;
    assert.equal(lb.affinitySeconds, 10800);
    assert.deepEqual(lb.loadBalancerIPs, ['192.168.1.10']);
    assert.equal(lb.nodePort, 31000);
  });
});
