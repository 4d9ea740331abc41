// The pod network across nodes on a real node: `skiff server` with its cri
// agent builds the VXLAN overlay's local side, publishes flannel's
// annotations on its own Node (read here with the real kubectl), probes its
// (zero) peers and reports NetworkUnavailable False; `skiff check network`
// prints the table; `skiff agent --cleanup` removes the VTEP and the
// masquerade table. Cross-node traffic itself is the contract suite's
// (src/network/*.netns.test.ts), which has several hosts.
//
// Needs root and what scripts/setup.sh installs. Run under the shared lock
// (it creates skiff.1 and an nft table in the machine's own namespace).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, ok, type Skiff, skiffCli, startSkiff } from './harness.ts';

const CLUSTER_CIDR = '10.87.0.0/16';
const SERVICE_CIDR = '10.86.0.0/16';

interface NodeJSON {
  metadata: { name: string; annotations?: Record<string, string> };
  spec: { podCIDR?: string };
  status: {
    addresses?: { type: string; address: string }[];
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

const sh = (cmd: string, args: string[]) => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    return '';
  }
};

describe('the pod network across nodes on a real node', () => {
  let skiff: Skiff;
  let node: NodeJSON;

  before(async () => {
    skiff = await startSkiff([
      '--no-disable-agent',
      '--cluster-cidr',
      CLUSTER_CIDR,
      '--service-cidr',
      SERVICE_CIDR,
    ]);
    node = await eventually(
      'the Node reports NetworkUnavailable',
      async () => {
        const list = JSON.parse(await ok(skiff, ['get', 'nodes', '-o', 'json'])) as { items: NodeJSON[] };
        const n = list.items[0];
        return n?.status.conditions?.some((c) => c.type === 'NetworkUnavailable') ? n : undefined;
      },
      90_000,
    ).catch((err) => {
      throw new Error(`${err}\n${skiff.logs().slice(-4000)}`);
    });
  });

  after(async () => {
    await skiff?.stop();
  });

  it('publishes flannel’s backend annotations on its own Node', () => {
    const a = node.metadata.annotations ?? {};
    const internalIP = node.status.addresses?.find((x) => x.type === 'InternalIP')?.address;
    assert.equal(a['flannel.alpha.coreos.com/backend-type'], 'vxlan');
    assert.equal(a['flannel.alpha.coreos.com/public-ip'], internalIP);
    const data = JSON.parse(a['flannel.alpha.coreos.com/backend-data'] ?? '{}');
    assert.equal(data.VNI, 1);
    const link = sh('ip', ['-d', 'link', 'show', 'skiff.1']);
    assert.match(link, new RegExp(`link/ether ${data.VtepMAC}`), link);
    assert.match(link, /vxlan id 1 .*dstport 8472/);
    assert.match(link, /nolearning/);
  });

  it('reports NetworkUnavailable False, and gives pods the overlay’s MTU', () => {
    const c = node.status.conditions?.find((x) => x.type === 'NetworkUnavailable');
    assert.equal(c?.status, 'False');
    assert.equal(c?.reason, 'OverlayPeersReachable');
    const vtepMTU = Number(/ mtu (\d+)/.exec(sh('ip', ['link', 'show', 'skiff.1']))?.[1]);
    const conflist = JSON.parse(
      readFileSync(join(skiff.dataDir, 'agent', 'cni', 'net.d', '10-skiff.conflist'), 'utf8'),
    );
    assert.equal(conflist.plugins[0].mtu, vtepMTU);
    assert.match(c?.message ?? '', new RegExp(`MTU ${vtepMTU}`));
  });

  it('skiff check network prints the node and its MTU, and exits 0', async () => {
    const r = await skiffCli(['check', 'network', '--kubeconfig', skiff.kubeconfig]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /FROM \\ TO/);
    assert.match(r.stdout, new RegExp(`${node.metadata.name}\\s+vxlan\\s+\\S+\\s+\\d+\\s+False`));
  });

  it("skiff agent --cleanup removes the VTEP and this cluster's masquerade table", async () => {
    // Before: the table of this cluster's pod range, not the default cluster's.
    const tables = () =>
      sh('nft', ['list', 'tables'])
        .split('\n')
        .map((l) => l.trim());
    assert.ok(tables().includes('table ip skiff-overlay-10-87-0-0-16'), tables().join(', '));
    await skiff.stop();
    assert.equal(sh('ip', ['link', 'show', 'skiff.1']), '');
    assert.ok(!tables().includes('table ip skiff-overlay-10-87-0-0-16'), tables().join(', '));
  });
});
