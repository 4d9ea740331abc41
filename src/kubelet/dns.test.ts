import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Pod } from '../api/types/core-v1.ts';
import { parseResolvConf } from '../dns/resolv-conf.ts';
import { hostResolvConfReader, podDNSConfigurer } from './dns.ts';

const host = parseResolvConf(
  '# written by the network\nnameserver 192.0.2.53\nnameserver 192.0.2.54 # second\nsearch corp.example. lab.example\noptions edns0 timeout:2\n',
);

function configurer() {
  const events: string[] = [];
  const dns = podDNSConfigurer({
    clusterDNS: ['10.43.0.10'],
    clusterDomain: 'cluster.local',
    hostResolvConf: () => structuredClone(host),
    warn: (_pod, reason) => events.push(reason),
  });
  return { dns, events };
}

const pod = (spec: Partial<NonNullable<Pod['spec']>> = {}): Pod => ({
  metadata: { name: 'p', namespace: 'shop' },
  spec: { containers: [{ name: 'c' }], ...spec },
});

/** The node's resolv.conf as a pod's DNSConfig. */
const hostConfig = { servers: host.nameservers, searches: host.searches, options: host.options };

describe('pod DNS (kubelet GetPodDNS)', () => {
  it('parses resolv.conf as the kubelet: last search line, trailing dots dropped, comments ignored', () => {
    assert.deepEqual(host, {
      nameservers: ['192.0.2.53', '192.0.2.54'],
      searches: ['corp.example', 'lab.example'],
      options: ['edns0', 'timeout:2'],
    });
  });

  it('ClusterFirst: the cluster DNS, the namespace search path before the host one, ndots:5', () => {
    const { dns } = configurer();
    assert.deepEqual(dns(pod()), {
      servers: ['10.43.0.10'],
      searches: [
        'shop.svc.cluster.local',
        'svc.cluster.local',
        'cluster.local',
        'corp.example',
        'lab.example',
      ],
      options: ['ndots:5'],
    });
  });

  it('hostNetwork pods get the node resolv.conf with ClusterFirst, and the cluster DNS with ClusterFirstWithHostNet', () => {
    const { dns } = configurer();
    assert.deepEqual(dns(pod({ hostNetwork: true })), hostConfig);
    assert.deepEqual(dns(pod({ hostNetwork: true, dnsPolicy: 'ClusterFirstWithHostNet' })).servers, [
      '10.43.0.10',
    ]);
    assert.deepEqual(dns(pod({ dnsPolicy: 'Default' })), hostConfig);
  });

  it('None takes only spec.dnsConfig; dnsConfig merges into the others (options override by name)', () => {
    const { dns } = configurer();
    assert.deepEqual(
      dns(
        pod({
          dnsPolicy: 'None',
          dnsConfig: {
            nameservers: ['1.2.3.4'],
            searches: ['ns1.svc.cluster-domain.example'],
            options: [{ name: 'ndots', value: '2' }],
          },
        }),
      ),
      { servers: ['1.2.3.4'], searches: ['ns1.svc.cluster-domain.example'], options: ['ndots:2'] },
    );
    assert.deepEqual(
      dns(
        pod({
          dnsConfig: {
            nameservers: ['10.43.0.10', '9.9.9.9'],
            options: [{ name: 'ndots', value: '1' }, { name: 'edns0' }],
          },
        }),
      ),
      {
        servers: ['10.43.0.10', '9.9.9.9'],
        searches: [
          'shop.svc.cluster.local',
          'svc.cluster.local',
          'cluster.local',
          'corp.example',
          'lab.example',
        ],
        options: ['ndots:1', 'edns0'],
      },
    );
  });

  it('cuts to three name servers and 32 search paths, with a DNSConfigForming event', () => {
    const { dns, events } = configurer();
    const out = dns(
      pod({
        dnsPolicy: 'None',
        dnsConfig: {
          nameservers: ['1.1.1.1', '2.2.2.2', '3.3.3.3', '4.4.4.4'],
          searches: Array.from({ length: 40 }, (_, i) => `s${i}.example`),
        },
      }),
    );
    assert.equal(out.servers.length, 3);
    assert.equal(out.searches.length, 32);
    assert.deepEqual(events, ['DNSConfigForming', 'DNSConfigForming']);
  });

  it('without a cluster DNS address ClusterFirst falls back to Default with a MissingClusterDNS event', () => {
    const events: string[] = [];
    const dns = podDNSConfigurer({
      clusterDNS: [],
      clusterDomain: 'cluster.local',
      hostResolvConf: () => structuredClone(host),
      warn: (_pod, reason) => events.push(reason),
    });
    assert.deepEqual(dns(pod()), hostConfig);
    assert.deepEqual(events, ['MissingClusterDNS']);
  });
});

describe('hostResolvConfReader', () => {
  it('reads the file again once it is older than its age limit, not on every pod', () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-resolv-'));
    const path = join(dir, 'resolv.conf');
    writeFileSync(path, 'nameserver 198.18.0.53\nsearch a.example\n');
    let now = 0;
    const read = hostResolvConfReader(path, 1000, () => now);
    assert.deepEqual(read().searches, ['a.example']);
    writeFileSync(path, 'nameserver 198.18.0.53\nsearch b.example\n');
    now = 999;
    assert.deepEqual(read().searches, ['a.example']);
    now = 1000;
    assert.deepEqual(read().searches, ['b.example']);
    rmSync(dir, { recursive: true, force: true });
  });
});
