import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLog } from '../util/log.ts';
import { startControllerManager } from './manager.ts';
import { newCidrSet, nodeIpamController } from './nodeipam.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

const podCIDR = async (t: ControllerTest, name: string) => {
  const node = await t.clients.nodes.get(undefined, name);
  return node.spec?.podCIDR;
};

describe('cidr set', () => {
  it('splits the cluster CIDR into node blocks and goes round after the last one handed out', () => {
    const set = newCidrSet('10.42.0.0/16', 24);
    assert.equal(set.size, 256);
    assert.equal(set.allocateNext(), '10.42.0.0/24');
    assert.equal(set.allocateNext(), '10.42.1.0/24');
    set.release('10.42.0.0/24');
    assert.equal(set.allocateNext(), '10.42.2.0/24', 'a released block is not reused at once');
    assert.equal(set.occupy('10.42.200.0/24'), true);
    assert.equal(set.occupy('10.43.0.0/24'), false, 'outside the range');
    assert.equal(set.occupy('10.42.3.0/25'), false, 'wrong size');
    assert.equal(set.used, 3);
  });

  it('runs out', () => {
    const set = newCidrSet('192.168.0.0/30', 31);
    assert.equal(set.allocateNext(), '192.168.0.0/31');
    assert.equal(set.allocateNext(), '192.168.0.2/31');
    assert.equal(set.allocateNext(), undefined);
  });
});

describe('node IPAM controller', () => {
  it('gives each node its own podCIDR once, skipping blocks nodes already hold', async () => {
    const t = await startControllerTest({ nodeipam: nodeIpamController });
    try {
      // A node that came with its podCIDR keeps it, and the block is taken.
      await t.clients.nodes.create(undefined, {
        metadata: { name: 'preset' },
        spec: { podCIDR: '10.42.0.0/24', podCIDRs: ['10.42.0.0/24'] },
      });
      await t.clients.nodes.create(undefined, { metadata: { name: 'a' } });
      await t.clients.nodes.create(undefined, { metadata: { name: 'b' } });
      const a = await t.until('a has a podCIDR', () => podCIDR(t, 'a'));
      const b = await t.until('b has a podCIDR', () => podCIDR(t, 'b'));
      assert.notEqual(a, b);
      assert.ok(![a, b].includes('10.42.0.0/24'), 'the preset block is not handed out again');
      const nodeA = await t.clients.nodes.get(undefined, 'a');
      assert.deepEqual(nodeA.spec?.podCIDRs, [a]);
      assert.match(a, /^10\.42\.\d+\.0\/24$/);

      // Updates leave it alone.
      await t.clients.nodes.patch(undefined, 'a', 'merge', { metadata: { labels: { x: 'y' } } });
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(await podCIDR(t, 'a'), a);
    } finally {
      await t.close();
    }
  });

  it('does not hand out a block twice after a restart, and reports CIDRNotAvailable when full', async () => {
    // A range of two blocks.
    const options = { clusterCIDR: '10.99.0.0/23', nodeCIDRMaskSize: 24 };
    const t = await startControllerTest({ nodeipam: nodeIpamController }, { options });
    await t.clients.nodes.create(undefined, { metadata: { name: 'zeta' } });
    const zeta = await t.until('zeta allocated', () => podCIDR(t, 'zeta'));
    assert.equal(zeta, '10.99.0.0/24');
    // Restart the controller over the same API server; a node registers
    // meanwhile, and sorts (and is listed) before the one that has a block.
    await t.manager.stop();
    await t.clients.nodes.create(undefined, { metadata: { name: 'alpha' } });
    const restarted = await startControllerManager({
      clients: t.clients,
      log: createLog({ component: 'controller-manager' }, () => {}),
      controllers: { nodeipam: nodeIpamController },
      options,
    });
    try {
      const alpha = await t.until('alpha allocated', () => podCIDR(t, 'alpha'));
      assert.equal(alpha, '10.99.1.0/24');

      await t.clients.nodes.create(undefined, { metadata: { name: 'omega' } });
      await t.until('CIDRNotAvailable event', async () => {
        const events = await t.clients.events.list('default');
        return events.items.some(
          (e) => e.reason === 'CIDRNotAvailable' && e.involvedObject?.name === 'omega',
        );
      });
      assert.equal(await podCIDR(t, 'omega'), undefined);

      // Deleting a node frees its block for the waiting one.
      await t.clients.nodes.delete(undefined, 'alpha');
      const omega = await t.until('omega allocated', () => podCIDR(t, 'omega'));
      assert.equal(omega, alpha);
    } finally {
      await restarted.stop();
      await t.server.close();
    }
  });
});
