// `skiff kubectl`: which kubeconfig and which kubectl it runs. The e2e
// guestbook test (test/e2e/guestbook.test.ts) runs it against a real server.

import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { defaultDataDir, findKubectl, planKubectl } from './kubectl.ts';

describe('skiff kubectl', () => {
  it("points kubectl at the data dir's admin kubeconfig", () => {
    assert.deepEqual(planKubectl(['get', 'nodes'], {}), {
      args: ['get', 'nodes'],
      kubeconfig: join(defaultDataDir(), 'kubeconfig.yaml'),
    });
    assert.deepEqual(planKubectl(['--data-dir', '/d', 'get', 'pods'], {}), {
      args: ['get', 'pods'],
      kubeconfig: '/d/kubeconfig.yaml',
    });
    assert.deepEqual(planKubectl(['--data-dir=/d', 'version'], {}), {
      args: ['version'],
      kubeconfig: '/d/kubeconfig.yaml',
    });
  });

  it('leaves an explicit KUBECONFIG or --kubeconfig alone, as k3s kubectl does', () => {
    assert.deepEqual(planKubectl(['get', 'nodes'], { KUBECONFIG: '/mine' }), { args: ['get', 'nodes'] });
    assert.deepEqual(planKubectl(['--kubeconfig=/x', 'get', 'nodes'], {}), {
      args: ['--kubeconfig=/x', 'get', 'nodes'],
    });
    assert.deepEqual(planKubectl(['get', 'nodes', '--kubeconfig', '/x'], {}), {
      args: ['get', 'nodes', '--kubeconfig', '/x'],
    });
    // --data-dir names a cluster explicitly, so it beats an ambient KUBECONFIG.
    assert.deepEqual(planKubectl(['--data-dir', '/d', 'get', 'nodes'], { KUBECONFIG: '/mine' }), {
      args: ['get', 'nodes'],
      kubeconfig: '/d/kubeconfig.yaml',
    });
    // A later --data-dir is kubectl's business (it will reject it), not ours.
    assert.deepEqual(planKubectl(['get', '--data-dir', '/d'], {}).args, ['get', '--data-dir', '/d']);
  });

  it('finds the first executable kubectl on PATH', () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-kubectl-'));
    try {
      const a = join(dir, 'a');
      const b = join(dir, 'b');
      mkdirSync(a);
      mkdirSync(b);
      writeFileSync(join(a, 'kubectl'), 'not executable');
      writeFileSync(join(b, 'kubectl'), '#!/bin/sh\n');
      chmodSync(join(b, 'kubectl'), 0o755);
      assert.equal(findKubectl(`${a}:${b}`), join(b, 'kubectl'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
