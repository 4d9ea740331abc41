// Private registries end to end (issue 14, "Registries"): a one-node
// cluster started with `--private-registry registries.yaml` pulls, through
// the real kubectl and containerd, an image the node never had from Debian's
// docker-registry behind TLS (its own CA, and a client certificate it
// requires) and basic auth.
//
// The image is pushed by this test over the distribution API: the offline
// busybox with one more layer (/marker.txt) and its own config, so neither
// its manifest, its config nor that layer is on the node. The registry runs
// on a host of its own (a network namespace on a bridge, 198.18.45.0/24,
// as src/hosts makes them), another machine as far as the node can tell,
// reached at two of the host's addresses, so one cluster shows both outcomes:
//   good.registry.test → https://198.18.45.11:PORT, the right password;
//   bad.registry.test  → https://198.18.45.12:PORT, a wrong one;
//   rewrite.registry.test → https://198.18.45.11:PORT with a rewrite
//     (library/marker → skiff/marker), applied by the agent's rewrite proxy.
// With --disable-default-registry-endpoint, neither *.registry.test name is
// ever looked up itself. The offline images still run beside them.
//
// Needs root and what scripts/setup.sh installs (containerd, runc, CNI
// plugins, docker-registry, apache2-utils' htpasswd, Skiff's offline
// images). Runs under the machine's shared lock (flock /tmp/skiff-real.lock).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { unmountUnder } from '../../src/agent/containerd.ts';
import { BUILT_IMAGES_DIR } from '../../src/agent/images.ts';
import { MEDIA_TYPE_OCI_MANIFEST, readTarMembers } from '../../src/agent/mirror.ts';
import { podBridgeName } from '../../src/agent/runtime.ts';
import { addHost, deleteHost, ensureBridge, hostLink, hostsNetwork } from '../../src/hosts/netns.ts';
import { deleteBridge } from '../../src/network/cni.ts';
import { eventually, freePort, ok, type Skiff, startSkiff } from './harness.ts';
import { pushBlob, pushManifest, startTestRegistry, type TestRegistry } from './registry.ts';

const run = promisify(execFile);
const CLUSTER_CIDR = '10.187.0.0/16';
const SERVICE_CIDR = '10.188.0.0/16';
/** The registry's host: this file's own bridge skiffh45 and namespace skh45-1. */
const REGISTRY_NET = hostsNetwork(45);
const REGISTRY_HOST = hostLink(45, 1);
const GOOD_IP = REGISTRY_HOST.address;
const BAD_IP = '198.18.45.12';
const NS = 'registries-e2e';
const MARKER = 'pulled from the private registry';
const REPOSITORY = 'skiff/marker';

let skiff: Skiff | undefined;
let registry: TestRegistry | undefined;
let workDir = '';
let podCIDR = '';

/** The offline busybox's manifest and blobs, read from its OCI layout tarball in place. */
async function readBusybox(): Promise<{ manifest: OciManifest; blobs: Map<string, Buffer> }> {
  const fh = await open(join(BUILT_IMAGES_DIR, 'busybox.tar'));
  try {
    const members = await readTarMembers(fh);
    const read = async (name: string) => {
      const m = members.get(name);
      if (!m) throw new Error(`busybox.tar has no ${name}`);
      const buf = Buffer.alloc(m.size);
      await fh.read(buf, 0, m.size, m.offset);
      return buf;
    };
    const blob = (digest: string) => read(`blobs/${digest.replace(':', '/')}`);
    const index = JSON.parse((await read('index.json')).toString()) as { manifests: { digest: string }[] };
    const manifest = JSON.parse((await blob(index.manifests[0]!.digest)).toString()) as OciManifest;
    const blobs = new Map<string, Buffer>();
    for (const d of [manifest.config, ...manifest.layers]) blobs.set(d.digest, await blob(d.digest));
    return { manifest, blobs };
  } finally {
    await fh.close();
  }
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}
interface OciManifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

/** Pushes busybox plus a /marker.txt layer as REPOSITORY:v1. */
async function pushMarkerImage(r: TestRegistry): Promise<void> {
  const busybox = await readBusybox();
  const layerDir = await mkdtemp(join(workDir, 'layer-'));
  await writeFile(join(layerDir, 'marker.txt'), `${MARKER}\n`);
  await run('tar', [
    '-C',
    layerDir,
    '--owner=0',
    '--group=0',
    '-cf',
    join(workDir, 'marker.tar'),
    'marker.txt',
  ]);
  const markerLayer = await readFile(join(workDir, 'marker.tar'));

  const config = JSON.parse(busybox.blobs.get(busybox.manifest.config.digest)!.toString());
  const layers: Descriptor[] = [];
  for (const layer of busybox.manifest.layers) {
    await pushBlob(r, REPOSITORY, busybox.blobs.get(layer.digest)!);
    layers.push(layer);
  }
  const markerDigest = await pushBlob(r, REPOSITORY, markerLayer);
  layers.push({
    mediaType: 'application/vnd.oci.image.layer.v1.tar',
    digest: markerDigest,
    size: markerLayer.length,
  });
  config.rootfs.diff_ids.push(markerDigest); // uncompressed: the layer's digest is its diff_id
  config.history = [...(config.history ?? []), { created_by: 'test/e2e/registries.test.ts marker layer' }];
  const configBlob = Buffer.from(JSON.stringify(config));
  const configDigest = await pushBlob(r, REPOSITORY, configBlob);
  const manifest: OciManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_MANIFEST,
    config: { mediaType: busybox.manifest.config.mediaType, digest: configDigest, size: configBlob.length },
    layers,
  };
  await pushManifest(r, REPOSITORY, 'v1', Buffer.from(JSON.stringify(manifest)), MEDIA_TYPE_OCI_MANIFEST);
}

interface PodJSON {
  status: {
    phase?: string;
    containerStatuses?: { state?: { waiting?: { reason: string; message?: string } } }[];
  };
}

const getPod = async (name: string): Promise<PodJSON> =>
  JSON.parse(await ok(skiff!, ['get', 'pod', name, '-n', NS, '-o', 'json']));

/** The pod's events as `reason: message`. */
async function events(pod: string): Promise<string[]> {
  const out = await ok(skiff!, [
    'get',
    'events',
    '-n',
    NS,
    '--field-selector',
    `involvedObject.name=${pod}`,
    '-o',
    'jsonpath={range .items[*]}{.reason}: {.message}{"\\n"}{end}',
  ]);
  return out.split('\n').filter(Boolean);
}

const podManifest = (name: string, image: string) =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'main', image, command: ['sh', '-c', 'cat /marker.txt 2>&1; sleep 3600'] }],
    },
  });

before(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'skiff-e2e-registries-'));
  // The registry's host, with a second address for the wrong-password endpoint.
  await deleteHost(REGISTRY_HOST);
  await ensureBridge(REGISTRY_NET);
  await addHost(REGISTRY_NET, REGISTRY_HOST, { safetyRoutes: [CLUSTER_CIDR, SERVICE_CIDR] });
  await run('ip', ['-n', REGISTRY_HOST.netns, 'addr', 'add', `${BAD_IP}/24`, 'dev', 'eth0']);
  registry = await startTestRegistry({
    port: await freePort(),
    username: 'skiff',
    password: 'pull-secret',
    host: { netns: REGISTRY_HOST.netns, ips: [GOOD_IP, BAD_IP] },
  });
  await pushMarkerImage(registry);

  const tls = {
    ca_file: registry.ca.certFile,
    cert_file: registry.client.certFile,
    key_file: registry.client.keyFile,
  };
  const registriesYaml = join(workDir, 'registries.yaml');
  await writeFile(
    registriesYaml,
    JSON.stringify({
      mirrors: {
        'good.registry.test': { endpoint: [`https://${GOOD_IP}:${registry.port}`] },
        'bad.registry.test': { endpoint: [`https://${BAD_IP}:${registry.port}`] },
        // k3s's rewrite: library/marker is the registry's skiff/marker.
        'rewrite.registry.test': {
          endpoint: [`https://${GOOD_IP}:${registry.port}`],
          rewrite: { '^library/(.*)': 'skiff/$1' },
        },
      },
      configs: {
        [`${GOOD_IP}:${registry.port}`]: {
          auth: { username: registry.username, password: registry.password },
          tls,
        },
        [`${BAD_IP}:${registry.port}`]: { auth: { username: registry.username, password: 'wrong' }, tls },
      },
    }),
  );
  skiff = await startSkiff([
    '--no-disable-agent',
    '--cluster-cidr',
    CLUSTER_CIDR,
    '--service-cidr',
    SERVICE_CIDR,
    '--private-registry',
    registriesYaml,
    '--disable-default-registry-endpoint',
  ]);
  await eventually(
    'the node Ready with a podCIDR',
    async () => {
      const node = JSON.parse(await ok(skiff!, ['get', 'nodes', '-o', 'json'])).items[0];
      const ready = node?.status?.conditions?.find((c: { type: string }) => c.type === 'Ready');
      if (ready?.status !== 'True' || !node.spec.podCIDR) return false;
      podCIDR = node.spec.podCIDR;
      return true;
    },
    120_000,
  ).catch((err) => {
    throw new Error(`${err}\nserver output:\n${skiff?.logs()}`);
  });
  await ok(skiff, ['create', 'namespace', NS]);
});

after(async () => {
  if (skiff) {
    await skiff.kubectl(['delete', 'namespace', NS, '--wait=true', '--timeout=60s'], { timeoutMs: 70_000 });
    const dataDir = skiff.dataDir;
    await skiff.stop().catch(async () => {
      await unmountUnder(dataDir);
      rmSync(dataDir, { recursive: true, force: true });
    });
    if (podCIDR) await deleteBridge(podBridgeName(podCIDR));
  }
  await registry?.stop();
  await deleteHost(REGISTRY_HOST);
  await deleteBridge(REGISTRY_NET.bridge);
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe('private registries (registries.yaml)', () => {
  it('the registry itself refuses the image without credentials', async () => {
    // What the node would get with no auth config: the registry's 401.
    const res = await registry!.anonymous('GET', `/v2/${REPOSITORY}/manifests/v1`);
    assert.equal(res.status, 401);
    const ok200 = await registry!.fetch('GET', `/v2/${REPOSITORY}/manifests/v1`, undefined, {
      Accept: MEDIA_TYPE_OCI_MANIFEST,
    });
    assert.equal(ok200.status, 200, 'pushed');
  });

  it("wrong credentials: the pod shows ErrImagePull with the registry's 401", async () => {
    await ok(skiff!, ['apply', '-f', '-'], {
      input: podManifest('bad', `bad.registry.test/${REPOSITORY}:v1`),
    });
    const waiting = await eventually(
      'pod bad waiting on its image',
      async () => {
        const reason = (await getPod('bad')).status.containerStatuses?.[0]?.state?.waiting;
        return reason && ['ErrImagePull', 'ImagePullBackOff'].includes(reason.reason) ? reason : undefined;
      },
      60_000,
    );
    const seen = await events('bad');
    const failed = seen.find((e) => e.startsWith('Failed: Failed to pull image'));
    assert.ok(failed, seen.join('\n'));
    assert.match(failed, /401 Unauthorized/, failed);
    assert.ok(seen.includes('Failed: Error: ErrImagePull'), seen.join('\n'));
    assert.notEqual((await getPod('bad')).status.phase, 'Running', `${waiting.reason}: ${waiting.message}`);
  });

  it("a mirror's rewrite renames the repository: library/marker is pulled as skiff/marker", async () => {
    await ok(skiff!, ['apply', '-f', '-'], {
      input: podManifest('rewritten', 'rewrite.registry.test/library/marker:v1'),
    });
    await eventually(
      'pod rewritten Running',
      async () => (await getPod('rewritten')).status.phase === 'Running',
      90_000,
    ).catch(async (err) => {
      throw new Error(`${err}\nevents:\n${(await events('rewritten')).join('\n')}`);
    });
    const logs = await eventually('the marker in the logs', async () => {
      const out = await ok(skiff!, ['logs', '-n', NS, 'rewritten']);
      return out.includes(MARKER) ? out : undefined;
    });
    assert.equal(logs.trim(), MARKER);
  });

  it('right credentials, over TLS with a client certificate: the image the node never had runs', async () => {
    await ok(skiff!, ['apply', '-f', '-'], {
      input: podManifest('good', `good.registry.test/${REPOSITORY}:v1`),
    });
    await eventually(
      'pod good Running',
      async () => (await getPod('good')).status.phase === 'Running',
      90_000,
    ).catch(async (err) => {
      throw new Error(`${err}\nevents:\n${(await events('good')).join('\n')}`);
    });
    const seen = await events('good');
    assert.ok(
      seen.some((e) =>
        e.startsWith(`Pulled: Successfully pulled image "good.registry.test/${REPOSITORY}:v1"`),
      ),
      seen.join('\n'),
    );
    // The layer only the registry had.
    const logs = await eventually('the marker in the logs', async () => {
      const out = await ok(skiff!, ['logs', '-n', NS, 'good']);
      return out.includes(MARKER) ? out : undefined;
    });
    assert.equal(logs.trim(), MARKER);
  });

  it('the offline images still come from the node with a registries.yaml in place', async () => {
    await ok(skiff!, ['run', 'bb', '-n', NS, '--image=busybox', '--', 'sleep', '3600']);
    await eventually(
      'pod bb Running',
      async () => (await getPod('bb')).status.phase === 'Running',
      90_000,
    ).catch(async (err) => {
      throw new Error(`${err}\nevents:\n${(await events('bb')).join('\n')}`);
    });
    const seen = await events('bb');
    assert.ok(
      seen.some((e) => e.startsWith('Pulled: Successfully pulled image "busybox"')),
      seen.join('\n'),
    );
  });
});
