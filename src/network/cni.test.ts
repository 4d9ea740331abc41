import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CNI_CONFIG_FILE, podNetworkConfig, writePodNetworkConfig } from './cni.ts';

describe('pod network config', () => {
  const dirs: string[] = [];
  after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it('is a bridge with host-local IPAM on the podCIDR, then portmap for hostPorts', () => {
    const conf = podNetworkConfig({ podCIDR: '10.42.3.0/24', ipamDataDir: '/data/cni/networks' }) as any;
    assert.equal(conf.cniVersion, '1.0.0');
    assert.deepEqual(
      conf.plugins.map((p: { type: string }) => p.type),
      ['bridge', 'portmap'],
    );
    const [bridge, portmap] = conf.plugins;
    assert.equal(bridge.bridge, 'skiff0');
    assert.equal(bridge.isGateway, true);
    assert.equal(bridge.hairpinMode, true);
    assert.deepEqual(bridge.ipam.ranges, [[{ subnet: '10.42.3.0/24' }]]);
    assert.equal(bridge.ipam.type, 'host-local');
    assert.equal(bridge.ipam.dataDir, '/data/cni/networks');
    assert.deepEqual(portmap.capabilities, { portMappings: true });
  });

  it('is written atomically as the only config in the conf dir', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'skiff-cni-'));
    dirs.push(dir);
    const confDir = join(dir, 'net.d');
    await writePodNetworkConfig(confDir, { podCIDR: '10.42.0.0/24', ipamDataDir: join(dir, 'ipam') });
    // A config from elsewhere would compete with ours (containerd loads only the first).
    await writeFile(join(confDir, '05-other.conflist'), '{}');
    const file = await writePodNetworkConfig(confDir, {
      podCIDR: '10.42.7.0/24',
      bridge: 'br-test',
      ipamDataDir: join(dir, 'ipam'),
    });
    assert.deepEqual(await readdir(confDir), [CNI_CONFIG_FILE]);
    const conf = JSON.parse(await readFile(file, 'utf8'));
    assert.equal(conf.plugins[0].bridge, 'br-test');
    assert.equal(conf.plugins[0].ipam.ranges[0][0].subnet, '10.42.7.0/24');
  });
});
