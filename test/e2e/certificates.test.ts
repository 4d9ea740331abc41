// Certificate check and rotation (src/server/certificates.ts) on a real
// `skiff server`: `skiff certificate check` lists them; `skiff certificate
// rotate --service api-server` while a kubectl watch is open: the server
// serves the new certificate to new connections without a restart, the
// watch carries on and sees later changes, and kubectl, which trusts the
// unchanged CA, goes on working.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:tls';
import { eventually, kubectlPath, ok, type Skiff, skiffCli, startSkiff } from './harness.ts';

let skiff: Skiff;
let watch: ChildProcess | undefined;
before(async () => {
  skiff = await startSkiff();
});
after(async () => {
  watch?.kill('SIGTERM');
  await skiff?.stop();
});

/** The serial of the certificate the server shows a new connection. */
const servedSerial = () =>
  new Promise<string>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: skiff.port, rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate().serialNumber);
      s.destroy();
    });
    s.on('error', reject);
  });

const fileSerial = () =>
  new X509Certificate(readFileSync(join(skiff.dataDir, 'server/tls/serving-kube-apiserver.crt')))
    .serialNumber;

describe('certificates', () => {
  it('check lists the server’s certificates with their expiry', async () => {
    const r = await skiffCli(['certificate', 'check', '--data-dir', skiff.dataDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^FILENAME\s+SUBJECT\s+USAGES\s+EXPIRES\s+RESIDUAL TIME\s+STATUS/);
    assert.match(
      r.stdout,
      /server\/tls\/serving-kube-apiserver\.crt\s+CN=kube-apiserver\s+ServerAuth\s+\S+\s+36\dd\s+OK/,
    );
    assert.match(r.stdout, /server\/tls\/ca\.crt\s+CN=skiff-ca@\d+\s+CertSign/);
  });

  it('rotate: new connections get the new serving certificate at once; an open watch carries on', async () => {
    let out = '';
    watch = spawn(kubectlPath('1.32'), ['get', 'configmaps', '-n', 'default', '-w', '-o', 'name'], {
      env: { PATH: process.env.PATH ?? '', HOME: join(skiff.dataDir, 'home'), KUBECONFIG: skiff.kubeconfig },
    });
    watch.stdout?.on('data', (d) => (out += d));
    await ok(skiff, ['-n', 'default', 'create', 'configmap', 'before-rotate']);
    await eventually('the watch to see the first configmap', async () =>
      out.includes('configmap/before-rotate'),
    );
    const old = await servedSerial();
    assert.equal(old, fileSerial());

    const r = await skiffCli([
      'certificate',
      'rotate',
      '--service',
      'api-server',
      '--data-dir',
      skiff.dataDir,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /rotated .*serving-kube-apiserver\.crt/);
    const rotated = fileSerial();
    assert.notEqual(rotated, old);
    await eventually(
      'the server to serve the new certificate',
      async () => (await servedSerial()) === rotated,
      20_000,
    );
    assert.match(skiff.logs(), /serving certificate reloaded/);

    // The watch's connection, opened before, still delivers.
    await ok(skiff, ['-n', 'default', 'create', 'configmap', 'after-rotate']);
    await eventually('the open watch to see a change after the rotation', async () =>
      out.includes('configmap/after-rotate'),
    );
    assert.equal(watch.exitCode, null, 'the watch is still running');
    // A new kubectl, verifying against the unchanged CA, works.
    assert.match(await ok(skiff, ['get', 'namespaces']), /kube-system/);
  });
});
