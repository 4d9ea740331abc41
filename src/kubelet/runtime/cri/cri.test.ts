// The Runtime contract against a real containerd that the test starts the
// way the agent does (src/agent/runtime.ts), in a temp data dir: Skiff's
// offline images imported, the pod network on a test podCIDR. Needs root and
// the Debian packages scripts/setup.sh installs (containerd, runc,
// containernetworking-plugins; busybox-static, redis-server and gcc for the
// images).

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startContainerd, unmountUnder, writeRegistryHost } from '../../../agent/containerd.ts';
import { CRI_NAMESPACE, imagesDir, importImage } from '../../../agent/images.ts';
import { type NodeRuntime, startNodeRuntime } from '../../../agent/runtime.ts';
import { deleteBridge, routeTo } from '../../../network/cni.ts';
import { containerdPaths } from '../../../node/paths.ts';
import { runtimeContract } from '../runtime.case.ts';
import type { PodSandboxConfig } from '../runtime.ts';
import type { CriRuntime } from './cri.ts';

const run = promisify(execFile);

const freePort = () =>
  new Promise<number>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });

// A podCIDR inside the default cluster CIDR that no real node is given
// first (the node IPAM allocator hands out 10.42.0.0/24 upward), on a bridge
// of its own.
const POD_CIDR = '10.42.250.0/24';
const BRIDGE = 'skiffcri0';

let dataDir: string;
let node: NodeRuntime | undefined;

/** The node's runtime as the agent starts it: containerd, Skiff's offline images, no pod network yet. */
async function setup(): Promise<{ runtime: CriRuntime; dataDir: string }> {
  dataDir = await mkdtemp('/tmp/skiff-cri-');
  node = await startNodeRuntime({
    dataDir,
    clusterCIDR: '10.42.0.0/16',
    serviceCIDR: '10.43.0.0/16',
    bridge: BRIDGE,
  });
  return { runtime: node.runtime, dataDir };
}

async function teardown(): Promise<void> {
  await node?.stop();
  await unmountUnder(dataDir);
  await deleteBridge(BRIDGE);
  await rm(dataDir, { recursive: true, force: true });
}

// One containerd for the whole file: the checks specific to cri run first,
// then the contract, whose teardown stops containerd and cleans up.
let started: Promise<{ runtime: CriRuntime; dataDir: string }> | undefined;
const setupOnce = () => {
  started ??= setup();
  return started;
};

describe('cri runtime on containerd', () => {
  let rt: CriRuntime;
  let sandboxId = '';
  before(async () => {
    rt = (await setupOnce()).runtime;
  });
  after(async () => {
    if (sandboxId) {
      await rt.stopPodSandbox(sandboxId).catch(() => undefined);
      await rt.removePodSandbox(sandboxId).catch(() => undefined);
    }
  });

  it('has imported the offline images at start, under the names upstream examples use', async () => {
    const tags = (await rt.listImages()).flatMap((i) => i.repoTags);
    for (const name of [
      'localhost/skiff/pause:3.10',
      'docker.io/library/busybox:latest',
      'docker.io/library/redis:latest',
    ]) {
      assert.ok(tags.includes(name), `${name} in ${tags.join(', ')}`);
    }
    // `image: busybox` in a manifest means docker.io/library/busybox:latest.
    assert.ok(await rt.imageStatus({ image: 'busybox' }));
    assert.ok(await rt.imageStatus({ image: 'redis:latest' }));
  });

  it('uses an existing containerd with --container-runtime-endpoint, and skiff images import FILE imports into it', async () => {
    const existing = await startContainerd({ dataDir, containerRuntimeEndpoint: node!.containerd.endpoint });
    assert.equal(existing.process, undefined, 'starts no containerd of its own');
    await existing.stop(); // a no-op: the containerd is not ours to stop
    assert.equal((await rt.version()).runtimeName, 'containerd');

    await run('ctr', [
      '--address',
      existing.address,
      '-n',
      CRI_NAMESPACE,
      'images',
      'rm',
      'localhost/skiff/pause:3.10',
    ]);
    // containerd's CRI image cache learns of the removal asynchronously (an
    // event from its metadata store), so a loaded machine can still see it
    // for a moment.
    for (let i = 0; (await rt.imageStatus({ image: 'localhost/skiff/pause:3.10' })) !== undefined; i++) {
      assert.ok(i < 100, 'the removed image is gone from CRI within 10 s');
      await delay(100);
    }
    const main = fileURLToPath(new URL('../../../cli/main.ts', import.meta.url));
    const { stdout } = await run(process.execPath, [
      main,
      'images',
      'import',
      join(imagesDir(dataDir), 'pause.tar'),
      '--container-runtime-endpoint',
      existing.endpoint,
    ]);
    assert.equal(stdout.trim(), 'imported localhost/skiff/pause:3.10');
    for (let i = 0; (await rt.imageStatus({ image: 'localhost/skiff/pause:3.10' })) === undefined; i++) {
      assert.ok(i < 100, 'the imported image shows in CRI within 10 s');
      await delay(100);
    }
  });

  it('keeps pulls from public registries on the machine when offline', async () => {
    const started = Date.now();
    await assert.rejects(rt.pullImage({ image: 'skiff-never/absent:1' }), (err: Error) => {
      // docker.io's pull went to the node's image mirror on loopback (src/agent/mirror.ts),
      // which has no such image, not out to the internet.
      assert.match(err.message, /docker\.io\/skiff-never\/absent:1: not found$/);
      return true;
    });
    assert.ok(Date.now() - started < 30_000, 'failed promptly');
  });

  it('reports NetworkReady only once the node has its podCIDR', async () => {
    const ready = async () => Object.fromEntries((await rt.status()).map((c) => [c.type, c.status]));
    assert.deepEqual(await ready(), { RuntimeReady: true, NetworkReady: false });
    await node!.setPodCIDR(POD_CIDR);
    // containerd watches its CNI conf dir and reloads by itself.
    const deadline = Date.now() + 30_000;
    while (!(await ready()).NetworkReady && Date.now() < deadline) await delay(100);
    assert.deepEqual(await ready(), { RuntimeReady: true, NetworkReady: true });
  });

  it('routes the pod IP over the bridge, and the rest of the cluster and service ranges nowhere', async () => {
    sandboxId = await rt.runPodSandbox({
      metadata: { name: 'routes', uid: 'routes-uid', namespace: 'cri-test', attempt: 0 },
      hostname: 'routes',
      linux: {},
    });
    const ip = (await rt.podSandboxStatus(sandboxId)).network?.ip ?? '';
    assert.match(await routeTo(ip), new RegExp(`dev ${BRIDGE}\\b`));
    // Another node's podCIDR with no route of its own yet, and an unallocated Service IP.
    for (const unrouted of ['10.42.251.7', '10.43.200.1']) {
      const route = await routeTo(unrouted);
      assert.ok(!/\bvia\b|\bdev\b/.test(route), `${unrouted} must not be routed anywhere (${route})`);
      assert.match(route, /unreachable|No route to host/i);
    }
  });
});

// Real pulls: Debian's docker-registry on loopback, behind basic auth, as
// upstream's e2e tests pull private images with imagePullSecrets. The image
// is pushed there with ctr from the node's own busybox, so nothing is fetched
// from outside.
describe('cri pod network', () => {
  let rt: CriRuntime;
  const sandboxes: string[] = [];
  before(async () => {
    rt = (await setupOnce()).runtime;
  });
  after(async () => {
    for (const id of sandboxes) {
      await rt.stopPodSandbox(id).catch(() => undefined);
      await rt.removePodSandbox(id).catch(() => undefined);
    }
  });

  /** The first line a TCP server at host:port sends (only ever this machine's own addresses). */
  const readLine = (host: string, port: number) =>
    new Promise<string>((resolve, reject) => {
      const sock = connect({ host, port, timeout: 5_000 });
      let data = '';
      sock.on('data', (d) => {
        data += d.toString();
      });
      sock.on('end', () => resolve(data.trim()));
      sock.on('timeout', () => sock.destroy(new Error(`timed out reading ${host}:${port}`)));
      sock.on('error', reject);
    });

  it('serves a container port on the pod IP, and on the node through a hostPort (portmap)', async () => {
    const hostPort = await freePort();
    const config: PodSandboxConfig = {
      metadata: { name: 'web', uid: 'web-uid', namespace: 'cri-test', attempt: 0 },
      hostname: 'web',
      portMappings: [{ protocol: 'TCP', containerPort: 8080, hostPort }],
      linux: {},
    };
    const id = await rt.runPodSandbox(config);
    sandboxes.push(id);
    const container = await rt.createContainer(
      id,
      {
        metadata: { name: 'web', attempt: 0 },
        image: { image: 'busybox' },
        command: ['sh', '-c', 'while true; do echo "hello from $(hostname)" | nc -l -p 8080; done'],
      },
      config,
    );
    await rt.startContainer(container);
    const podIP = (await rt.podSandboxStatus(id)).network?.ip ?? '';
    // The node's own address (as a NodePort or hostPort client on the node would use), not the bridge's.
    const nodeIP = (await run('ip', ['-4', '-o', 'addr', 'show', 'scope', 'global'])).stdout
      .split('\n')
      .filter((line) => !line.includes(BRIDGE))
      .map((line) => line.match(/\binet (\S+)\//)?.[1])
      .find(Boolean);
    assert.ok(nodeIP, 'the node has an address');
    for (const [host, port] of [
      [podIP, 8080],
      [nodeIP, hostPort],
    ] as const) {
      let line = '';
      for (let i = 0; i < 100 && line !== 'hello from web'; i++) {
        line = await readLine(host, port).catch(() => '');
        if (line !== 'hello from web') await delay(100);
      }
      assert.equal(line, 'hello from web', `${host}:${port}`);
    }
  });
});

describe('cri image pulls from a registry with basic auth', () => {
  let rt: CriRuntime;
  let registry: ChildProcess | undefined;
  let registryDir: string;
  let image: string;
  const user = 'skiff';
  const password = 'pull-secret';

  before(async () => {
    rt = (await setupOnce()).runtime;
    registryDir = await mkdtemp('/tmp/skiff-registry-');
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    await run('htpasswd', ['-Bbc', join(registryDir, 'htpasswd'), user, password]);
    await writeFile(
      join(registryDir, 'config.yml'),
      [
        'version: 0.1',
        'log: { level: error }',
        `storage: { filesystem: { rootdirectory: ${join(registryDir, 'data')} } }`,
        `http: { addr: "${host}" }`,
        `auth: { htpasswd: { realm: skiff-test, path: ${join(registryDir, 'htpasswd')} } }`,
        '',
      ].join('\n'),
    );
    registry = spawn('docker-registry', ['serve', join(registryDir, 'config.yml')], { stdio: 'ignore' });
    for (let i = 0; ; i++) {
      const res = await fetch(`http://${host}/v2/`).catch(() => undefined);
      if (res?.status === 401) break;
      if (i > 300) assert.fail('docker-registry did not come up');
      await delay(100);
    }
    // The registry is plain HTTP: say so in containerd's hosts.toml, as a node's registry config would.
    await writeRegistryHost(containerdPaths(dataDir).registryConfigDir, host, { endpoint: `http://${host}` });

    image = `${host}/skiff/busybox:pulled`;
    const ctr = (...args: string[]) =>
      run('ctr', ['--address', node!.containerd.address, '--namespace', CRI_NAMESPACE, 'images', ...args]);
    await ctr('tag', 'docker.io/library/busybox:latest', image);
    await ctr('push', '--plain-http', '--user', `${user}:${password}`, image);
    await ctr('rm', image);
  });

  after(async () => {
    // By name only (not CRI RemoveImage, which would take busybox's tag with it).
    if (image) {
      await run('ctr', [
        '--address',
        node!.containerd.address,
        '-n',
        CRI_NAMESPACE,
        'images',
        'rm',
        image,
      ]).catch(() => undefined);
    }
    registry?.kill('SIGTERM');
    if (registryDir) await rm(registryDir, { recursive: true, force: true });
  });

  it('refuses a pull without credentials or with wrong ones', async () => {
    assert.equal(await rt.imageStatus({ image }), undefined, 'not present before the pull');
    await assert.rejects(rt.pullImage({ image }), /401|unauthori[sz]ed|authoriz/i);
    await assert.rejects(
      rt.pullImage({ image }, { username: user, password: 'wrong' }),
      /401|unauthori[sz]ed|authoriz/i,
    );
    assert.equal(await rt.imageStatus({ image }), undefined, 'still absent');
  });

  it('pulls with the registry credentials; RemoveImage by that tag removes the image under all its names', async () => {
    const ref = await rt.pullImage({ image }, { username: user, password });
    const status = await rt.imageStatus({ image });
    assert.ok(status, 'present after the pull');
    assert.ok(status.repoTags.includes(image), status.repoTags.join(', '));
    assert.ok(
      status.repoDigests.some((d) => d.startsWith(`${image.split(':pulled')[0]}@sha256:`)),
      status.repoDigests.join(', '),
    );
    assert.ok(ref === status.id || status.repoDigests.includes(ref), `imageRef ${ref}`);
    assert.equal(status.id, (await rt.imageStatus({ image: 'busybox' }))?.id, 'same image as the one pushed');

    // Removing an image by one tag removes it under all its names (api.proto),
    // busybox's included, since it is the same image.
    await rt.removeImage({ image });
    assert.equal(await rt.imageStatus({ image }), undefined, 'removed');
    assert.equal(await rt.imageStatus({ image: 'busybox' }), undefined, 'removed under its other tag too');
    // RemoveImage is idempotent (api.proto).
    await rt.removeImage({ image });
    // The airgap tarball brings busybox back, as an agent restart would.
    await importImage(node!.containerd.endpoint, join(imagesDir(dataDir), 'busybox.tar'));
    assert.ok(await rt.imageStatus({ image: 'busybox' }), 'busybox re-imported');
  });
});

runtimeContract('cri (containerd)', { runsProcesses: true }, async () => {
  const { runtime } = await setupOnce();
  return {
    runtime,
    podCIDR: POD_CIDR,
    busyboxImage: 'busybox',
    // Nothing listens on port 1 of loopback: the pull fails at once, and
    // never reaches out of the machine.
    absentImage: '127.0.0.1:1/skiff/absent:never',
    teardown,
  };
});
