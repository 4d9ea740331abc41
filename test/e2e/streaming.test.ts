// Streaming end to end: the real kubectl (1.27, 1.32, 1.33) against `skiff
// server` with its agent running busybox pods in containerd. kubectl logs,
// exec (with stdin, with a TTY, exit codes), cp, attach and port-forward go
// kubectl → API server (pods/log, exec, attach, portforward) → kubelet
// server on 10250 → containerd's streaming server.
//
// kubectl 1.27 speaks SPDY/3.1, which is proxied through to containerd.
// 1.32 and 1.33 speak WebSocket (v5.channel.k8s.io for exec/attach/cp, SPDY
// tunnelled over WebSocket for port-forward), which the API server
// translates; the tests check that they do not fall back to SPDY.
//
// Needs root and what scripts/setup.sh installs (containerd, runc, CNI
// plugins, Skiff's offline busybox image).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import {
  eventually,
  freePort,
  KUBECTL_VERSIONS,
  kubectlPath,
  ok,
  type Skiff,
  startSkiff,
} from './harness.ts';

let skiff: Skiff;

const pod = (
  name: string,
  command: string,
  opts: { restartPolicy?: string; container?: string } = {},
) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: ${opts.restartPolicy ?? 'Always'}
  containers:
  - name: main
    image: busybox
    imagePullPolicy: IfNotPresent
    command: [sh, -c, '${command}']
${opts.container ?? ''}`;

async function running(name: string): Promise<void> {
  await eventually(
    `pod ${name} Running`,
    async () => (await ok(skiff, ['get', 'pod', name, '-o', 'jsonpath={.status.phase}'])) === 'Running',
    90_000,
  );
}

before(async () => {
  // Its own ranges, so it never shares a bridge, nft table or DNS address
  // with another cluster on the machine (README command 1's, for one).
  skiff = await startSkiff([
    '--no-disable-agent',
    '--cluster-cidr',
    '10.76.0.0/16',
    '--service-cidr',
    '10.77.0.0/16',
  ]);
  await eventually(
    'the node Ready',
    async () => (await ok(skiff, ['get', 'nodes', '--no-headers'])).includes(' Ready '),
    120_000,
  );
  await ok(skiff, ['apply', '-f', '-'], {
    input: [
      pod('counter', 'echo to stderr >&2; sleep 1; for i in 1 2 3; do echo line $i; done; sleep 3600'),
      pod('shell', 'sleep 3600'),
      pod('web', 'mkdir -p /www && echo hello from httpd > /www/index.html && httpd -f -p 8080 -h /www', {
        container: '    ports: [{containerPort: 8080}]\n',
      }),
      `apiVersion: v1
kind: Pod
metadata:
  name: two
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: first, image: busybox, imagePullPolicy: IfNotPresent, command: [sh, -c, 'echo I am first; echo first > /tmp/who; sleep 3600']}
  - {name: second, image: busybox, imagePullPolicy: IfNotPresent, command: [sh, -c, 'echo I am second; echo second > /tmp/who; sleep 3600']}
`,
    ].join('---\n'),
  });
  for (const name of ['counter', 'shell', 'web', 'two']) await running(name);
});

after(async () => {
  if (skiff) {
    await skiff.kubectl(['delete', 'pods', '--all', '--grace-period=1', '--wait=true'], {
      timeoutMs: 60_000,
    });
    await skiff.stop();
  }
});

describe('kubectl logs', () => {
  for (const version of KUBECTL_VERSIONS) {
    it(`kubectl ${version}: logs, --tail, --timestamps, -c, --since and a missing container`, async () => {
      const k = (args: string[]) => ok(skiff, args, { version });
      await eventually('the counter output', async () => (await k(['logs', 'counter'])).includes('line 3'));
      assert.equal(await k(['logs', 'counter']), 'to stderr\nline 1\nline 2\nline 3\n');
      assert.equal(await k(['logs', 'counter', '--tail=2']), 'line 2\nline 3\n');
      assert.match(
        await k(['logs', 'counter', '--tail=1', '--timestamps']),
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line 3\n$/,
      );
      assert.equal(await k(['logs', 'two', '-c', 'second']), 'I am second\n');
      assert.equal(await k(['logs', 'counter', '--since=1h']), 'to stderr\nline 1\nline 2\nline 3\n');
      const missing = await skiff.kubectl(['logs', 'counter', '-c', 'nope'], { version });
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr, /container nope is not valid for pod counter/);
    });
  }

  it('logs -f follows the output until the container exits; --previous reads the one before a restart', async () => {
    await ok(skiff, ['apply', '-f', '-'], {
      input: pod('ticker', 'for i in 1 2 3; do echo tick $i; sleep 1; done', { restartPolicy: 'Never' }),
    });
    await eventually('ticker started', async () => {
      const phase = await ok(skiff, ['get', 'pod', 'ticker', '-o', 'jsonpath={.status.phase}']);
      return phase === 'Running' || phase === 'Succeeded';
    });
    assert.equal(
      await ok(skiff, ['logs', '-f', 'ticker'], { timeoutMs: 60_000 }),
      'tick 1\ntick 2\ntick 3\n',
    );

    await ok(skiff, ['apply', '-f', '-'], {
      input: pod('crasher', 'echo run $RANDOM; sleep 2; exit 1'),
    });
    await eventually(
      'crasher restarted',
      async () =>
        Number(
          await ok(skiff, [
            'get',
            'pod',
            'crasher',
            '-o',
            'jsonpath={.status.containerStatuses[0].restartCount}',
          ]),
        ) >= 1,
      90_000,
    );
    const previous = await ok(skiff, ['logs', 'crasher', '--previous']);
    assert.match(previous, /^run \d+\n$/);
  });
});

describe('kubectl exec, cp and attach', () => {
  for (const version of KUBECTL_VERSIONS) {
    it(`kubectl ${version}: exec a command, with stdin, with its exit code, and with a TTY`, async () => {
      assert.equal(await ok(skiff, ['exec', 'shell', '--', 'echo', 'hi'], { version }), 'hi\n');
      // 1.32+ talk WebSocket (v5.channel.k8s.io, which the API server translates to SPDY for
      // containerd), with no fallback to SPDY.
      if (version !== '1.27') {
        const verbose = await skiff.kubectl(['exec', 'shell', '-v=6', '--', 'true'], { version });
        assert.match(verbose.stderr, /subprotocol is v5\.channel\.k8s\.io/);
        assert.doesNotMatch(verbose.stderr, /fallback/i);
      }
      assert.equal(
        await ok(skiff, ['exec', '-i', 'shell', '--', 'cat'], { version, input: 'through stdin\n' }),
        'through stdin\n',
      );
      const stderr = await skiff.kubectl(['exec', 'shell', '--', 'sh', '-c', 'echo oops >&2; exit 3'], {
        version,
      });
      assert.equal(stderr.code, 3, stderr.stderr);
      assert.match(stderr.stderr, /oops/);
      // Each container has its own PID namespace (no shareProcessNamespace):
      // PID 1 is the container's own command, not the sandbox's pause.
      assert.doesNotMatch(
        await ok(skiff, ['exec', 'shell', '--', 'cat', '/proc/1/cmdline'], { version }),
        /pause/,
      );
      // Each container has its own file system: -c picks which.
      assert.equal(
        await ok(skiff, ['exec', 'two', '-c', 'second', '--', 'cat', '/tmp/who'], { version }),
        'second\n',
      );
      // -it needs a terminal on kubectl's side: script(1) gives it one.
      const tty = await promisify(execFile)(
        'script',
        ['-qec', `${kubectlPath(version)} exec -it shell -- sh -c 'tty; exit 0'`, '/dev/null'],
        {
          env: {
            PATH: process.env.PATH ?? '',
            HOME: join(skiff.dataDir, 'home'),
            KUBECONFIG: skiff.kubeconfig,
          },
          timeout: 30_000,
        },
      );
      assert.match(tty.stdout, /\/dev\/pts\/\d+/);
    });

    it(`kubectl ${version}: cp a file into the container and back`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'skiff-cp-'));
      writeFileSync(join(dir, 'in.txt'), `copied by ${version}\n`);
      await ok(skiff, ['cp', join(dir, 'in.txt'), `shell:/tmp/in-${version}.txt`], { version });
      assert.equal(
        await ok(skiff, ['exec', 'shell', '--', 'cat', `/tmp/in-${version}.txt`]),
        `copied by ${version}\n`,
      );
      await ok(skiff, ['cp', `shell:/tmp/in-${version}.txt`, join(dir, 'out.txt')], { version });
      assert.equal(readFileSync(join(dir, 'out.txt'), 'utf8'), `copied by ${version}\n`);
    });

    it(`kubectl ${version}: attach -i talks to the container's own stdin`, async () => {
      const name = `attach-${version.replace('.', '-')}`;
      await ok(skiff, ['apply', '-f', '-'], {
        input: pod(name, 'read line; echo got $line', {
          restartPolicy: 'Never',
          container: '    stdin: true\n    stdinOnce: true\n',
        }),
      });
      await running(name);
      const out = await ok(skiff, ['attach', '-i', name], { version, input: 'hello\n', timeoutMs: 60_000 });
      assert.match(out, /got hello/);
    });
  }
});

describe('kubectl debug', () => {
  // The target runs a command no other container runs, so seeing it proves
  // the debug container shares the target's PID namespace.
  const jsonpath = (path: string) => ['get', 'pod', 'debugee', '-o', `jsonpath={${path}}`];
  const ephemeral = (name: string, field: string) =>
    ok(skiff, jsonpath(`.status.ephemeralContainerStatuses[?(@.name=="${name}")].${field}`));
  let appID = '';
  before(async () => {
    await ok(skiff, ['apply', '-f', '-'], {
      input: pod('debugee', 'exec sleep 7777').replace('name: main', 'name: app'),
    });
    await running('debugee');
    appID = await ok(skiff, jsonpath('.status.containerStatuses[0].containerID'));
    assert.match(appID, /^containerd:\/\//);
  });

  async function appUntouched(): Promise<void> {
    assert.equal(await ok(skiff, jsonpath('.status.containerStatuses[0].containerID')), appID);
    assert.equal(await ok(skiff, jsonpath('.status.containerStatuses[0].restartCount')), '0');
    assert.equal(await ok(skiff, jsonpath('.status.phase')), 'Running');
  }

  for (const version of KUBECTL_VERSIONS) {
    it(`kubectl ${version}: debug --target adds a running ephemeral container that sees the target's processes`, async () => {
      const name = `dbg-${version.replace('.', '-')}`;
      await ok(
        skiff,
        [
          'debug',
          'debugee',
          '--image=busybox',
          `--container=${name}`,
          '--target=app',
          '--',
          'sh',
          '-c',
          'echo hello from debug; ps -o pid,args; sleep 3600',
        ],
        { version },
      );
      await eventually(
        `${name} running`,
        async () => (await ephemeral(name, 'state.running.startedAt')) !== '',
      );
      assert.equal(await ephemeral(name, 'ready'), 'false');
      assert.equal(await ephemeral(name, 'restartCount'), '0');
      assert.match(await ephemeral(name, 'containerID'), /^containerd:\/\/[0-9a-f]{64}$/);
      assert.match(await ephemeral(name, 'image'), /busybox/);
      assert.match(await ephemeral(name, 'imageID'), /sha256:/);
      await eventually(`${name} logs`, async () =>
        /sleep 7777/.test(await ok(skiff, ['logs', 'debugee', '-c', name], { version })),
      );
      const logs = await ok(skiff, ['logs', 'debugee', '-c', name], { version });
      assert.match(logs, /^hello from debug\n/);
      // PID 1 of the shared namespace is the target's own command.
      assert.match(logs, /\n\s*1 sleep 7777\n/);
      // exec reaches the ephemeral container too.
      assert.equal(
        await ok(skiff, ['exec', 'debugee', '-c', name, '--', 'cat', '/proc/1/cmdline'], { version }),
        'sleep\u00007777\u0000',
      );
      await appUntouched();
    });
  }

  for (const version of KUBECTL_VERSIONS) {
    it(`kubectl ${version}: debug -i attaches to the new container; once it exits it is never started again`, async () => {
      const name = `dbg-i-${version.replace('.', '-')}`;
      const child = execFile(
        kubectlPath(version),
        ['debug', '-i', 'debugee', '--image=busybox', `--container=${name}`, '--target=app', '--', 'sh'],
        {
          env: {
            PATH: process.env.PATH ?? '',
            HOME: join(skiff.dataDir, 'home'),
            KUBECONFIG: skiff.kubeconfig,
          },
          timeout: 90_000,
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout?.on('data', (d) => (stdout += d));
      child.stderr?.on('data', (d) => (stderr += d));
      // stdin stays open until the shell exits: containerd (as docker) ends
      // an attach to a container without stdinOnce when its stdin closes.
      child.stdin?.write('echo attached; ps -o pid,args; exit 0\n');
      const code = await new Promise((r) => child.on('exit', r));
      child.stdin?.destroy();
      assert.equal(code, 0, stderr);
      // Attached, not kubectl's fallback to the container's logs.
      assert.doesNotMatch(stderr, /couldn't attach/);
      assert.match(stdout, /attached/, stderr);
      assert.match(stdout, /\n\s*1 sleep 7777\n/);
      await eventually(
        `${name} terminated`,
        async () => (await ephemeral(name, 'state.terminated.reason')) !== '',
      );
      assert.equal(await ephemeral(name, 'state.terminated.exitCode'), '0');
      // A container of this pod (restartPolicy Always) that exited for the
      // first time would be started again at once, at the kubelet's next
      // relist; an ephemeral one never is.
      await new Promise((r) => setTimeout(r, 3000));
      assert.equal(await ephemeral(name, 'restartCount'), '0');
      assert.equal(await ephemeral(name, 'state.terminated.exitCode'), '0');
      assert.match(await ok(skiff, ['logs', 'debugee', '-c', name]), /attached/);
      await appUntouched();
    });
  }
});

describe('kubectl port-forward', () => {
  for (const version of KUBECTL_VERSIONS) {
    it(`kubectl ${version}: connections reach a port of the pod`, async () => {
      const port = await freePort();
      const child = execFile(kubectlPath(version), ['port-forward', 'pod/web', `${port}:8080`, '-v=6'], {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: join(skiff.dataDir, 'home'),
          KUBECONFIG: skiff.kubeconfig,
        },
      });
      let log = '';
      child.stderr?.on('data', (d) => (log += d));
      child.stdout?.on('data', (d) => (log += d));
      try {
        await eventually(`port-forward with kubectl ${version}`, async () => {
          const res = await fetch(`http://127.0.0.1:${port}/`);
          return (await res.text()) === 'hello from httpd\n';
        });
        // A second connection through the same session.
        assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'hello from httpd\n');
        // 1.32+ tunnel SPDY through a WebSocket (a GET upgrade); 1.27 upgrades to SPDY (a POST).
        const upgrade =
          version === '1.27'
            ? /POST https:\S+\/portforward/
            : /GET"? url="?https:\S+\/portforward|GET https:\S+\/portforward/;
        assert.match(log, upgrade);
        assert.doesNotMatch(log, /fallback/i);
      } finally {
        child.kill('SIGTERM');
      }
    });
  }
});
