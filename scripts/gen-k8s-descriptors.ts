// Regenerates src/api/protobuf/descriptors.gen.ts: the protobuf schemas of the
// API groups Skiff serves, so the API server can decode the
// application/vnd.kubernetes.protobuf request bodies kubectl >= 1.32 sends.
//
//   node scripts/gen-k8s-descriptors.ts [path/to/kubectl]
//
// No .proto files are available offline, but every Go program built against
// k8s.io/api embeds each package's generated.proto as a gzipped
// FileDescriptorProto (registered with the protobuf runtime at init). We find
// those gzip streams in the kubectl binary, keep the Kubernetes files we need
// (plus their k8s.io dependencies) and store them as one gzipped, base64
// FileDescriptorSet. Descriptors are kept byte for byte as kubectl has them;
// they compress to a few tens of kilobytes, so nothing is stripped.

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { type FileInfo, parseFileDescriptor } from '../src/api/protobuf/descriptor.ts';
import { ProtoWriter } from '../src/api/protobuf/wire.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const OUTPUT = path.join(ROOT, 'src/api/protobuf/descriptors.gen.ts');

/** The packages Skiff serves; dependencies (meta/v1, runtime, ...) are added automatically. */
const REQUIRED = [
  'k8s.io/apimachinery/pkg/apis/meta/v1',
  'k8s.io/apimachinery/pkg/runtime',
  'k8s.io/apimachinery/pkg/runtime/schema',
  'k8s.io/apimachinery/pkg/util/intstr',
  'k8s.io/apimachinery/pkg/api/resource',
  'k8s.io/api/core/v1',
  'k8s.io/api/apps/v1',
  'k8s.io/api/batch/v1',
  'k8s.io/api/networking/v1',
  'k8s.io/api/discovery/v1',
  'k8s.io/api/coordination/v1',
  'k8s.io/api/events/v1',
  'k8s.io/api/rbac/v1',
  'k8s.io/api/storage/v1',
  'k8s.io/api/policy/v1',
  'k8s.io/api/autoscaling/v1',
  'k8s.io/api/autoscaling/v2',
  'k8s.io/api/scheduling/v1',
  'k8s.io/api/authentication/v1',
  'k8s.io/api/authorization/v1',
  'k8s.io/api/admissionregistration/v1',
  'k8s.io/api/certificates/v1',
].map((p) => `${p}/generated.proto`);

/** Wanted when the binary has them; kubectl does not link the CRD types today. */
const OPTIONAL = ['k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1/generated.proto'];

// gzip member header as Go's compress/gzip writes it: deflate, no flags,
// zero mtime, XFL=2 (best compression), OS=255 (unknown).
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xff]);
// The largest Kubernetes descriptor (core/v1) is ~16 KiB compressed; the
// window only bounds the work spent on false header matches.
const MAX_COMPRESSED = 1 << 20;

function defaultBinary(): string {
  const newest = '/usr/lib/google-cloud-sdk/bin/kubectl.1.33';
  return existsSync(newest) ? newest : '/usr/bin/kubectl';
}

function kubectlVersion(binary: string): string {
  try {
    const out = execFileSync(binary, ['version', '--client', '-o', 'json'], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    const v = (JSON.parse(out) as { clientVersion?: { gitVersion?: string } }).clientVersion?.gitVersion;
    return v ?? 'unknown version';
  } catch {
    return 'unknown version';
  }
}

/**
 * Inflates the gzip member starting at `at`, checking its CRC and size
 * trailer so a false header match or a truncated stream is rejected.
 */
function gunzipAt(binary: Buffer, at: number): Buffer | undefined {
  const start = at + GZIP_HEADER.length;
  let result: { buffer: Buffer; engine: zlib.InflateRaw };
  try {
    // `info: true` exposes how many compressed bytes the deflate stream used,
    // which locates the trailer; the plain gunzip would also try to treat
    // whatever follows in the binary as further gzip members.
    result = zlib.inflateRawSync(binary.subarray(start, start + MAX_COMPRESSED), {
      info: true,
    }) as unknown as { buffer: Buffer; engine: zlib.InflateRaw };
  } catch {
    return undefined;
  }
  const trailer = start + result.engine.bytesWritten;
  if (trailer + 8 > binary.length) return undefined;
  const crc = binary.readUInt32LE(trailer);
  const size = binary.readUInt32LE(trailer + 4);
  if (crc !== zlib.crc32(result.buffer) || size !== result.buffer.length % 2 ** 32) return undefined;
  return result.buffer;
}

interface Found {
  bytes: Buffer;
  info: FileInfo;
  /** The file name without any vendor/ prefix. */
  name: string;
}

/**
 * kubectl built inside the kubernetes repository (1.27 and older) names the
 * files k8s.io/kubernetes/vendor/k8s.io/api/...; the proto packages, and so
 * the message names, are the same either way.
 */
function canonicalName(file: string): string {
  const at = file.lastIndexOf('/vendor/');
  return at < 0 ? file : file.slice(at + '/vendor/'.length);
}

function extract(binaryPath: string): Map<string, Found> {
  const binary = readFileSync(binaryPath);
  const found = new Map<string, Found>();
  for (let at = binary.indexOf(GZIP_HEADER); at >= 0; at = binary.indexOf(GZIP_HEADER, at + 1)) {
    const bytes = gunzipAt(binary, at);
    if (!bytes) continue;
    let info: FileInfo;
    try {
      info = parseFileDescriptor(bytes);
    } catch {
      continue; // some other gzipped blob
    }
    const name = canonicalName(info.name);
    if (!name.startsWith('k8s.io/') || !name.endsWith('generated.proto')) continue;
    const previous = found.get(name);
    if (previous && !previous.bytes.equals(bytes)) {
      throw new Error(`${binaryPath}: two different descriptors named ${name}`);
    }
    found.set(name, { bytes, info, name });
  }
  return found;
}

/** The wanted files and their k8s.io dependencies, dependencies first. */
function select(found: Map<string, Found>): Found[] {
  const wanted = [...REQUIRED];
  for (const name of REQUIRED) {
    if (!found.has(name)) throw new Error(`descriptor ${name} not found in the binary`);
  }
  for (const name of OPTIONAL) {
    if (found.has(name)) wanted.push(name);
    else console.error(`note: optional ${name} is not in this binary; skipped`);
  }
  const ordered: Found[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, from: string): void => {
    const s = state.get(name);
    if (s === 'done') return;
    if (s === 'visiting') throw new Error(`dependency cycle through ${name}`);
    const file = found.get(name);
    if (!file) throw new Error(`${from} depends on ${name}, which is not in the binary`);
    state.set(name, 'visiting');
    for (const dep of file.info.dependencies) {
      // gogo.proto and similar only define options (nullable, customname,
      // ...) that do not change the wire format, so they are not needed.
      const canonical = canonicalName(dep);
      if (canonical.startsWith('k8s.io/')) visit(canonical, name);
    }
    state.set(name, 'done');
    ordered.push(file);
  };
  for (const name of wanted.sort()) visit(name, 'the wanted list');
  return ordered;
}

/** A single-quoted TS string literal, the style biome enforces here. */
function singleQuoted(s: string): string {
  return `'${s.replace(/[\\']/g, '\\$&')}'`;
}

function main(): void {
  const binary = process.argv[2] ?? defaultBinary();
  const version = kubectlVersion(binary);
  const files = select(extract(binary));

  const set = new ProtoWriter();
  for (const f of files) set.bytesField(1, f.bytes); // FileDescriptorSet.file
  const raw = set.finish();
  const gz = zlib.gzipSync(raw, { level: 9 });
  const b64 = gz.toString('base64');

  const source = `kubectl ${version} (${path.basename(binary)})`;
  const text = `// Code generated by scripts/gen-k8s-descriptors.ts; DO NOT EDIT.
//
// A gzipped, base64-encoded google.protobuf.FileDescriptorSet holding the
// Kubernetes generated.proto descriptors embedded in ${source}.
// Regenerate with: node scripts/gen-k8s-descriptors.ts [path/to/kubectl]
//
// Files (${files.length}, ${raw.length} bytes uncompressed):
${files.map((f) => `//   ${f.name}`).join('\n')}

export const K8S_DESCRIPTOR_SOURCE = ${singleQuoted(source)};

export const K8S_DESCRIPTOR_SET_GZIP_BASE64 =
  '${b64}';
`;
  writeFileSync(OUTPUT, text);
  console.log(
    `wrote ${path.relative(ROOT, OUTPUT)}: ${files.length} files from ${source}, ` +
      `${raw.length} bytes -> ${gz.length} gzipped -> ${text.length} bytes of source`,
  );
}

try {
  main();
} catch (err) {
  // Report and exit normally: an uncaught throw with the ~60 MB binary still
  // referenced sometimes left Node 24 hanging in teardown.
  console.error(`gen-k8s-descriptors: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
