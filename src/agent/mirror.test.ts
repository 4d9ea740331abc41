// The embedded registry mirror over the OCI distribution API, with image
// layout tarballs made here by GNU tar (as images/build.sh makes them): a
// single-platform image named by containerd's annotation, a multi-platform
// one (an OCI index) under another registry, and one named by a full
// org.opencontainers.image.ref.name only.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import {
  type ImageMirror,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  readTarMembers,
  startImageMirror,
} from './mirror.ts';

const run = promisify(execFile);
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Blob {
  digest: string;
  size: number;
  bytes: Buffer;
}

/** An OCI image layout in `dir`: add blobs, then write index.json and tar it up. */
function layout() {
  const blobs: Blob[] = [];
  const add = (content: string | Buffer | object): Blob => {
    const bytes = Buffer.isBuffer(content)
      ? content
      : Buffer.from(typeof content === 'string' ? content : JSON.stringify(content));
    const blob = { digest: sha256(bytes), size: bytes.length, bytes };
    blobs.push(blob);
    return blob;
  };
  /** A one-layer image for a platform: its manifest blob. */
  const image = (arch: string, layer: string) => {
    const config = add({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
    const l = add(layer);
    return add({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: config.digest,
        size: config.size,
      },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.digest, size: l.size }],
    });
  };
  const write = async (file: string, manifests: object[], format = 'gnu') => {
    const dir = await mkdtemp(join(tmpdir(), 'skiff-layout-'));
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    for (const b of blobs) await writeFile(join(dir, 'blobs', 'sha256', b.digest.slice(7)), b.bytes);
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests }));
    await run('tar', [`--format=${format}`, '-C', dir, '-cf', file, '.']);
    await rm(dir, { recursive: true, force: true });
  };
  return { add, image, write };
}

const descriptor = (blob: Blob, mediaType: string, annotations: Record<string, string>) => ({
  mediaType,
  digest: blob.digest,
  size: blob.size,
  annotations,
});

let dir: string;
let mirror: ImageMirror;
let busybox: Blob;
let busyboxLayer: Blob;
let pauseIndex: Blob;
let pauseArm64: Blob;
let redis: Blob;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skiff-mirror-'));
  const images = join(dir, 'images');
  await mkdir(images);

  const one = layout();
  busybox = one.image('amd64', 'busybox layer');
  busyboxLayer = one.add('busybox layer');
  await one.write(join(images, 'busybox.tar'), [
    descriptor(busybox, MEDIA_TYPE_OCI_MANIFEST, {
      'io.containerd.image.name': 'docker.io/library/busybox:latest',
      'org.opencontainers.image.ref.name': 'latest',
    }),
  ]);

  const multi = layout();
  const amd64 = multi.image('amd64', 'pause amd64');
  pauseArm64 = multi.image('arm64', 'pause arm64');
  pauseIndex = multi.add({
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_INDEX,
    manifests: [
      { ...descriptor(amd64, MEDIA_TYPE_OCI_MANIFEST, {}), platform: { os: 'linux', architecture: 'amd64' } },
      {
        ...descriptor(pauseArm64, MEDIA_TYPE_OCI_MANIFEST, {}),
        platform: { os: 'linux', architecture: 'arm64' },
      },
    ],
  });
  redis = multi.image('amd64', 'redis layer');
  const unnamed = multi.image('amd64', 'unnamed layer');
  await multi.write(
    join(images, 'more.tar'),
    [
      descriptor(pauseIndex, MEDIA_TYPE_OCI_INDEX, {
        'io.containerd.image.name': 'registry.k8s.io/pause:3.10',
      }),
      // Only the OCI annotation, holding a whole reference (a short one: docker.io/library/ is implied).
      descriptor(redis, MEDIA_TYPE_OCI_MANIFEST, { 'org.opencontainers.image.ref.name': 'redis:7' }),
      // A bare tag names no repository.
      descriptor(unnamed, MEDIA_TYPE_OCI_MANIFEST, { 'org.opencontainers.image.ref.name': 'v1' }),
    ],
    'pax',
  );
  mirror = await startImageMirror({ imagesDir: images });
});

after(async () => {
  await mirror?.close();
  await rm(dir, { recursive: true, force: true });
});

const get = (path: string, method = 'GET') => fetch(`${mirror.endpoint}${path}`, { method });
const bytes = async (res: Response) => Buffer.from(await res.arrayBuffer());
const errorCode = async (res: Response) =>
  ((await res.json()) as { errors: { code: string }[] }).errors.map((e) => e.code);

describe('image mirror (OCI distribution API over the airgap tarballs)', () => {
  it('answers the API version check on /v2/', async () => {
    const res = await get('/v2/');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
    assert.deepEqual(await res.json(), {});
    assert.ok(mirror.endpoint.startsWith('http://127.0.0.1:'), mirror.endpoint);
  });

  it('serves a manifest by tag in the registry containerd names with ns, docker.io by default', async () => {
    for (const path of [
      '/v2/library/busybox/manifests/latest?ns=docker.io',
      '/v2/library/busybox/manifests/latest',
    ]) {
      const res = await get(path);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('content-type'), MEDIA_TYPE_OCI_MANIFEST);
      assert.equal(res.headers.get('docker-content-digest'), busybox.digest);
      assert.equal(res.headers.get('content-length'), String(busybox.size));
      assert.deepEqual(await bytes(res), busybox.bytes, 'the very bytes imported, so the digest matches');
    }
  });

  it('serves a manifest by digest, and HEAD with the same headers and no body', async () => {
    const res = await get(`/v2/library/busybox/manifests/${busybox.digest}?ns=docker.io`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), MEDIA_TYPE_OCI_MANIFEST);
    assert.deepEqual(await bytes(res), busybox.bytes);

    const head = await get('/v2/library/busybox/manifests/latest?ns=docker.io', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-type'), MEDIA_TYPE_OCI_MANIFEST);
    assert.equal(head.headers.get('docker-content-digest'), busybox.digest);
    assert.equal(head.headers.get('content-length'), String(busybox.size));
    assert.equal((await bytes(head)).length, 0);
  });

  it('serves an OCI index with the index media type, and its platform manifests by digest as manifests', async () => {
    const res = await get('/v2/pause/manifests/3.10?ns=registry.k8s.io');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), MEDIA_TYPE_OCI_INDEX);
    assert.equal(res.headers.get('docker-content-digest'), pauseIndex.digest);
    assert.deepEqual(await bytes(res), pauseIndex.bytes);

    const child = await get(`/v2/pause/manifests/${pauseArm64.digest}?ns=registry.k8s.io`);
    assert.equal(child.status, 200);
    assert.equal(child.headers.get('content-type'), MEDIA_TYPE_OCI_MANIFEST);
    assert.deepEqual(await bytes(child), pauseArm64.bytes);
  });

  it('names an image by a whole reference in org.opencontainers.image.ref.name, never by a bare tag', async () => {
    const res = await get('/v2/library/redis/manifests/7?ns=docker.io');
    assert.equal(res.status, 200);
    assert.deepEqual(await bytes(res), redis.bytes);
    assert.deepEqual(await mirror.images(), [
      'docker.io/library/busybox:latest',
      'docker.io/library/redis:7',
      'registry.k8s.io/pause:3.10',
    ]);
  });

  it('serves blobs by digest as octet streams, GET and HEAD', async () => {
    const res = await get(`/v2/library/busybox/blobs/${busyboxLayer.digest}?ns=docker.io`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    assert.equal(res.headers.get('docker-content-digest'), busyboxLayer.digest);
    assert.deepEqual(await bytes(res), busyboxLayer.bytes);

    const head = await get(`/v2/library/busybox/blobs/${busyboxLayer.digest}?ns=docker.io`, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(busyboxLayer.size));
    assert.equal((await bytes(head)).length, 0);
  });

  it('lists a repository’s tags', async () => {
    const res = await get('/v2/library/busybox/tags/list?ns=docker.io');
    assert.deepEqual(await res.json(), { name: 'library/busybox', tags: ['latest'] });
  });

  it('answers what it does not have with 404 and the registry error JSON', async () => {
    const cases: [string, string][] = [
      ['/v2/library/nope/manifests/latest?ns=docker.io', 'NAME_UNKNOWN'],
      // Same repository path, another registry: not the same image.
      ['/v2/library/busybox/manifests/latest?ns=quay.io', 'NAME_UNKNOWN'],
      ['/v2/library/busybox/manifests/1.36?ns=docker.io', 'MANIFEST_UNKNOWN'],
      // A layer is a blob, not a manifest.
      [`/v2/library/busybox/manifests/${busyboxLayer.digest}?ns=docker.io`, 'MANIFEST_UNKNOWN'],
      // Blobs belong to the repositories whose tarball holds them.
      [`/v2/library/busybox/blobs/${redis.digest}?ns=docker.io`, 'BLOB_UNKNOWN'],
      [`/v2/library/busybox/blobs/sha256:${'0'.repeat(64)}?ns=docker.io`, 'BLOB_UNKNOWN'],
      ['/v2/library/busybox/referrers/x', 'UNSUPPORTED'],
      ['/metrics', 'UNSUPPORTED'],
    ];
    for (const [path, code] of cases) {
      const res = await get(path);
      assert.equal(res.status, 404, path);
      assert.equal(res.headers.get('content-type'), 'application/json');
      assert.deepEqual(await errorCode(res), [code], path);
    }
    const head = await get('/v2/library/busybox/manifests/1.36?ns=docker.io', 'HEAD');
    assert.equal(head.status, 404);
    assert.equal((await bytes(head)).length, 0);
  });

  it('is read-only: pushes get 405 UNSUPPORTED', async () => {
    for (const [method, path] of [
      ['PUT', '/v2/library/busybox/manifests/latest'],
      ['POST', '/v2/library/busybox/blobs/uploads/'],
      ['DELETE', `/v2/library/busybox/manifests/${busybox.digest}`],
    ] as const) {
      const res = await get(path, method);
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.deepEqual(await errorCode(res), ['UNSUPPORTED']);
    }
  });

  it('serves a tarball dropped into the images dir without a restart, and forgets a removed one', async () => {
    const late = layout();
    const hello = late.image('amd64', 'hello layer');
    const file = join(dir, 'images', 'hello.tar');
    await late.write(file, [
      descriptor(hello, MEDIA_TYPE_OCI_MANIFEST, { 'io.containerd.image.name': 'ghcr.io/skiff/hello:v1' }),
    ]);
    const res = await get('/v2/skiff/hello/manifests/v1?ns=ghcr.io');
    assert.equal(res.status, 200);
    assert.deepEqual(await bytes(res), hello.bytes);
    await rm(file);
    assert.equal((await get('/v2/skiff/hello/manifests/v1?ns=ghcr.io')).status, 404);
  });
});

describe('tar reader', () => {
  for (const format of ['ustar', 'gnu', 'pax']) {
    it(`finds members and their data in ${format} archives, long paths included`, async () => {
      const src = await mkdtemp(join(tmpdir(), 'skiff-tar-'));
      const deep = join('a'.repeat(60), 'b'.repeat(60));
      const long = `${'c'.repeat(90)}.txt`;
      await mkdir(join(src, deep), { recursive: true });
      await writeFile(join(src, 'short.txt'), 'short');
      await writeFile(join(src, deep, long), 'x'.repeat(1500));
      await writeFile(join(src, 'empty'), '');
      const file = `${src}.tar`;
      await run('tar', [`--format=${format}`, '-C', src, '-cf', file, '.']);
      const fh = await open(file, 'r');
      try {
        const members = await readTarMembers(fh);
        assert.deepEqual([...members.keys()].sort(), [`${deep}/${long}`, 'empty', 'short.txt'].sort());
        const read = async (name: string) => {
          const m = members.get(name)!;
          const buf = Buffer.alloc(m.size);
          await fh.read(buf, 0, m.size, m.offset);
          return buf.toString();
        };
        assert.equal(await read('short.txt'), 'short');
        assert.equal(await read(`${deep}/${long}`), 'x'.repeat(1500));
        assert.equal(await read('empty'), '');
      } finally {
        await fh.close();
        await rm(src, { recursive: true, force: true });
        await rm(file, { force: true });
      }
    });
  }
});
