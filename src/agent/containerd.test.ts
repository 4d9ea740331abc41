import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { containerdPaths, PAUSE_IMAGE } from '../node/paths.ts';
import { containerdConfig, socketPath } from './containerd.ts';

describe('containerd config', () => {
  const paths = containerdPaths('/var/lib/skiff');
  const config = containerdConfig(paths, { cniBinDir: '/usr/lib/cni' });

  it('keeps all of containerd under the data dir', () => {
    assert.equal(paths.socket, '/var/lib/skiff/agent/containerd/containerd.sock');
    assert.match(config, /^root = "\/var\/lib\/skiff\/agent\/containerd\/root"$/m);
    assert.match(config, /^state = "\/var\/lib\/skiff\/agent\/containerd\/state"$/m);
    assert.match(config, /^ {2}address = "\/var\/lib\/skiff\/agent\/containerd\/containerd.sock"$/m);
    assert.match(config, /^ {2}Root = "\/var\/lib\/skiff\/agent\/containerd\/runc"$/m);
  });

  it('runs CRI with runc, restrict_oom_score_adj, Skiff pause image and our CNI dirs', () => {
    assert.match(config, /restrict_oom_score_adj = true/);
    assert.match(config, /runtime_type = "io.containerd.runc.v2"/);
    assert.match(config, /SystemdCgroup = false/);
    assert.ok(config.includes(`sandbox_image = "${PAUSE_IMAGE}"`));
    assert.ok(PAUSE_IMAGE.startsWith('localhost/'), 'a missing pause image is never pulled from outside');
    assert.match(config, /bin_dir = "\/usr\/lib\/cni"/);
    assert.match(config, /conf_dir = "\/var\/lib\/skiff\/agent\/cni\/net.d"/);
    assert.match(config, /max_conf_num = 1/);
  });

  it('reads unix endpoints as socket paths', () => {
    assert.equal(socketPath('unix:///run/containerd/containerd.sock'), '/run/containerd/containerd.sock');
    assert.equal(socketPath('/run/containerd/containerd.sock'), '/run/containerd/containerd.sock');
  });
});
