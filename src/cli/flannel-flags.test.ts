import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { flannelOptions } from './flannel-flags.ts';

describe('the pod network flags', () => {
  it('leave the backend unset when not given, so an agent takes its server’s', () => {
    assert.deepEqual(flannelOptions({}), {});
    assert.deepEqual(flannelOptions({ 'flannel-backend': 'host-gw', 'flannel-iface': 'eth1' }), {
      flannelBackend: 'host-gw',
      flannelIface: 'eth1',
    });
  });

  it('refuse an unknown backend, and --flannel-external-ip without --node-external-ip', () => {
    assert.deepEqual(flannelOptions({ 'flannel-backend': 'gre' }), {
      error: '--flannel-backend must be vxlan, host-gw, none, not gre',
    });
    assert.deepEqual(flannelOptions({ 'flannel-external-ip': true }), {
      error: '--flannel-external-ip needs --node-external-ip',
    });
    assert.deepEqual(flannelOptions({ 'flannel-external-ip': true, 'node-external-ip': '198.18.9.1' }), {
      nodeExternalIP: '198.18.9.1',
      flannelExternalIP: true,
    });
  });
});
