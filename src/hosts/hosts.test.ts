import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planHosts } from './hosts.ts';
import { hostLink, hostsNetwork } from './netns.ts';

describe('hosts on one machine: names and addresses', () => {
  it('gives cluster id its own /24 of 198.18.0.0/16, bridge and namespaces', () => {
    assert.deepEqual(hostsNetwork(3), { bridge: 'skiffh3', gateway: '198.18.3.1', prefixLength: 24 });
    assert.deepEqual(hostLink(3, 0), { netns: 'skh3-0', address: '198.18.3.10' });
    assert.deepEqual(hostLink(3, 2), { netns: 'skh3-2', address: '198.18.3.12' });
    // Linux allows 15 characters for a link name; the largest id and index fit.
    assert.ok(hostLink(255, 199).netns.length <= 15);
    assert.ok(hostsNetwork(255).bridge.length <= 15);
    assert.throws(() => hostsNetwork(256), /0 to 255/);
    assert.throws(() => hostLink(0, -1), /0 to 199/);
  });

  it('runs the server on host 0 with its own node, and each agent joins it at that address', () => {
    const plan = planHosts({
      id: 5,
      dataDir: '/d',
      agents: 2,
      httpsPort: 7443,
      serverArgs: ['--node-monitor-grace-period', '15s'],
      skiff: ['skiff', []],
    });
    assert.equal(plan.server, 'https://198.18.5.10:7443');
    assert.equal(plan.kubeconfig, '/d/kubeconfig.yaml');
    assert.deepEqual(
      plan.hosts.map((h) => [h.node, h.role, h.link.address, h.dataDir]),
      [
        ['server', 'server', '198.18.5.10', '/d'],
        ['host-1', 'agent', '198.18.5.11', '/d/hosts/host-1'],
        ['host-2', 'agent', '198.18.5.12', '/d/hosts/host-2'],
      ],
    );
    const [server, agent] = plan.hosts;
    const flag = (argv: string[], name: string) => argv[argv.indexOf(name) + 1];
    assert.equal(flag(server!.argv, '--advertise-address'), '198.18.5.10');
    assert.equal(flag(server!.argv, '--node-ip'), '198.18.5.10');
    assert.equal(flag(server!.argv, '--node-monitor-grace-period'), '15s');
    assert.equal(flag(agent!.argv, '--server'), 'https://198.18.5.10:7443');
    assert.equal(flag(agent!.argv, '--token-file'), '/d/node-token');
    assert.equal(flag(agent!.argv, '--node-name'), 'host-1');
    assert.equal(flag(agent!.argv, '--node-ip'), '198.18.5.11');
    assert.equal(flag(agent!.argv, '--data-dir'), '/d/hosts/host-1');
    // Each host's pods in a cgroup tree of its own.
    assert.equal(flag(server!.argv, '--kubelet-arg'), 'cgroup-root=/skiff-h5-server');
    assert.equal(flag(agent!.argv, '--kubelet-arg'), 'cgroup-root=/skiff-h5-host-1');
    assert.equal(flag(plan.hosts[2]!.argv, '--kubelet-arg'), 'cgroup-root=/skiff-h5-host-2');
  });
});
