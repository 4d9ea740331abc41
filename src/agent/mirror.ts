// The node's embedded registry mirror: the airgap image tarballs in
// `<data-dir>/agent/images/` served read-only over the OCI distribution API
// on loopback, like k3s's embedded registry mirror
// (https://docs.k3s.io/installation/registry-mirror).
//
// Why a registry at all, when the agent already imports those tarballs into
// containerd: upstream defaults `image: busybox` (tag latest, implicitly) to
// imagePullPolicy Always, so the kubelet pulls it for every container it
// starts. On an offline machine that pull must still succeed for the images
// the node has, and fail at once for the ones it has not. containerd's
// hosts.toml for docker.io (and the other public registries) names this
// mirror first, and a closed loopback port as the registry itself
// (src/agent/runtime.ts), so:
//   - a pull of an airgap image resolves here to the very manifest that was
//     imported, and containerd finds every blob already in its content store;
//   - a pull of anything else gets this mirror's 404, then a refused
//     connection, and containerd reports `<ref>: not found` (its resolver
//     ranks a 404 above a connection error); nothing leaves the machine.
//
// The port: an ephemeral one on 127.0.0.1, chosen when the agent starts and
// written into hosts.toml before containerd starts. containerd reads hosts.toml
// at every pull, and stops with the agent, so the two never disagree; a fixed
// port would collide between nodes (or tests) sharing a machine.
//
// The tarballs are OCI image layouts (index.json, blobs/<alg>/<hex>), as
// images/build.sh and `docker save` (Docker 25+) write them. They are read in
// place: a small ustar reader finds each member's offset once, and blobs are
// streamed straight out of the tar file, so nothing is extracted or copied.
// An image is known by its containerd name annotation (io.containerd.image.name),
// as `ctr images import` names it, or by a full reference in
// org.opencontainers.image.ref.name.
//
// API (OCI distribution spec, https://github.com/opencontainers/distribution-spec/blob/main/spec.md):
//   GET/HEAD /v2/                                     200 {}
//   GET/HEAD /v2/<name>/manifests/<tag|digest>       the manifest or index, with its media type
//   GET/HEAD /v2/<name>/blobs/<digest>                a blob
//   GET      /v2/<name>/tags/list                     the repository's tags
// containerd asks a mirror with `?ns=<registry>` (docker.io for busybox), so
// `<name>` is the repository within that registry: library/busybox. Without
// ns, docker.io is meant. Errors are the spec's JSON (NAME_UNKNOWN,
// MANIFEST_UNKNOWN, BLOB_UNKNOWN, UNSUPPORTED); pushes are refused with 405.

import { createReadStream } from 'node:fs';
import { type FileHandle, open, readdir, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { normalizeImage } from '../kubelet/runtime/hollow/hollow.ts';
import type { Log } from '../util/log.ts';

export const MEDIA_TYPE_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MEDIA_TYPE_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_TYPE_DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const MEDIA_TYPE_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
/** Manifests that list other manifests (multi-platform images), whose children are manifests too. */
const INDEX_TYPES = new Set([MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_MANIFEST_LIST]);
const MANIFEST_TYPES = new Set([...INDEX_TYPES, MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST]);

export interface ImageMirrorOptions {
  /** The airgap image dir (`<data-dir>/agent/images`); re-read when its tarballs change. */
  imagesDir: string;
  /** Default 127.0.0.1: the mirror is for this node's containerd only. */
  host?: string;
  /** Default 0: an ephemeral port. */
  port?: number;
  log?: Log;
}

export interface ImageMirror {
  /** `http://127.0.0.1:<port>`, as hosts.toml names it. */
  endpoint: string;
  port: number;
  /** The image references served now (`docker.io/library/busybox:latest` ...). */
  images(): Promise<string[]>;
  close(): Promise<void>;
}

export async function startImageMirror(opts: ImageMirrorOptions): Promise<ImageMirror> {
  const catalog = createCatalog(opts.imagesDir, opts.log);
  const server = createServer((req, res) => {
    // Which pulls the node served and which it refused (SKIFF_LOG_LEVEL=debug).
    res.once('finish', () =>
      opts.log?.debug('image mirror', { method: req.method, url: req.url, status: res.statusCode }),
    );
    serve(catalog, req, res).catch((err: Error) => {
      opts.log?.warn('image mirror request failed', { url: req.url, error: err.message });
      if (!res.headersSent) registryError(res, req.method, 500, 'UNKNOWN', err.message);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  const endpoint = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
  opts.log?.('image mirror serving the airgap images', { endpoint, dir: opts.imagesDir });
  return {
    endpoint,
    port,
    async images() {
      const { tags } = await catalog.current();
      return [...tags].flatMap(([repo, byTag]) => [...byTag.keys()].map((tag) => `${repo}:${tag}`)).sort();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// ---- HTTP --------------------------------------------------------------

const API_VERSION = { 'Docker-Distribution-API-Version': 'registry/2.0' };
const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

async function serve(catalog: Catalog, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://mirror');
  const path = url.pathname;
  if (path !== '/v2' && !path.startsWith('/v2/')) {
    return registryError(res, req.method, 404, 'UNSUPPORTED', `no such endpoint: ${path}`);
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    // A read-only registry: pushes and deletes are not for this mirror.
    res.setHeader('Allow', 'GET, HEAD');
    return registryError(res, req.method, 405, 'UNSUPPORTED', 'the image mirror is read-only');
  }
  if (path === '/v2' || path === '/v2/') {
    return send(res, req.method, 200, { 'Content-Type': 'application/json' }, Buffer.from('{}'));
  }

  const route =
    /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(path) ?? /^\/v2\/(.+)\/(tags)\/list$/.exec(path);
  if (!route) return registryError(res, req.method, 404, 'UNSUPPORTED', `no such endpoint: ${path}`);
  const [, name = '', kind, reference = ''] = route;
  // Which registry the request is for: containerd says so in `ns` when it asks a mirror.
  const repository = `${url.searchParams.get('ns') || 'docker.io'}/${name}`;
  const { tags, archives } = await catalog.current();
  const holding = archives.filter((a) => a.repositories.has(repository));
  if (holding.length === 0) {
    return registryError(res, req.method, 404, 'NAME_UNKNOWN', `repository name not known to registry`, {
      name: repository,
    });
  }

  if (kind === 'tags') {
    const list = [...(tags.get(repository)?.keys() ?? [])].sort();
    const body = Buffer.from(JSON.stringify({ name, tags: list }));
    return send(res, req.method, 200, { 'Content-Type': 'application/json' }, body);
  }

  if (kind === 'manifests') {
    let found: { archive: Archive; digest: string; mediaType: string } | undefined;
    if (DIGEST.test(reference)) {
      for (const archive of holding) {
        const mediaType = archive.manifests.get(reference);
        if (mediaType && archive.blobs.has(reference)) found = { archive, digest: reference, mediaType };
      }
    } else {
      found = tags.get(repository)?.get(reference);
    }
    if (!found) {
      return registryError(res, req.method, 404, 'MANIFEST_UNKNOWN', 'manifest unknown', {
        name: repository,
        reference,
      });
    }
    return sendBlob(res, req.method, found.archive, found.digest, found.mediaType);
  }

  if (!DIGEST.test(reference)) {
    return registryError(res, req.method, 400, 'DIGEST_INVALID', 'provided digest did not match', {
      digest: reference,
    });
  }
  const archive = holding.find((a) => a.blobs.has(reference));
  if (!archive)
    return registryError(res, req.method, 404, 'BLOB_UNKNOWN', 'blob unknown to registry', {
      digest: reference,
    });
  return sendBlob(res, req.method, archive, reference, 'application/octet-stream');
}

function send(
  res: ServerResponse,
  method: string | undefined,
  status: number,
  headers: Record<string, string | number>,
  body: Buffer,
): void {
  res.writeHead(status, { ...API_VERSION, ...headers, 'Content-Length': body.length });
  res.end(method === 'HEAD' ? undefined : body);
}

/** The spec's error body: `{"errors":[{code, message, detail}]}` (HEAD gets the status alone). */
function registryError(
  res: ServerResponse,
  method: string | undefined,
  status: number,
  code: string,
  message: string,
  detail?: unknown,
): void {
  const body = Buffer.from(JSON.stringify({ errors: [{ code, message, ...(detail ? { detail } : {}) }] }));
  send(res, method, status, { 'Content-Type': 'application/json' }, body);
}

async function sendBlob(
  res: ServerResponse,
  method: string | undefined,
  archive: Archive,
  digest: string,
  contentType: string,
): Promise<void> {
  const member = archive.blobs.get(digest)!;
  res.writeHead(200, {
    ...API_VERSION,
    'Content-Type': contentType,
    'Content-Length': member.size,
    'Docker-Content-Digest': digest,
    ETag: `"${digest}"`,
  });
  if (method === 'HEAD' || member.size === 0) {
    res.end();
    return;
  }
  await pipeline(
    createReadStream(archive.file, { start: member.offset, end: member.offset + member.size - 1 }),
    res,
  );
}

// ---- The catalog: what the airgap tarballs hold ---------------------------

interface Archive {
  file: string;
  /** size and mtime when read: a tarball replaced in place is read again. */
  version: string;
  /** digest → where the blob's bytes are in the tar file. */
  blobs: Map<string, TarMember>;
  /** digest → media type, for every manifest and index the layout reaches. */
  manifests: Map<string, string>;
  /** `docker.io/library/busybox` → its tags in this archive, each naming a manifest. */
  named: Map<string, Map<string, string>>;
  repositories: Set<string>;
}

interface Catalog {
  /** The archives now in the dir and every repository:tag they name (the last archive read wins a tag). */
  current(): Promise<{
    archives: Archive[];
    tags: Map<string, Map<string, { archive: Archive; digest: string; mediaType: string }>>;
  }>;
}

function createCatalog(dir: string, log?: Log): Catalog {
  const byFile = new Map<string, Archive>();
  let inFlight: ReturnType<Catalog['current']> | undefined;
  const scan: Catalog['current'] = async () => {
    const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.tar')).sort();
    const archives: Archive[] = [];
    for (const f of files) {
      const file = join(dir, f);
      const st = await stat(file).catch(() => undefined);
      if (!st?.isFile()) continue;
      const version = `${st.size}/${st.mtimeMs}`;
      let archive = byFile.get(file);
      if (archive?.version !== version) {
        archive = await readArchive(file, version).catch((err: Error) => {
          log?.warn('image mirror skips a tarball it cannot read', { file, error: err.message });
          return undefined;
        });
        if (!archive) continue;
        byFile.set(file, archive);
        log?.('image mirror read an airgap tarball', { file, images: [...archive.repositories] });
      }
      archives.push(archive);
    }
    for (const file of byFile.keys()) if (!files.includes(file.slice(dir.length + 1))) byFile.delete(file);
    const tags: Awaited<ReturnType<Catalog['current']>>['tags'] = new Map();
    for (const archive of archives) {
      for (const [repo, byTag] of archive.named) {
        const into = tags.get(repo) ?? new Map();
        tags.set(repo, into);
        for (const [tag, digest] of byTag) {
          into.set(tag, {
            archive,
            digest,
            mediaType: archive.manifests.get(digest) ?? MEDIA_TYPE_OCI_MANIFEST,
          });
        }
      }
    }
    return { archives, tags };
  };
  return {
    // Requests arriving together share one scan of the dir (a readdir and a stat per tarball).
    current() {
      inFlight ??= scan().finally(() => {
        inFlight = undefined;
      });
      return inFlight;
    },
  };
}

interface Descriptor {
  mediaType?: string;
  digest?: string;
  annotations?: Record<string, string>;
}

/** Reads one OCI image layout tarball: where its blobs are, which manifests it has, what it names. */
async function readArchive(file: string, version: string): Promise<Archive> {
  const fh = await open(file, 'r');
  try {
    const members = await readTarMembers(fh);
    const blobs = new Map<string, TarMember>();
    for (const [name, member] of members) {
      const m = /^blobs\/([^/]+)\/([^/]+)$/.exec(name);
      if (m) blobs.set(`${m[1]}:${m[2]}`, member);
    }
    const indexMember = members.get('index.json');
    if (!indexMember) throw new Error('not an OCI image layout (no index.json)');
    const readJSON = async (member: TarMember) => {
      const buf = Buffer.alloc(member.size);
      await fh.read(buf, 0, member.size, member.offset);
      return JSON.parse(buf.toString('utf8')) as { mediaType?: string; manifests?: Descriptor[] };
    };
    const index = await readJSON(indexMember);

    // Every manifest reachable from index.json, with its media type: the
    // descriptor pointing at it says it, and an index's children are read in turn.
    const manifests = new Map<string, string>();
    const visit = async (descriptors: Descriptor[] | undefined, depth: number) => {
      for (const d of descriptors ?? []) {
        if (!d.digest || !d.mediaType || !MANIFEST_TYPES.has(d.mediaType) || manifests.has(d.digest))
          continue;
        manifests.set(d.digest, d.mediaType);
        const member = blobs.get(d.digest);
        if (INDEX_TYPES.has(d.mediaType) && member && depth < 4) {
          await visit((await readJSON(member)).manifests, depth + 1);
        }
      }
    };
    await visit(index.manifests, 0);

    const named = new Map<string, Map<string, string>>();
    for (const d of index.manifests ?? []) {
      const ref = imageReference(d);
      if (!ref || !d.digest || !manifests.has(d.digest)) continue;
      const at = ref.lastIndexOf(':');
      const [repo, tag] = [ref.slice(0, at), ref.slice(at + 1)];
      const byTag = named.get(repo) ?? new Map<string, string>();
      named.set(repo, byTag);
      byTag.set(tag, d.digest);
    }
    return { file, version, blobs, manifests, named, repositories: new Set(named.keys()) };
  } finally {
    await fh.close();
  }
}

/**
 * The full reference an index entry names, as `ctr images import` would name
 * the image: the containerd annotation, else an OCI ref.name that is a whole
 * reference (one that is only a tag names no repository). Digest references
 * have no tag to serve, so they name nothing here.
 */
function imageReference(d: Descriptor): string | undefined {
  const containerd = d.annotations?.['io.containerd.image.name'];
  const oci = d.annotations?.['org.opencontainers.image.ref.name'];
  // A tag holds neither ':' nor '/', so a ref.name with either is a whole reference.
  const ref = containerd ?? (oci && /[/:]/.test(oci) ? oci : undefined);
  if (!ref || ref.includes('@')) return undefined;
  return normalizeImage(ref);
}

// ---- A minimal tar reader ----------------------------------------------
//
// Node has no tar module, and the image layouts need only "where is member X":
// walk the 512-byte headers (POSIX ustar, with pax and GNU long names for
// paths over 100 bytes), note each regular file's data offset and size, and
// skip its data. Compressed tarballs are not airgap images here (the agent
// imports `*.tar` only).

export interface TarMember {
  offset: number;
  size: number;
}

const BLOCK = 512;

/** Every regular file in a tar, by its path without a leading `./`. */
export async function readTarMembers(fh: FileHandle): Promise<Map<string, TarMember>> {
  const members = new Map<string, TarMember>();
  const header = Buffer.alloc(BLOCK);
  let offset = 0;
  let longName: string | undefined;
  for (;;) {
    const { bytesRead } = await fh.read(header, 0, BLOCK, offset);
    if (bytesRead < BLOCK || header.every((b) => b === 0)) break;
    const size = tarNumber(header.subarray(124, 136));
    const type = String.fromCharCode(header[156] ?? 0);
    const dataOffset = offset + BLOCK;
    const readData = async () => {
      const buf = Buffer.alloc(size);
      await fh.read(buf, 0, size, dataOffset);
      return buf;
    };
    if (type === 'x') {
      // A pax header: "<len> <key>=<value>\n" records for the next member; only its path matters here.
      const path = /(?:^|\n)\d+ path=([^\n]*)\n/.exec((await readData()).toString('utf8'))?.[1];
      if (path) longName = path;
    } else if (type === 'L') {
      longName = tarString((await readData()).subarray(0, size));
    } else {
      const name =
        header.subarray(257, 262).toString('latin1') === 'ustar'
          ? ustarName(header)
          : tarString(header.subarray(0, 100));
      if (type === '0' || type === '\0' || type === '7') {
        members.set((longName ?? name).replace(/^(\.\/)+|^\/+/, ''), { offset: dataOffset, size });
      }
      if (type !== 'g') longName = undefined;
    }
    offset = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
  }
  return members;
}

function ustarName(header: Buffer): string {
  const prefix = tarString(header.subarray(345, 500));
  const name = tarString(header.subarray(0, 100));
  return prefix ? `${prefix}/${name}` : name;
}

function tarString(b: Buffer): string {
  const end = b.indexOf(0);
  return b.subarray(0, end === -1 ? b.length : end).toString('utf8');
}

/** A header number: octal text, or GNU's base-256 when the high bit is set (members over 8 GiB). */
function tarNumber(b: Buffer): number {
  if ((b[0] ?? 0) & 0x80) {
    let n = (b[0] ?? 0) & 0x7f;
    for (const byte of b.subarray(1)) n = n * 256 + byte;
    return n;
  }
  return Number.parseInt(tarString(b).trim() || '0', 8);
}
