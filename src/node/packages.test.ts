import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ensurePackages, missingPackages, type NodePackage } from './packages.ts';

describe('node packages', () => {
  let dir: string;
  after(() => rm(dir, { recursive: true, force: true }));

  it('installs only what is missing, with apt-get update when the install fails, and is then a no-op', async () => {
    dir = await mkdtemp(join(tmpdir(), 'skiff-packages-'));
    const wanted: NodePackage[] = [
      { name: 'present', provides: ['/bin/sh'], why: 'already there' },
      { name: 'absent', provides: [join(dir, 'absent')], why: 'to be installed' },
    ];
    assert.deepEqual(
      missingPackages(wanted).map((p) => p.name),
      ['absent'],
    );
    const calls: string[] = [];
    const exec = async (cmd: string, args: string[], env: NodeJS.ProcessEnv) => {
      calls.push([cmd, ...args].join(' '));
      assert.equal(env.DEBIAN_FRONTEND, 'noninteractive');
      // The first install fails as on a machine without package lists.
      if (args[0] === 'install' && calls.length === 1) throw new Error('E: Unable to locate package absent');
      if (args[0] === 'install') await writeFile(join(dir, 'absent'), '');
    };
    const logged: string[] = [];
    const log = Object.assign((msg: string) => logged.push(msg), {
      warn: () => {},
      error: () => {},
      debug: () => {},
      with: () => log,
    }) as any;
    assert.deepEqual(await ensurePackages({ packages: wanted, exec, log, root: true }), ['absent']);
    assert.deepEqual(calls, [
      'apt-get install -y -q --no-install-recommends absent',
      'apt-get update -q',
      'apt-get install -y -q --no-install-recommends absent',
    ]);
    assert.ok(logged.includes('installing missing Debian packages'), 'says so');
    assert.deepEqual(await ensurePackages({ packages: wanted, exec, log, root: true }), []);
    assert.equal(calls.length, 3, 'nothing more to do');
  });

  it('tells a non-root user what to install instead of trying', async () => {
    const wanted: NodePackage[] = [{ name: 'nowhere', provides: ['/nonexistent/skiff'], why: 'a test' }];
    await assert.rejects(
      ensurePackages({
        packages: wanted,
        root: false,
        exec: async () => assert.fail('no apt-get without root'),
      }),
      /missing Debian packages: nowhere \(a test\); run as root, or: apt-get install nowhere/,
    );
  });
});
