// README command 1 and its undo, as a newcomer runs them: scripts/up.sh
// sets up and starts a whole cluster (server + agent on SQLite) in the
// background and waits for the node; a pod runs; scripts/uninstall.sh
// removes everything again. On its own data dir, port and ranges, so it
// never meets another cluster on this machine.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { eventually, freePort } from './harness.ts';

const run = promisify(execFile);
const root = new URL('../../', import.meta.url).pathname;
const CLUSTER_CIDR = '10.93.0.0/16';
const SERVICE_CIDR = '10.94.0.0/16';

describe('README command 1: scripts/up.sh, then scripts/uninstall.sh', { timeout: 600_000 }, () => {
  const dataDir = join(mkdtempSync(join(tmpdir(), 'skiff-up-')), 'data');
  const flags = ['--data-dir', dataDir, '--cluster-cidr', CLUSTER_CIDR, '--service-cidr', SERVICE_CIDR];
  const kubectl = (...args: string[]) =>
    run(join(root, 'bin/skiff'), ['kubectl', '--data-dir', dataDir, ...args], { timeout: 60_000 });
  let upOutput = '';

  before(async () => {
    const port = await freePort();
    const up = await run(
      'bash',
      // Free ingress ports: 80 and 443 on this machine are no test's to take.
      [
        join(root, 'scripts/up.sh'),
        ...flags,
        '--https-listen-port',
        String(port),
        '--ingress-http-port',
        String(await freePort()),
        '--ingress-https-port',
        String(await freePort()),
      ],
      {
        timeout: 540_000,
        maxBuffer: 16 * 1024 * 1024,
        // A test cluster must not repoint the machine's /usr/local/bin/skiff.
        env: { ...process.env, SKIFF_NO_LINKS: '1' },
      },
    );
    upOutput = up.stdout + up.stderr;
  });

  after(async () => {
    // Whatever happened above, leave nothing behind.
    if (existsSync(dataDir))
      await run('bash', [join(root, 'scripts/uninstall.sh'), ...flags]).catch(() => {});
  });

  it('starts the cluster, shows progress, and says how to use it', async () => {
    assert.match(upOutput, /waiting|starting/i);
    assert.match(upOutput, /node \S+ is Ready/);
    assert.match(upOutput, /skiff kubectl get nodes/);
    const nodes = (await kubectl('get', 'nodes')).stdout;
    assert.match(nodes, /\sReady\s+control-plane\s/);
  });

  it('runs a pod from an upstream-style manifest (image: busybox), offline', async () => {
    await kubectl('run', 'hello', '--image=busybox', '--', 'sleep', '3600');
    await eventually('the pod Running', async () =>
      (await kubectl('get', 'pod', 'hello', '-o', 'jsonpath={.status.phase}')).stdout === 'Running'
        ? true
        : undefined,
    );
    await kubectl('delete', 'pod', 'hello', '--wait=true');
  });

  it('uninstall removes the server, containers, network state and data', async () => {
    const out = await run('bash', [join(root, 'scripts/uninstall.sh'), ...flags], { timeout: 120_000 });
    assert.match(out.stderr, /done/);
    assert.equal(existsSync(dataDir), false);
    const tables = await run('nft', ['list', 'tables'])
      .then((r) => r.stdout)
      .catch(() => '');
    assert.doesNotMatch(tables, /skiff-10-94-0-0-16/);
    const bridges = (await run('ip', ['-o', 'link', 'show', 'type', 'bridge'])).stdout;
    assert.doesNotMatch(bridges, /skiff0a5d0000/, 'the pod bridge of 10.93.0.0/24');
    const procs = (await run('ps', ['-eo', 'args'])).stdout;
    assert.doesNotMatch(procs, new RegExp(dataDir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
  });
});
