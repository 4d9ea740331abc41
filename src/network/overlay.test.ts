// The overlay's pure parts: Node annotations, peers, addresses, the
// backends' desired-state diffs, the underlay choice, MTU and the probe's
// condition. The kernel side is the contract suite's (overlay.case.ts).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Node } from '../api/types/core-v1.ts';
import { networkCheck } from './check.ts';
import { diffEntries, ROUTE_PROTO } from './entries.ts';
import { hostGwCommands, hostGwEntries } from './host-gw.ts';
import { masqTableForClusterCIDR, masqueradeScript } from './masquerade.ts';
import {
  BACKEND_DATA_ANNOTATION,
  BACKEND_TYPE_ANNOTATION,
  backendAnnotations,
  cidrAddress,
  hasAnnotations,
  type OverlayBackend,
  PUBLIC_IP_ANNOTATION,
  peerFromNode,
  peersFromNodes,
} from './overlay.ts';
import { networkCondition, probeReport } from './probe.ts';
import { chooseUnderlay } from './underlay.ts';
import { vtepMAC, vxlanCommands, vxlanEntries } from './vxlan.ts';

const vxlanNode = (name: string, podCIDR: string, ip: string, mac = '0a:11:22:33:44:55'): Node => ({
  metadata: {
    name,
    annotations: {
      [BACKEND_TYPE_ANNOTATION]: 'vxlan',
      [BACKEND_DATA_ANNOTATION]: JSON.stringify({ VNI: 1, VtepMAC: mac }),
      [PUBLIC_IP_ANNOTATION]: ip,
    },
  },
  spec: { podCIDR },
});

describe('overlay annotations and peers', () => {
  it('round-trips what a node publishes into the peer others program', () => {
    const local = { name: 'a', podCIDR: '10.42.1.0/24', publicIP: '198.18.0.2' };
    const annotations = backendAnnotations('vxlan', local, { VNI: 1, VtepMAC: '0A:11:22:33:44:55' });
    assert.equal(annotations[BACKEND_DATA_ANNOTATION], '{"VNI":1,"VtepMAC":"0A:11:22:33:44:55"}');
    const parsed = peerFromNode({ metadata: { name: 'a', annotations }, spec: { podCIDR: local.podCIDR } });
    assert.deepEqual(parsed, {
      peer: {
        name: 'a',
        podCIDR: '10.42.1.0/24',
        publicIP: '198.18.0.2',
        backendType: 'vxlan',
        vtepMAC: '0a:11:22:33:44:55',
      },
    });
    assert.deepEqual(
      peerFromNode({
        metadata: { name: 'b', annotations: backendAnnotations('host-gw', local, null) },
        spec: { podCIDR: local.podCIDR },
      }),
      {
        peer: { name: 'b', podCIDR: '10.42.1.0/24', publicIP: '198.18.0.2', backendType: 'host-gw' },
      },
    );
  });

  it('skips, with the reason, a Node that has not published or published nonsense', () => {
    const skip = (n: Node) => {
      const p = peerFromNode(n);
      return 'skip' in p ? p.skip : 'peer';
    };
    const good = vxlanNode('a', '10.42.1.0/24', '198.18.0.2');
    assert.equal(skip({ ...good, spec: {} }), 'no podCIDR');
    assert.equal(skip({ metadata: { name: 'a' }, spec: { podCIDR: '10.42.1.0/24' } }), 'no backend');
    const withAnn = (k: string, v: string): Node => ({
      ...good,
      metadata: { ...good.metadata, annotations: { ...good.metadata.annotations, [k]: v } },
    });
    assert.equal(skip(withAnn(BACKEND_TYPE_ANNOTATION, 'udp')), 'unknown backend udp');
    assert.match(skip(withAnn(PUBLIC_IP_ANNOTATION, '300.1.1.1')), /^bad .*public-ip/);
    assert.match(skip(withAnn(BACKEND_DATA_ANNOTATION, '{')), /^bad .*backend-data/);
    assert.equal(
      skip(withAnn(BACKEND_DATA_ANNOTATION, '{"VNI":2,"VtepMAC":"0a:11:22:33:44:55"}')),
      'VNI 2 is not 1',
    );
    assert.equal(skip(withAnn(BACKEND_DATA_ANNOTATION, '{"VNI":1,"VtepMAC":"nope"}')), 'bad VtepMAC');
    assert.equal(skip(good), 'peer');
  });

  it('peers are the other Nodes of the same backend, sorted; itself, deleting and other backends are not', () => {
    const other = {
      ...vxlanNode('c', '10.42.3.0/24', '198.18.0.4'),
      metadata: {
        name: 'c',
        annotations: { [BACKEND_TYPE_ANNOTATION]: 'host-gw', [PUBLIC_IP_ANNOTATION]: '198.18.0.4' },
      },
    };
    const deleting = vxlanNode('d', '10.42.4.0/24', '198.18.0.5');
    deleting.metadata.deletionTimestamp = '2026-12-07T00:00:00Z';
    const { peers, skipped } = peersFromNodes(
      [
        vxlanNode('self', '10.42.0.0/24', '198.18.0.1'),
        vxlanNode('b', '10.42.2.0/24', '198.18.0.3'),
        vxlanNode('a', '10.42.1.0/24', '198.18.0.2'),
        other,
        deleting,
      ],
      'self',
      'vxlan',
    );
    assert.deepEqual(
      peers.map((p) => p.name),
      ['a', 'b'],
    );
    assert.deepEqual(skipped, { c: 'backend host-gw, not vxlan' });
  });

  it('hasAnnotations: no patch when the Node already says it', () => {
    const n = vxlanNode('a', '10.42.1.0/24', '198.18.0.2');
    assert.equal(hasAnnotations(n, { [PUBLIC_IP_ANNOTATION]: '198.18.0.2' }), true);
    assert.equal(hasAnnotations(n, { [PUBLIC_IP_ANNOTATION]: '198.18.0.9' }), false);
    assert.equal(hasAnnotations(undefined, { x: 'y' }), false);
  });

  it('cidrAddress gives a podCIDR’s n-th address, from any address in it', () => {
    assert.equal(cidrAddress('10.42.1.0/24', 0), '10.42.1.0');
    assert.equal(cidrAddress('10.42.1.77/24', 1), '10.42.1.1');
    assert.equal(cidrAddress('10.42.0.0/16', 256 + 5), '10.42.1.5');
  });
});

describe('desired-state diffs', () => {
  const peers = [
    {
      name: 'a',
      podCIDR: '10.42.1.0/24',
      publicIP: '198.18.0.2',
      backendType: 'vxlan' as const,
      vtepMAC: '0a:00:00:00:00:01',
    },
    {
      name: 'b',
      podCIDR: '10.42.2.0/24',
      publicIP: '198.18.0.3',
      backendType: 'vxlan' as const,
      vtepMAC: '0a:00:00:00:00:02',
    },
  ];

  it('diffEntries: adds the missing, changes the different, removes the extra, leaves the same', () => {
    const actual = new Map([
      ['x', '1'],
      ['y', '2'],
      ['z', '3'],
    ]);
    const desired = new Map([
      ['x', '1'],
      ['y', '9'],
      ['w', '4'],
    ]);
    assert.deepEqual(diffEntries(actual, desired), { upsert: ['w', 'y'], remove: ['z'] });
    assert.deepEqual(diffEntries(desired, desired), { upsert: [], remove: [] });
  });

  it('vxlan: a route, a neighbour and an FDB entry per peer, and only what changed is written', () => {
    const desired = vxlanEntries(peers, 'skiff.1');
    assert.equal(desired.get('route 10.42.1.0/24'), 'via 10.42.1.0 dev skiff.1');
    assert.equal(desired.get('neigh 10.42.1.0'), '0a:00:00:00:00:01');
    assert.equal(desired.get('fdb 0a:00:00:00:00:01'), '198.18.0.2');
    const first = vxlanCommands(new Map(), desired, 'skiff.1');
    assert.deepEqual(first.ip, [
      `neigh replace 10.42.1.0 lladdr 0a:00:00:00:00:01 dev skiff.1 nud permanent`,
      `neigh replace 10.42.2.0 lladdr 0a:00:00:00:00:02 dev skiff.1 nud permanent`,
      `route replace 10.42.1.0/24 via 10.42.1.0 dev skiff.1 onlink proto ${ROUTE_PROTO}`,
      `route replace 10.42.2.0/24 via 10.42.2.0 dev skiff.1 onlink proto ${ROUTE_PROTO}`,
    ]);
    assert.deepEqual(first.bridge, [
      'fdb replace 0a:00:00:00:00:01 dev skiff.1 dst 198.18.0.2 self permanent',
      'fdb replace 0a:00:00:00:00:02 dev skiff.1 dst 198.18.0.3 self permanent',
    ]);
    // b goes, a moves to another host address.
    const next = vxlanEntries([{ ...peers[0]!, publicIP: '198.18.0.9' }], 'skiff.1');
    const second = vxlanCommands(desired, next, 'skiff.1');
    assert.deepEqual(second.ip, [
      `neigh del 10.42.2.0 dev skiff.1`,
      `route del 10.42.2.0/24 proto ${ROUTE_PROTO}`,
    ]);
    assert.deepEqual(second.bridge, [
      'fdb del 0a:00:00:00:00:02 dev skiff.1 dst 198.18.0.3 self',
      'fdb replace 0a:00:00:00:00:01 dev skiff.1 dst 198.18.0.9 self permanent',
    ]);
    assert.deepEqual(vxlanCommands(next, next, 'skiff.1'), { ip: [], bridge: [] });
  });

  it('host-gw: one route via the peer’s address per peer', () => {
    const hg = peers.map((p) => ({ ...p, backendType: 'host-gw' as const }));
    const desired = hostGwEntries(hg, 'eth0');
    assert.deepEqual(hostGwCommands(new Map(), desired), [
      `route replace 10.42.1.0/24 via 198.18.0.2 dev eth0 proto ${ROUTE_PROTO}`,
      `route replace 10.42.2.0/24 via 198.18.0.3 dev eth0 proto ${ROUTE_PROTO}`,
    ]);
    assert.deepEqual(hostGwCommands(desired, hostGwEntries(hg.slice(1), 'eth0')), [
      `route del 10.42.1.0/24 proto ${ROUTE_PROTO}`,
    ]);
  });

  it('a VTEP’s MAC is stable per node name, unicast and locally administered', () => {
    assert.equal(vtepMAC('node-1'), vtepMAC('node-1'));
    assert.notEqual(vtepMAC('node-1'), vtepMAC('node-2'));
    const first = Number.parseInt(vtepMAC('node-1').slice(0, 2), 16);
    assert.equal(first & 1, 0, 'unicast');
    assert.equal(first & 2, 2, 'locally administered');
  });

  it('masquerades pod traffic leaving the cluster range, never pod to pod', () => {
    const s = masqueradeScript('10.42.0.0/16');
    assert.match(
      s,
      /ip saddr 10\.42\.0\.0\/16 ip daddr 10\.42\.0\.0\/16 return\n.*224\.0\.0\.0\/4 return\n.*ip saddr 10\.42\.0\.0\/16 masquerade/,
    );
  });

  it('keeps one masquerade table per cluster: the default pod range has skiff-overlay, another its own', () => {
    assert.equal(masqTableForClusterCIDR('10.42.0.0/16'), 'skiff-overlay');
    assert.equal(masqTableForClusterCIDR('10.87.0.0/16'), 'skiff-overlay-10-87-0-0-16');
    assert.match(masqueradeScript('10.87.0.0/16'), /^add table ip skiff-overlay-10-87-0-0-16\n/);
  });
});

describe('the underlay (k3s’s --flannel-iface / --node-ip)', () => {
  const addrs = JSON.stringify([
    { ifname: 'lo', mtu: 65536, addr_info: [{ family: 'inet', local: '127.0.0.1', scope: 'host' }] },
    { ifname: 'eth0', mtu: 1500, addr_info: [{ family: 'inet', local: '192.0.2.10', scope: 'global' }] },
    {
      ifname: 'eth1',
      mtu: 9000,
      addr_info: [
        { family: 'inet', local: '198.18.0.5', scope: 'global' },
        { family: 'inet', local: '198.18.0.6', scope: 'global' },
      ],
    },
  ]);

  it('the interface holding the node IP, else the default route’s', () => {
    assert.deepEqual(chooseUnderlay(addrs, 'eth0', { address: '198.18.0.6' }), {
      iface: 'eth1',
      address: '198.18.0.6',
      mtu: 9000,
    });
    assert.deepEqual(chooseUnderlay(addrs, 'eth0', {}), { iface: 'eth0', address: '192.0.2.10', mtu: 1500 });
  });

  it('--flannel-iface wins, and must hold the node IP when both are given', () => {
    assert.deepEqual(chooseUnderlay(addrs, 'eth0', { iface: 'eth1' }), {
      iface: 'eth1',
      address: '198.18.0.5',
      mtu: 9000,
    });
    assert.throws(
      () => chooseUnderlay(addrs, 'eth0', { iface: 'eth1', address: '192.0.2.10' }),
      /does not hold/,
    );
    assert.throws(() => chooseUnderlay(addrs, 'eth0', { iface: 'wlan0' }), /no such interface/);
    assert.throws(() => chooseUnderlay(addrs, 'eth0', { address: '10.1.1.1' }), /no interface holds/);
  });
});

describe('the probe’s NetworkUnavailable condition', () => {
  const backend = {
    type: 'vxlan',
    mtu: () => 1450,
    probeAddress: (p: { podCIDR: string }) => cidrAddress(p.podCIDR, 0),
  } as unknown as OverlayBackend;
  const peer = (name: string, n: number) => ({
    name,
    podCIDR: `10.42.${n}.0/24`,
    publicIP: `198.18.0.${n}`,
    backendType: 'vxlan' as const,
  });
  const ready = (status: string): Node => ({
    metadata: { name: 'x' },
    status: { conditions: [{ type: 'Ready', status }] },
  });

  it('False when every peer answers, with the MTU in the message', () => {
    const report = probeReport(backend, [peer('a', 1), peer('b', 2)], {
      '10.42.1.0': 'ok',
      '10.42.2.0': 'ok',
    });
    assert.deepEqual(report, {
      backend: 'vxlan',
      mtu: 1450,
      peers: { a: { address: '10.42.1.0', reachable: true }, b: { address: '10.42.2.0', reachable: true } },
    });
    assert.deepEqual(
      networkCondition(report, () => ready('True')),
      {
        type: 'NetworkUnavailable',
        status: 'False',
        reason: 'OverlayPeersReachable',
        message: '2 of 2 overlay peers reachable (vxlan, MTU 1450)',
      },
    );
  });

  it('True naming the unreachable Ready peers; a NotReady peer is named but does not count', () => {
    const report = probeReport(backend, [peer('a', 1), peer('b', 2), peer('c', 3)], {
      '10.42.1.0': 'ok',
      '10.42.3.0': 'EHOSTUNREACH',
    });
    const c = networkCondition(report, (n) => ready(n === 'c' ? 'Unknown' : 'True'));
    assert.equal(c.status, 'True');
    assert.equal(c.reason, 'OverlayPeersUnreachable');
    assert.equal(c.message, 'overlay peers unreachable over vxlan, MTU 1450: b (10.42.2.0: TIMEOUT)');
    const onlyNotReady = networkCondition(report, (n) => ready(n === 'a' ? 'True' : 'False'));
    assert.equal(onlyNotReady.status, 'False');
    assert.match(onlyNotReady.message ?? '', /not Ready, so not counted: b, c/);
  });
});

describe('skiff check network’s table', () => {
  const node = (name: string, report?: object, cond?: { status: string; message: string }): Node => ({
    metadata: {
      name,
      annotations: {
        [BACKEND_TYPE_ANNOTATION]: 'vxlan',
        [PUBLIC_IP_ANNOTATION]: `198.18.0.${name.slice(-1)}`,
        ...(report ? { 'skiff.io/network-probe': JSON.stringify(report) } : {}),
      },
    },
    status: { conditions: cond ? [{ type: 'NetworkUnavailable', ...cond }] : [] },
  });

  it('shows each node’s view of each other, the MTU, and whether all is well', () => {
    const ok = { address: 'x', reachable: true };
    const check = networkCheck([
      node('n2', { backend: 'vxlan', mtu: 1450, peers: { n1: ok } }, { status: 'False', message: '1 of 1' }),
      node('n1', {
        backend: 'vxlan',
        mtu: 1450,
        peers: { n2: { address: 'x', reachable: false, error: 'TIMEOUT' } },
      }),
      node('n3'),
    ]);
    const lines = check.text.split('\n');
    assert.deepEqual(lines.slice(0, 4), [
      'FROM \\ TO  n1         n2         n3',
      'n1         -          TIMEOUT    not a peer',
      'n2         ok         -          not a peer',
      'n3         no report  no report  -',
    ]);
    assert.match(check.text, /n2\s+vxlan\s+198\.18\.0\.2\s+1450\s+False {2}1 of 1/);
    assert.match(check.text, /n3\s+vxlan\s+198\.18\.0\.3\s+<none>\s+<not reported>/);
    assert.equal(check.healthy, false);
    assert.equal(
      networkCheck([node('n2', { backend: 'vxlan', mtu: 1450, peers: { n1: ok } })]).healthy,
      true,
    );
  });
});
