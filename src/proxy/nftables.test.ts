// Rule generation of the nftables backend, without a kernel (the contract
// suite, nftables.netns.test.ts, runs the rules for real).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ServicePort } from './model.ts';
import {
  contestedKeys,
  createSlotAllocator,
  type ElementRefs,
  fullSyncScript,
  partialSyncScript,
  portProgram,
  SLOT_BLOCK,
  tableForServiceCIDR,
} from './nftables.ts';

const cfg = { clusterCIDR: '10.42.0.0/16', serviceCIDR: '10.43.0.0/16' };
const port = (over: Partial<ServicePort> = {}): ServicePort => ({
  key: 'ns/web:http',
  service: 'ns/web',
  portName: 'http',
  protocol: 'TCP',
  clusterIP: '10.43.0.10',
  port: 80,
  nodePort: undefined,
  externalIPs: [],
  loadBalancerIPs: [],
  affinitySeconds: undefined,
  externalPolicyLocal: false,
  internalPolicyLocal: false,
  endpoints: [
    { ip: '10.42.0.5', port: 8080, local: true },
    { ip: '10.42.0.6', port: 8080, local: false },
  ],
  ...over,
});

describe('nftables rule generation', () => {
  it('a ClusterIP port: a service-ips element, one DNAT rule over its slots, hairpin pairs', () => {
    const prog = portProgram(port(), cfg, createSlotAllocator());
    const elements = prog.elements.map((e) => `${e.map} ${e.element}`);
    const service = prog.chains.find((c) => c.name.startsWith('service-'))!;
    assert.match(service.name, /^service-[A-Z2-7]{8}-ns\/web\/tcp\/http$/);
    assert.ok(elements.includes(`service-ips 10.43.0.10 . tcp . 80 : goto ${service.name}`));
    assert.ok(elements.includes('cluster-ips 10.43.0.10'));
    assert.ok(elements.includes('hairpin-endpoints 10.42.0.5 . 10.42.0.5'));
    assert.ok(elements.includes(`endpoints-tcp ${SLOT_BLOCK} : 10.42.0.5 . 8080`));
    assert.ok(elements.includes(`endpoints-tcp ${SLOT_BLOCK + 1} : 10.42.0.6 . 8080`));
    assert.deepEqual(service.rules, [
      'ip daddr 10.43.0.10 tcp dport 80 ip saddr != 10.42.0.0/16 jump mark-for-masquerade',
      `meta l4proto tcp dnat ip to numgen random mod 2 offset ${SLOT_BLOCK} map @endpoints-tcp`,
    ]);
    assert.equal(prog.chains.length, 1, 'no per-endpoint chains without affinity');
  });

  it('no endpoints: the cluster IP, node port and LB IP reject; no chains', () => {
    const prog = portProgram(
      port({ endpoints: [], nodePort: 30080, loadBalancerIPs: ['192.168.1.10'] }),
      cfg,
      createSlotAllocator(),
    );
    assert.deepEqual(prog.chains, []);
    assert.deepEqual(
      prog.elements.filter((e) => e.map.startsWith('no-endpoint')).map((e) => e.element),
      [
        '10.43.0.10 . tcp . 80 : goto reject-chain',
        '192.168.1.10 . tcp . 80 : goto reject-chain',
        'tcp . 30080 : goto reject-chain',
      ],
    );
  });

  it('externalTrafficPolicy Local: short-circuits for pods and the node, then local endpoints', () => {
    const prog = portProgram(
      port({ nodePort: 30080, externalPolicyLocal: true }),
      cfg,
      createSlotAllocator(),
    );
    const ext = prog.chains.find((c) => c.name.startsWith('external-'))!;
    const local = prog.chains.find((c) => c.name.startsWith('local-'))!;
    assert.deepEqual(ext.rules.slice(0, 3), [
      `ip saddr 10.42.0.0/16 goto ${ext.name.replace('external-', 'service-')}`,
      'fib saddr type local jump mark-for-masquerade',
      `fib saddr type local goto ${ext.name.replace('external-', 'service-')}`,
    ]);
    assert.equal(ext.rules[3], `goto ${local.name}`);
    assert.match(local.rules[0]!, /numgen random mod 1 offset/);
    // No local endpoint at all: outside traffic to the node port is dropped by the filter chains.
    const none = portProgram(
      port({
        nodePort: 30080,
        externalPolicyLocal: true,
        endpoints: [{ ip: '10.42.0.6', port: 8080, local: false }],
      }),
      cfg,
      createSlotAllocator(),
    );
    assert.ok(
      none.elements.some((e) => e.map === 'no-endpoint-nodeports' && e.element === 'tcp . 30080 : drop'),
    );
  });

  it('session affinity: per-endpoint chains that remember the client', () => {
    const prog = portProgram(port({ affinitySeconds: 60 }), cfg, createSlotAllocator());
    assert.equal(prog.affinitySets.length, 2);
    assert.ok(prog.affinitySets.every((s) => s.timeout === 60));
    const ep = prog.chains.find((c) => c.name.startsWith('endpoint-'))!;
    assert.match(ep.rules[0]!, /^update @affinity-\w+ \{ ip saddr \}$/);
    assert.equal(ep.rules[1], 'meta l4proto tcp dnat to 10.42.0.5:8080');
  });

  it('an endpoint replaced by another is map elements only: no chain or rule is touched', () => {
    const slots = createSlotAllocator();
    const before = portProgram(port(), cfg, slots);
    const after = portProgram(
      port({
        endpoints: [
          { ip: '10.42.0.5', port: 8080, local: true },
          { ip: '10.42.0.7', port: 8080, local: false },
        ],
      }),
      cfg,
      slots,
    );
    const refs: ElementRefs = new Map();
    fullSyncScript('skiff', cfg, [before], refs);
    const script = partialSyncScript('skiff', [{ before, after }], refs);
    assert.equal(
      script,
      [
        `delete element ip skiff hairpin-endpoints { 10.42.0.6 . 10.42.0.6 }`,
        `delete element ip skiff endpoints-tcp { ${SLOT_BLOCK + 1} }`,
        `add element ip skiff hairpin-endpoints { 10.42.0.7 . 10.42.0.7 }`,
        `add element ip skiff endpoints-tcp { ${SLOT_BLOCK + 1} : 10.42.0.7 . 8080 }`,
        '',
      ].join('\n'),
    );
  });

  it('a removed port: elements out first, then its chain flushed and deleted; shared elements stay while used', () => {
    const slots = createSlotAllocator();
    const http = portProgram(port(), cfg, slots);
    const metrics = portProgram(
      port({
        key: 'ns/web:metrics',
        portName: 'metrics',
        port: 9100,
        endpoints: [{ ip: '10.42.0.5', port: 9100, local: true }],
      }),
      cfg,
      slots,
    );
    const refs: ElementRefs = new Map();
    fullSyncScript('skiff', cfg, [http, metrics], refs);
    const lines = partialSyncScript('skiff', [{ before: metrics, after: undefined }], refs)
      .trim()
      .split('\n');
    const delService = lines.indexOf('delete element ip skiff service-ips { 10.43.0.10 . tcp . 9100 }');
    assert.ok(delService >= 0, lines.join('\n'));
    assert.ok(!lines.some((l) => l.includes('cluster-ips')), 'the cluster IP still has port 80');
    assert.ok(
      !lines.some((l) => l.includes('hairpin-endpoints')),
      '10.42.0.5 is still an endpoint of port 80',
    );
    const flush = lines.findIndex((l) => l.startsWith('flush chain'));
    const del = lines.findIndex((l) => l.startsWith('delete chain'));
    assert.ok(flush > delService && del > flush, lines.join('\n'));
  });

  it('a full sync replaces the table in one transaction', () => {
    const script = fullSyncScript('skiff', cfg, [portProgram(port(), cfg, createSlotAllocator())]);
    assert.deepEqual(script.split('\n').slice(0, 3), [
      'add table ip skiff',
      'delete table ip skiff',
      'add table ip skiff',
    ]);
    assert.match(
      script,
      /add chain ip skiff nat-prerouting \{ type nat hook prerouting priority -100 ; policy accept ; \}/,
    );
    assert.match(script, /add rule ip skiff cluster-ips-check ip daddr 10\.43\.0\.0\/16 goto reject-chain/);
  });

  it('one table per service CIDR, `skiff` for the default one', () => {
    assert.equal(tableForServiceCIDR('10.43.0.0/16'), 'skiff');
    assert.equal(tableForServiceCIDR('10.96.0.0/12'), 'skiff-10-96-0-0-12');
  });

  it('two Services wanting one external IP and port: the first holds it, the other takes over when it goes', () => {
    const slots = createSlotAllocator();
    const first = portProgram(port({ externalIPs: ['198.18.9.9'] }), cfg, slots);
    const second = portProgram(
      port({
        key: 'ns/other:http',
        service: 'ns/other',
        clusterIP: '10.43.0.11',
        externalIPs: ['198.18.9.9'],
      }),
      cfg,
      slots,
    );
    const refs: ElementRefs = new Map();
    const full = fullSyncScript('skiff', cfg, [first, second], refs);
    // One element for the key in the whole transaction (two would fail it with "File exists").
    const serviceIPs = full.split('\n').find((l) => l.startsWith('add element ip skiff service-ips'))!;
    assert.equal(serviceIPs.match(/198\.18\.9\.9 \. tcp \. 80 :/g)?.length, 1, serviceIPs);
    const held = (e: { map: string; element: string }) => e.element.startsWith('198.18.9.9 ');
    const firstElement = first.elements.find((e) => e.map === 'service-ips' && held(e))!.element;
    const secondElement = second.elements.find((e) => e.map === 'service-ips' && held(e))!.element;
    assert.ok(serviceIPs.includes(firstElement));
    assert.deepEqual(contestedKeys(refs), [
      { key: 'service-ips|198.18.9.9 . tcp . 80', holder: firstElement, waiting: [secondElement] },
    ]);

    // The first goes: its element out, the second's in, in one transaction.
    const lines = partialSyncScript('skiff', [{ before: first, after: undefined }], refs)
      .trim()
      .split('\n');
    const del = lines.indexOf(
      'delete element ip skiff service-ips { 10.43.0.10 . tcp . 80, 198.18.9.9 . tcp . 80 }',
    );
    assert.ok(del >= 0, lines.join('\n'));
    const add = lines.findIndex(
      (l) => l.startsWith('add element ip skiff service-ips') && l.includes(secondElement),
    );
    assert.ok(add > del, lines.join('\n'));
    assert.deepEqual(contestedKeys(refs), []);
  });
});
