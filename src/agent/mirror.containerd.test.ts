// The embedded registry mirror with a real containerd, started as the agent
// starts it (src/agent/runtime.ts): image pulls through CRI PullImage of the
// airgap images succeed offline, pulls of images nobody imported fail at
// once with containerd's "not found", and the kubelet's image manager
// applies imagePullPolicy Always, IfNotPresent and Never on top, as upstream.
// Needs root and what scripts/setup.sh installs (containerd, runc, Skiff's
// images).

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Pod } from '../api/types/core-v1.ts';
import type { EventRecorder } from '../client/events.ts';
import { Backoff } from '../kubelet/backoff.ts';
import { createImageManager, type ImagePullError } from '../kubelet/image-manager.ts';
import type { PodSandboxConfig } from '../kubelet/runtime/runtime.ts';
import { containerdPaths } from '../node/paths.ts';
import { createLog } from '../util/log.ts';
import { unmountUnder } from './containerd.ts';
import { type NodeRuntime, PUBLIC_REGISTRIES, startNodeRuntime } from './runtime.ts';

let dataDir: string;
let node: NodeRuntime;
/** What the mirror answered, from its debug log: `GET /v2/... 200`. */
const served: string[] = [];

before(async () => {
  dataDir = await mkdtemp('/tmp/skiff-mirror-containerd-');
  const log = createLog(
    {},
    (line) => {
      const entry = JSON.parse(line) as { msg: string; method?: string; url?: string; status?: number };
      if (entry.msg === 'image mirror') served.push(`${entry.method} ${entry.url} ${entry.status}`);
    },
    'debug',
  );
  // No pod network is needed for pulls: the node never gets a podCIDR here.
  node = await startNodeRuntime({ dataDir, clusterCIDR: '10.42.0.0/16', serviceCIDR: '10.43.0.0/16', log });
});

after(async () => {
  await node?.stop();
  if (dataDir) {
    await unmountUnder(dataDir);
    await rm(dataDir, { recursive: true, force: true });
  }
});

/** The mirror requests made while `fn` ran. */
async function requestsDuring(fn: () => Promise<unknown>): Promise<string[]> {
  const from = served.length;
  await fn();
  return served.slice(from);
}

describe('image mirror with containerd (CRI PullImage)', () => {
  it('is what containerd reaches for every public registry: hosts.toml names it, on loopback', async () => {
    const mirror = node.mirror;
    assert.ok(mirror, 'an offline node with its own containerd runs the mirror');
    assert.match(mirror.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
    for (const registry of PUBLIC_REGISTRIES) {
      const toml = await readFile(
        join(containerdPaths(dataDir).registryConfigDir, registry, 'hosts.toml'),
        'utf8',
      );
      assert.ok(toml.includes(`server = "${mirror.endpoint}/v2"`), `${registry}: ${toml}`);
      assert.ok(toml.includes(`[host."${mirror.endpoint}/v2"]`), `${registry}: ${toml}`);
    }
  });

  it('pulls docker.io/library/busybox:latest offline, to the very image the agent imported', async () => {
    const imported = await node.runtime.imageStatus({ image: 'busybox' });
    assert.ok(imported, 'imported at start');
    let ref = '';
    const requests = await requestsDuring(async () => {
      ref = await node.runtime.pullImage({ image: 'docker.io/library/busybox:latest' });
    });
    assert.ok(
      requests.some((r) =>
        /^(HEAD|GET) \/v2\/library\/busybox\/manifests\/latest\?ns=docker\.io 200$/.test(r),
      ),
      requests.join('\n'),
    );
    const pulled = await node.runtime.imageStatus({ image: 'busybox' });
    assert.equal(pulled?.id, imported.id, 'the same image: the mirror serves the imported bytes');
    assert.ok(ref === pulled?.id || pulled?.repoDigests.includes(ref), `imageRef ${ref}`);
  });

  it('pulls a removed image back from the mirror, its blobs included', async () => {
    const before = await node.runtime.imageStatus({ image: 'redis' });
    assert.ok(before, 'imported at start');
    // CRI RemoveImage drops every name of the image (its tag, repo digest and
    // id) and deletes its content once unreferenced, so the pull must fetch every blob.
    await node.runtime.removeImage({ image: 'redis' });
    assert.equal(await node.runtime.imageStatus({ image: 'redis' }), undefined, 'removed');
    const requests = await requestsDuring(() => node.runtime.pullImage({ image: 'redis' }));
    assert.ok(
      requests.some((r) =>
        /^GET \/v2\/library\/redis\/blobs\/sha256:[0-9a-f]{64}\?ns=docker\.io 200$/.test(r),
      ),
      requests.join('\n'),
    );
    assert.equal((await node.runtime.imageStatus({ image: 'redis' }))?.id, before.id);
  });

  it('fails a pull of an image nobody imported at once, with "not found", asking only the mirror', async () => {
    const digest = `sha256:${'1'.repeat(64)}`;
    // image, the reference containerd names in its error, the registry (ns) and path the mirror is asked.
    for (const [image, ref, ns, path] of [
      [
        'skiff-never/absent:1',
        'docker.io/skiff-never/absent:1',
        'docker.io',
        '/v2/skiff-never/absent/manifests/1',
      ],
      [
        'registry.k8s.io/skiff-never/absent:1',
        'registry.k8s.io/skiff-never/absent:1',
        'registry.k8s.io',
        '/v2/skiff-never/absent/manifests/1',
      ],
      [
        `quay.io/skiff-never/absent@${digest}`,
        `quay.io/skiff-never/absent@${digest}`,
        'quay.io',
        '/v2/skiff-never/absent/',
      ],
    ] as const) {
      const started = Date.now();
      const requests = await requestsDuring(() =>
        assert.rejects(node.runtime.pullImage({ image }), (err: Error) => {
          assert.ok(err.message.endsWith(`${ref}: not found`), err.message);
          return true;
        }),
      );
      assert.ok(Date.now() - started < 10_000, `${image} failed promptly`);
      assert.ok(requests.length > 0, `${image}: the mirror was asked`);
      for (const r of requests) {
        assert.ok(r.includes(path) && r.includes(`ns=${ns}`) && r.endsWith(' 404'), `${image}: ${r}`);
      }
    }
  });
});

describe('imagePullPolicy with the mirror (the kubelet image manager on containerd)', () => {
  const events: string[] = [];
  const recorder: EventRecorder = {
    event: (_obj, type, reason, message) => events.push(`${type} ${reason} ${message}`),
    flush: async () => {},
  };
  let clock = Date.now();
  const images = () =>
    createImageManager({
      runtime: node.runtime,
      recorder,
      backoff,
      now: () => clock,
      getSecret: async () => undefined,
    });
  const backoff = new Backoff({ now: () => clock });
  const pod: Pod = { metadata: { name: 'p', namespace: 'default', uid: 'mirror-policy-uid' } };
  const sandbox: PodSandboxConfig = {
    metadata: { name: 'p', namespace: 'default', uid: 'mirror-policy-uid', attempt: 0 },
  };
  const ensure = (image: string, imagePullPolicy: string) =>
    images().ensureImageExists(pod, { name: 'c', image, imagePullPolicy }, sandbox);

  it('Always pulls busybox every time, from the mirror', async () => {
    for (let i = 0; i < 2; i++) {
      events.length = 0;
      const requests = await requestsDuring(() => ensure('busybox', 'Always'));
      assert.ok(
        requests.some((r) => r.includes('/v2/library/busybox/manifests/latest')),
        requests.join('\n'),
      );
      assert.equal(events[0], 'Normal Pulling Pulling image "busybox"');
      assert.match(events[1] ?? '', /^Normal Pulled Successfully pulled image "busybox" in \d+\.\d+s$/);
    }
  });

  it('IfNotPresent and Never use the image on the machine without asking any registry', async () => {
    for (const policy of ['IfNotPresent', 'Never']) {
      events.length = 0;
      const requests = await requestsDuring(() => ensure('busybox', policy));
      assert.deepEqual(requests, [], policy);
      assert.deepEqual(events, ['Normal Pulled Container image "busybox" already present on machine']);
    }
  });

  it('Never with an absent image is ErrImageNeverPull; IfNotPresent pulls it, fails with ErrImagePull, then backs off', async () => {
    await assert.rejects(
      ensure('skiff-never/absent:1', 'Never'),
      (err: ImagePullError) => err.reason === 'ErrImageNeverPull',
    );
    events.length = 0;
    await assert.rejects(ensure('skiff-never/absent:1', 'IfNotPresent'), (err: ImagePullError) => {
      assert.equal(err.reason, 'ErrImagePull');
      assert.match(err.message, /docker\.io\/skiff-never\/absent:1: not found/);
      return true;
    });
    assert.ok(
      events.some((e) => /^Warning Failed Failed to pull image "skiff-never\/absent:1": .*not found/.test(e)),
      events.join('\n'),
    );
    assert.ok(events.includes('Warning Failed Error: ErrImagePull'), events.join('\n'));
    // Within the 10 s backoff the kubelet does not ask again.
    clock += 1_000;
    const requests = await requestsDuring(() =>
      assert.rejects(
        ensure('skiff-never/absent:1', 'IfNotPresent'),
        (err: ImagePullError) => err.reason === 'ImagePullBackOff',
      ),
    );
    assert.deepEqual(requests, []);
  });
});
