import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Namespace, Pod } from '../api/types/core-v1.ts';
import type { NetworkPolicy, NetworkPolicySpec } from '../api/types/networking-v1.ts';
import { canonicalCIDR, mergeRanges, nodePolicyModel, type PodPolicy } from './policy.ts';
import { policyScript } from './policy-nft.ts';

const pod = (
  ns: string,
  name: string,
  ip: string,
  labels: Record<string, string>,
  extra: Partial<Pod['spec']> = {},
  node = 'n1',
): Pod => ({
  metadata: { namespace: ns, name, labels },
  spec: {
    nodeName: node,
    containers: [
      {
        name: 'c',
        image: 'busybox',
        ports: [
          { name: 'http', containerPort: 9090 },
          { name: 'dns', containerPort: 53, protocol: 'UDP' },
        ],
      },
    ],
    ...extra,
  },
  status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
});
const namespace = (name: string, labels: Record<string, string> = {}): Namespace => ({
  metadata: { name, labels },
});
const policy = (ns: string, name: string, spec: NetworkPolicySpec): NetworkPolicy => ({
  metadata: { namespace: ns, name },
  spec,
});

const pods = [
  pod('a', 'server', '10.42.0.10', { app: 'server' }),
  pod('a', 'client', '10.42.0.11', { app: 'client' }),
  pod('b', 'client', '10.42.1.12', { app: 'client' }, {}, 'n2'),
  pod('b', 'host', '192.0.2.5', { app: 'client' }, { hostNetwork: true }),
  {
    ...pod('b', 'done', '10.42.0.13', { app: 'client' }),
    status: { phase: 'Succeeded', podIP: '10.42.0.13' },
  },
];
const namespaces = [namespace('a', { team: 'a' }), namespace('b', { team: 'b' })];
const model = (...policies: NetworkPolicy[]): PodPolicy[] =>
  nodePolicyModel({ nodeName: 'n1', policies, pods, namespaces });
const of = (m: PodPolicy[], key: string) => m.find((p) => p.pod === key);

describe('nodePolicyModel', () => {
  it('no policy: no pod is isolated', () => {
    assert.deepEqual(model(), []);
  });

  it('selects only this node’s pods of the policy’s namespace; Ingress by default, Egress with egress rules', () => {
    const m = model(policy('a', 'deny', { podSelector: {} }), policy('b', 'deny', { podSelector: {} }));
    assert.deepEqual(
      m.map((p) => [p.pod, p.ingress, p.egress]),
      [
        ['a/server', [], undefined],
        ['a/client', [], undefined],
      ],
    );
    const e = model(policy('a', 'e', { podSelector: { matchLabels: { app: 'client' } }, egress: [{}] }));
    assert.deepEqual(of(e, 'a/client'), {
      pod: 'a/client',
      ip: '10.42.0.11',
      ingress: [],
      egress: [{}],
      policies: ['a/e'],
    });
  });

  it('peers: podSelector in the policy’s namespace, namespaceSelector, both, ipBlock; hostNetwork and finished pods are no peers', () => {
    const m = model(
      policy('a', 'p', {
        podSelector: { matchLabels: { app: 'server' } },
        ingress: [
          { from: [{ podSelector: { matchLabels: { app: 'client' } } }] },
          { from: [{ namespaceSelector: { matchLabels: { team: 'b' } } }] },
          {
            from: [
              {
                namespaceSelector: {},
                podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['client'] }] },
              },
            ],
          },
          { from: [{ ipBlock: { cidr: '198.18.42.7/24', except: ['198.18.42.16/28'] } }] },
          { from: [{ podSelector: { matchLabels: { app: 'nobody' } } }] },
        ],
      }),
    );
    assert.deepEqual(of(m, 'a/server')?.ingress, [
      { peers: [{ ips: ['10.42.0.11'] }] },
      { peers: [{ ips: ['10.42.1.12'] }] },
      { peers: [{ ips: ['10.42.0.11', '10.42.1.12'] }] },
      { peers: [{ cidr: '198.18.42.0/24', except: ['198.18.42.16/28'] }] },
    ]);
  });

  it('ports: TCP by default, endPort ranges merged, a protocol alone means all its ports, named ports from the target pod', () => {
    const m = model(
      policy('a', 'p', {
        podSelector: { matchLabels: { app: 'server' } },
        ingress: [
          {
            ports: [
              { port: 80 },
              { port: 8000, endPort: 8100 },
              { port: 8050, endPort: 8200 },
              { protocol: 'UDP' },
            ],
          },
          { ports: [{ port: 'http' }, { port: 'dns', protocol: 'UDP' }, { port: 'dns' }] },
          { ports: [{ port: 'missing' }] },
        ],
      }),
    );
    assert.deepEqual(of(m, 'a/server')?.ingress, [
      {
        ports: [
          {
            protocol: 'TCP',
            ranges: [
              [80, 80],
              [8000, 8200],
            ],
          },
          { protocol: 'UDP' },
        ],
      },
      {
        ports: [
          { protocol: 'TCP', ranges: [[9090, 9090]] },
          { protocol: 'UDP', ranges: [[53, 53]] },
        ],
      },
    ]);
  });

  it('egress: a named port resolves per destination pod, and never for ipBlocks', () => {
    const m = model(
      policy('a', 'e', {
        podSelector: { matchLabels: { app: 'client' } },
        policyTypes: ['Egress'],
        egress: [
          {
            to: [{ namespaceSelector: {} }, { ipBlock: { cidr: '198.18.42.0/24' } }],
            ports: [{ port: 'http' }, { port: 443 }],
          },
          { ports: [{ port: 'dns', protocol: 'UDP' }] },
        ],
      }),
    );
    const all = ['10.42.0.10', '10.42.0.11', '10.42.1.12'];
    assert.deepEqual(of(m, 'a/client')?.egress, [
      {
        peers: [{ ips: all }, { cidr: '198.18.42.0/24', except: [] }],
        ports: [{ protocol: 'TCP', ranges: [[443, 443]] }],
      },
      { peers: [{ ips: all }], ports: [{ protocol: 'TCP', ranges: [[9090, 9090]] }] },
      { peers: [{ ips: all }], ports: [{ protocol: 'UDP', ranges: [[53, 53]] }] },
    ]);
    assert.equal(of(m, 'a/client')?.ingress, undefined);
  });

  it('several policies are a union', () => {
    const m = model(
      policy('a', 'one', {
        podSelector: {},
        ingress: [{ from: [{ podSelector: { matchLabels: { app: 'client' } } }] }],
      }),
      policy('a', 'two', {
        podSelector: { matchLabels: { app: 'server' } },
        ingress: [{ ports: [{ port: 80 }] }],
      }),
    );
    assert.deepEqual(of(m, 'a/server'), {
      pod: 'a/server',
      ip: '10.42.0.10',
      policies: ['a/one', 'a/two'],
      ingress: [{ peers: [{ ips: ['10.42.0.11'] }] }, { ports: [{ protocol: 'TCP', ranges: [[80, 80]] }] }],
    });
  });
});

describe('helpers', () => {
  it('mergeRanges and canonicalCIDR', () => {
    assert.deepEqual(
      mergeRanges([
        [10, 20],
        [1, 2],
        [3, 4],
        [15, 30],
      ]),
      [
        [1, 4],
        [10, 30],
      ],
    );
    assert.equal(canonicalCIDR('10.1.2.3/8'), '10.0.0.0/8');
    assert.equal(canonicalCIDR('10.1.2.3'), '10.1.2.3/32');
  });
});

describe('policyScript', () => {
  it('renders chains that return what is allowed and drop the rest, behind the pods’ verdict maps', () => {
    const script = policyScript('t', [
      {
        pod: 'a/server',
        ip: '10.42.0.10',
        policies: ['a/p'],
        ingress: [
          {
            peers: [
              { ips: ['10.42.0.11'] },
              { cidr: '198.18.42.0/24', except: ['198.18.42.16/28', '198.18.42.16/30'] },
            ],
            ports: [
              {
                protocol: 'TCP',
                ranges: [
                  [80, 80],
                  [8000, 8100],
                ],
              },
            ],
          },
        ],
        egress: [],
      },
    ]);
    const lines = script.trim().split('\n');
    assert.deepEqual(lines.slice(0, 3), ['add table ip t', 'delete table ip t', 'add table ip t']);
    const chainRules = lines
      .filter((l) => /^add rule ip t (ingress|egress)-/.test(l))
      .map((l) => l.replace(/^add rule ip t \S+ /, ''));
    assert.deepEqual(chainRules, [
      'ip saddr { 10.42.0.11 } tcp dport { 80, 8000-8100 } return',
      'ip saddr 198.18.42.0/24 ip saddr != { 198.18.42.16/28 } tcp dport { 80, 8000-8100 } return',
      'drop',
      'drop',
    ]);
    assert.ok(
      lines.some((l) =>
        /^add element ip t ingress-pods \{ 10\.42\.0\.10 : jump ingress-\S+-a\/server \}$/.test(l),
      ),
    );
    assert.ok(
      lines.some((l) =>
        /^add element ip t egress-pods \{ 10\.42\.0\.10 : jump egress-\S+-a\/server \}$/.test(l),
      ),
    );
  });
});
