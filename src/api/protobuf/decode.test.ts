import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import {
  decodeKubernetesProtobuf,
  describeSchemaForTests,
  formatGoDuration,
  isKubernetesProtobuf,
  ProtobufDecodeError,
} from './decode.ts';
import { FieldType, type MessageInfo, parseFileDescriptor, splitFileDescriptorSet } from './descriptor.ts';
import { K8S_DESCRIPTOR_SET_GZIP_BASE64 } from './descriptors.gen.ts';

// ---------------------------------------------------------------------------
// A tiny descriptor-driven encoder, so hand-written cases can be spelled with
// proto field names (looked up in the same descriptors) instead of raw field
// numbers. It writes the proto structure as given: tests state inline
// wrappers, IntOrString and Time messages explicitly, so the decoder's JSON
// mapping is what is under test.
// ---------------------------------------------------------------------------

const messages = new Map<string, MessageInfo>();
for (const file of splitFileDescriptorSet(
  gunzipSync(Buffer.from(K8S_DESCRIPTOR_SET_GZIP_BASE64, 'base64')),
)) {
  for (const m of parseFileDescriptor(file).messages) messages.set(m.fullName, m);
}

function varint(value: bigint): number[] {
  let v = BigInt.asUintN(64, value);
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

function key(no: number, wt: number): number[] {
  return varint(BigInt(no * 8 + wt));
}

function lengthDelimited(no: number, payload: Uint8Array): number[] {
  return [...key(no, 2), ...varint(BigInt(payload.length)), ...payload];
}

type ProtoValue = string | number | bigint | boolean | Uint8Array | ProtoObject | ProtoValue[];
interface ProtoObject {
  [field: string]: ProtoValue;
}

function encodeValue(type: number, typeName: string, no: number, value: ProtoValue): number[] {
  if (type === FieldType.Message) {
    const payload = value instanceof Uint8Array ? value : encode(typeName, value as ProtoObject);
    return lengthDelimited(no, payload);
  }
  if (type === FieldType.String) return lengthDelimited(no, Buffer.from(value as string));
  if (type === FieldType.Bytes) return lengthDelimited(no, value as Uint8Array);
  if (type === FieldType.Bool) return [...key(no, 0), value ? 1 : 0];
  return [...key(no, 0), ...varint(BigInt(value as number | bigint))];
}

function encode(typeName: string, obj: ProtoObject): Uint8Array {
  const m = messages.get(typeName);
  assert.ok(m, `test encoder: unknown message ${typeName}`);
  const out: number[] = [];
  for (const [name, value] of Object.entries(obj)) {
    if (name.startsWith('#')) {
      // "#<number>": a raw field the schema does not know, e.g. from a newer client.
      out.push(...lengthDelimited(Number(name.slice(1)), value as Uint8Array));
      continue;
    }
    const f = m.fields.find((x) => x.name === name);
    assert.ok(f, `test encoder: ${typeName} has no field ${name}`);
    const entry = f.type === FieldType.Message ? messages.get(f.typeName) : undefined;
    if (entry?.mapEntry) {
      const [k, v] = [entry.fields.find((x) => x.number === 1)!, entry.fields.find((x) => x.number === 2)!];
      for (const [mk, mv] of Object.entries(value as ProtoObject)) {
        const payload = Uint8Array.from([
          ...encodeValue(k.type, k.typeName, 1, mk),
          ...encodeValue(v.type, v.typeName, 2, mv),
        ]);
        out.push(...lengthDelimited(f.number, payload));
      }
    } else if (f.repeated) {
      for (const item of value as ProtoValue[]) out.push(...encodeValue(f.type, f.typeName, f.number, item));
    } else out.push(...encodeValue(f.type, f.typeName, f.number, value));
  }
  return Uint8Array.from(out);
}

/** "k8s\0" + runtime.Unknown{typeMeta, raw, contentEncoding, contentType}. */
function envelope(apiVersion: string, kind: string, raw: Uint8Array, extra: number[] = []): Uint8Array {
  const typeMeta = Uint8Array.from([
    ...lengthDelimited(1, Buffer.from(apiVersion)),
    ...lengthDelimited(2, Buffer.from(kind)),
  ]);
  return Uint8Array.from([
    0x6b,
    0x38,
    0x73,
    0x00,
    ...lengthDelimited(1, typeMeta),
    ...lengthDelimited(2, raw),
    ...extra,
  ]);
}

function object(apiVersion: string, kind: string, typeName: string, obj: ProtoObject): Uint8Array {
  return envelope(apiVersion, kind, encode(typeName, obj));
}

const CORE = 'k8s.io.api.core.v1';
const META = 'k8s.io.apimachinery.pkg.apis.meta.v1';

function expectDecodeError(body: Uint8Array, reason?: string): void {
  assert.throws(
    () => decodeKubernetesProtobuf(body),
    (err: unknown) => err instanceof ProtobufDecodeError && (reason === undefined || err.reason === reason),
  );
}

/** Decoding may succeed or fail, but only with ProtobufDecodeError. */
function decodesOrRejectsCleanly(body: Uint8Array): void {
  try {
    decodeKubernetesProtobuf(body);
  } catch (err) {
    if (!(err instanceof ProtobufDecodeError)) throw err;
  }
}

/** Small deterministic PRNG (mulberry32) so fuzz failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SAMPLE_POD = object('v1', 'Pod', `${CORE}.Pod`, {
  metadata: {
    name: 'web',
    namespace: 'default',
    generateName: '', // Go writes empty non-pointer strings; JSON would not
    creationTimestamp: {}, // zero Time
    deletionTimestamp: { seconds: 1_700_000_000, nanos: 500 },
    deletionGracePeriodSeconds: 30n,
    labels: { app: 'web', empty: '' },
  },
  spec: {
    volumes: [
      {
        name: 'cfg',
        volumeSource: { configMap: { localObjectReference: { name: 'cm' }, defaultMode: 420 } },
      },
    ],
    containers: [
      {
        name: 'app',
        image: 'nginx',
        args: ['', 'x'],
        workingDir: '',
        env: [
          {
            name: 'PASSWORD',
            valueFrom: { secretKeyRef: { localObjectReference: { name: 'creds' }, key: 'pw' } },
          },
        ],
        resources: { limits: { cpu: { string: '500m' }, memory: { string: '64Mi' } } },
        readinessProbe: {
          handler: { httpGet: { path: '/healthz', port: { type: 1, strVal: 'http' } } },
          periodSeconds: 0,
        },
        livenessProbe: { handler: { tcpSocket: { port: { type: 0, intVal: 8080 } } } },
      },
    ],
    securityContext: { runAsUser: -1n, supplementalGroups: [1n, 2n] },
    '#999': Buffer.from('a field from the future'),
  },
});

describe('decodeKubernetesProtobuf: JSON mapping', () => {
  test('maps Go-shaped protobuf to the JSON a client would send', () => {
    assert.deepEqual(decodeKubernetesProtobuf(SAMPLE_POD), {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'web',
        namespace: 'default',
        deletionTimestamp: '2023-11-14T22:13:20Z',
        deletionGracePeriodSeconds: 30,
        labels: { app: 'web', empty: '' },
      },
      spec: {
        volumes: [{ name: 'cfg', configMap: { name: 'cm', defaultMode: 420 } }],
        containers: [
          {
            name: 'app',
            image: 'nginx',
            args: ['', 'x'],
            env: [{ name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'creds', key: 'pw' } } }],
            resources: { limits: { cpu: '500m', memory: '64Mi' } },
            readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 0 },
            livenessProbe: { tcpSocket: { port: 8080 } },
          },
        ],
        securityContext: { runAsUser: -1, supplementalGroups: [1, 2] },
      },
    });
  });

  test('accepts packed repeated scalars', () => {
    const packed = Uint8Array.from([
      ...lengthDelimited(4, Uint8Array.from([...varint(5n), ...varint(300n)])),
    ]);
    const body = object('v1', 'Pod', `${CORE}.Pod`, { spec: { securityContext: packed } });
    assert.deepEqual(decodeKubernetesProtobuf(body).spec, {
      securityContext: { supplementalGroups: [5, 300] },
    });
  });

  test('bytes become base64 and map values keep empty strings', () => {
    const body = object('v1', 'Secret', `${CORE}.Secret`, {
      metadata: { name: 's' },
      data: { k: Buffer.from('v'), empty: new Uint8Array(0), bin: Uint8Array.from([0, 255, 1]) },
      type: 'Opaque',
    });
    assert.deepEqual(decodeKubernetesProtobuf(body), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 's' },
      data: { k: 'dg==', empty: '', bin: 'AP8B' },
      type: 'Opaque',
    });
  });

  test('"__proto__" map keys stay ordinary keys', () => {
    const data = JSON.parse('{"__proto__":"x","a":"b"}') as ProtoObject; // a literal would set the prototype
    const body = object('v1', 'ConfigMap', `${CORE}.ConfigMap`, { data });
    const decoded = decodeKubernetesProtobuf(body).data as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
    assert.deepEqual(Object.keys(decoded), ['__proto__', 'a']);
    assert.equal(JSON.stringify(decoded), '{"__proto__":"x","a":"b"}');
  });

  test('MicroTime keeps microseconds; Time drops sub-second precision', () => {
    const body = object('events.k8s.io/v1', 'Event', 'k8s.io.api.events.v1.Event', {
      metadata: { name: 'e', creationTimestamp: { seconds: 1_700_000_000, nanos: 999_000_000 } },
      eventTime: { seconds: 1_700_000_000, nanos: 123_456_789 },
      deprecatedFirstTimestamp: {},
      series: { count: 2, lastObservedTime: { seconds: 0, nanos: 1000 } },
      reason: 'Started',
    });
    assert.deepEqual(decodeKubernetesProtobuf(body), {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name: 'e', creationTimestamp: '2023-11-14T22:13:20Z' },
      eventTime: '2023-11-14T22:13:20.123456Z',
      series: { count: 2, lastObservedTime: '1970-01-01T00:00:00.000001Z' },
      reason: 'Started',
    });
  });

  test('ingress rule values and webhook names follow the JSON tags', () => {
    const ingress = object('networking.k8s.io/v1', 'Ingress', 'k8s.io.api.networking.v1.Ingress', {
      spec: {
        rules: [
          {
            host: 'example.com',
            ingressRuleValue: {
              http: {
                paths: [
                  {
                    path: '/',
                    pathType: 'Prefix',
                    backend: { service: { name: 'svc', port: { number: 80 } } },
                  },
                ],
              },
            },
          },
        ],
      },
    });
    assert.deepEqual(decodeKubernetesProtobuf(ingress).spec, {
      rules: [
        {
          host: 'example.com',
          http: {
            paths: [
              { path: '/', pathType: 'Prefix', backend: { service: { name: 'svc', port: { number: 80 } } } },
            ],
          },
        },
      ],
    });
    const webhooks = object(
      'admissionregistration.k8s.io/v1',
      'ValidatingWebhookConfiguration',
      'k8s.io.api.admissionregistration.v1.ValidatingWebhookConfiguration',
      {
        Webhooks: [
          {
            name: 'w.example.com',
            rules: [{ operations: ['CREATE'], rule: { apiGroups: [''], resources: ['pods'] } }],
          },
        ],
      },
    );
    assert.deepEqual(decodeKubernetesProtobuf(webhooks).webhooks, [
      { name: 'w.example.com', rules: [{ operations: ['CREATE'], apiGroups: [''], resources: ['pods'] }] },
    ]);
  });

  test('RawExtension holds JSON; nested protobuf objects decode too', () => {
    const inner = object('v1', 'ConfigMap', `${CORE}.ConfigMap`, { metadata: { name: 'in' } });
    const list = object('v1', 'List', `${CORE}.List`, {
      items: [{ raw: Buffer.from('{"kind":"Secret","apiVersion":"v1"}') }, { raw: inner }],
    });
    assert.deepEqual(decodeKubernetesProtobuf(list), {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { kind: 'Secret', apiVersion: 'v1' },
        { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'in' } },
      ],
    });
  });

  test('meta kinds resolve in every group version', () => {
    const body = object('apps/v1', 'DeleteOptions', `${META}.DeleteOptions`, {
      gracePeriodSeconds: 0n,
      propagationPolicy: 'Foreground',
      dryRun: ['All'],
    });
    assert.deepEqual(decodeKubernetesProtobuf(body), {
      apiVersion: 'apps/v1',
      kind: 'DeleteOptions',
      gracePeriodSeconds: 0,
      propagationPolicy: 'Foreground',
      dryRun: ['All'],
    });
  });

  test('every served kind has a schema', () => {
    const kinds: [string, string][] = [
      ['v1', 'Pod'],
      ['v1', 'PersistentVolumeClaim'],
      ['apps/v1', 'StatefulSet'],
      ['batch/v1', 'CronJob'],
      ['networking.k8s.io/v1', 'NetworkPolicy'],
      ['discovery.k8s.io/v1', 'EndpointSlice'],
      ['coordination.k8s.io/v1', 'Lease'],
      ['events.k8s.io/v1', 'Event'],
      ['rbac.authorization.k8s.io/v1', 'ClusterRoleBinding'],
      ['storage.k8s.io/v1', 'StorageClass'],
      ['policy/v1', 'PodDisruptionBudget'],
      ['autoscaling/v1', 'HorizontalPodAutoscaler'],
      ['autoscaling/v2', 'HorizontalPodAutoscaler'],
      ['scheduling.k8s.io/v1', 'PriorityClass'],
      ['authentication.k8s.io/v1', 'TokenReview'],
      ['authorization.k8s.io/v1', 'SelfSubjectAccessReview'],
      ['admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration'],
      ['meta.k8s.io/v1', 'Status'],
    ];
    for (const [apiVersion, kind] of kinds) {
      assert.deepEqual(decodeKubernetesProtobuf(envelope(apiVersion, kind, new Uint8Array(0))), {
        apiVersion,
        kind,
      });
    }
  });

  test('storageClassName "" survives (it means "no class")', () => {
    const body = object('v1', 'PersistentVolumeClaim', `${CORE}.PersistentVolumeClaim`, {
      spec: { storageClassName: '', volumeName: '' },
    });
    assert.deepEqual(decodeKubernetesProtobuf(body).spec, { storageClassName: '' });
  });

  test('the hand-kept inline and rename tables match the descriptors', () => {
    const { inlineFields, renamedFields } = describeSchemaForTests();
    for (const f of [
      `${CORE}.Volume.volumeSource`,
      `${CORE}.PersistentVolumeSpec.persistentVolumeSource`,
      `${CORE}.Probe.handler`,
      `${CORE}.ConfigMapKeySelector.localObjectReference`,
      `${CORE}.SecretEnvSource.localObjectReference`,
      `${CORE}.EphemeralContainer.ephemeralContainerCommon`,
      'k8s.io.api.networking.v1.IngressRule.ingressRuleValue',
      'k8s.io.api.admissionregistration.v1.RuleWithOperations.rule',
      'k8s.io.api.admissionregistration.v1.NamedRuleWithOperations.ruleWithOperations',
    ]) {
      assert.ok(inlineFields.includes(f), `${f} should be inlined`);
    }
    assert.deepEqual(renamedFields.sort(), [
      'k8s.io.api.admissionregistration.v1.MutatingWebhookConfiguration.Webhooks',
      'k8s.io.api.admissionregistration.v1.ValidatingWebhookConfiguration.Webhooks',
      'k8s.io.api.admissionregistration.v1.Validation.Expression',
      'k8s.io.api.admissionregistration.v1.Variable.Expression',
      'k8s.io.api.admissionregistration.v1.Variable.Name',
      'k8s.io.api.authentication.v1.BoundObjectReference.uID',
      'k8s.io.api.networking.v1.IngressClassParametersReference.aPIGroup',
    ]);
  });

  test('formatGoDuration matches time.Duration.String', () => {
    const cases: [bigint, string][] = [
      [0n, '0s'],
      [1n, '1ns'],
      [1_500n, '1.5µs'],
      [300_000_000n, '300ms'],
      [1_500_000_000n, '1.5s'],
      [30_000_000_000n, '30s'],
      [90_000_000_000n, '1m30s'],
      [3_600_000_000_000n, '1h0m0s'],
      [3_723_000_000_001n, '1h2m3.000000001s'],
      [-5_000_000_000n, '-5s'],
    ];
    for (const [ns, want] of cases) assert.equal(formatGoDuration(ns), want, String(ns));
  });
});

describe('decodeKubernetesProtobuf: bad input', () => {
  test('wrong or missing magic', () => {
    expectDecodeError(Buffer.from('{"kind":"Pod"}'), 'NotProtobuf');
    expectDecodeError(new Uint8Array(0), 'NotProtobuf');
    expectDecodeError(Uint8Array.from([0x6b, 0x38, 0x73]), 'NotProtobuf');
    expectDecodeError(Uint8Array.from([0x6b, 0x38, 0x73, 0x01, 0x0a, 0x00]), 'NotProtobuf');
    assert.equal(isKubernetesProtobuf(SAMPLE_POD), true);
    assert.equal(isKubernetesProtobuf(Buffer.from('{}')), false);
  });

  test('unknown apiVersion or kind', () => {
    expectDecodeError(envelope('v1', 'Widget', new Uint8Array(0)), 'UnknownType');
    expectDecodeError(envelope('example.com/v1', 'Pod', new Uint8Array(0)), 'UnknownType');
    expectDecodeError(envelope('v2', 'Pod', new Uint8Array(0)), 'UnknownType');
    expectDecodeError(envelope('v1', 'ObjectMeta.LabelsEntry', new Uint8Array(0)), 'UnknownType');
    expectDecodeError(envelope('', '', new Uint8Array(0)), 'UnknownType');
    assert.throws(
      () => decodeKubernetesProtobuf(envelope('v1', 'Widget', new Uint8Array(0))),
      /apiVersion "v1", kind "Widget"/,
    );
  });

  test('content encodings are refused', () => {
    expectDecodeError(
      envelope('v1', 'Pod', new Uint8Array(0), lengthDelimited(3, Buffer.from('gzip'))),
      'Unsupported',
    );
  });

  test('truncated bodies', () => {
    expectDecodeError(SAMPLE_POD.subarray(0, SAMPLE_POD.length - 1), 'Malformed');
    for (let n = 0; n <= SAMPLE_POD.length; n++) decodesOrRejectsCleanly(SAMPLE_POD.subarray(0, n));
  });

  test('random bytes and mutations never escape as other errors', () => {
    const rand = prng(42);
    for (let i = 0; i < 2000; i++) {
      const junk = Uint8Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256));
      decodesOrRejectsCleanly(Uint8Array.from([0x6b, 0x38, 0x73, 0x00, ...junk]));
      const mutated = Uint8Array.from(SAMPLE_POD);
      for (let j = 0; j < 3; j++)
        mutated[4 + Math.floor(rand() * (mutated.length - 4))] = Math.floor(rand() * 256);
      decodesOrRejectsCleanly(mutated);
    }
  });

  test('hostile nesting is rejected, not a stack overflow', () => {
    let body = object('v1', 'ConfigMap', `${CORE}.ConfigMap`, {});
    for (let i = 0; i < 300; i++) body = object('v1', 'List', `${CORE}.List`, { items: [{ raw: body }] });
    expectDecodeError(body, 'Malformed');
  });

  test('a wrong wire type for a known field is malformed', () => {
    // ConfigMap.metadata (field 1) sent as a varint.
    expectDecodeError(envelope('v1', 'ConfigMap', Uint8Array.from([0x08, 0x01])), 'Malformed');
  });
});

// ---------------------------------------------------------------------------
// Real bodies: run kubectl against a throwaway HTTP server that records them.
// ---------------------------------------------------------------------------

const PROTOBUF = 'application/vnd.kubernetes.protobuf';

interface KubectlRun {
  code: number;
  stdout: string;
  stderr: string;
  posts: { path: string; contentType: string; body: Buffer }[];
}

function resource(name: string, kind: string, namespaced: boolean) {
  return { name, singularName: '', namespaced, kind, verbs: ['create', 'delete', 'get', 'list', 'update'] };
}

const DISCOVERY: Record<string, unknown> = {
  '/api': { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] },
  '/apis': {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: [
      'apps',
      'batch',
      'networking.k8s.io',
      'rbac.authorization.k8s.io',
      'policy',
      'scheduling.k8s.io',
    ].map((name) => ({
      name,
      versions: [{ groupVersion: `${name}/v1`, version: 'v1' }],
      preferredVersion: { groupVersion: `${name}/v1`, version: 'v1' },
    })),
  },
  '/api/v1': {
    kind: 'APIResourceList',
    groupVersion: 'v1',
    resources: [
      resource('configmaps', 'ConfigMap', true),
      resource('secrets', 'Secret', true),
      resource('namespaces', 'Namespace', false),
      resource('services', 'Service', true),
      resource('serviceaccounts', 'ServiceAccount', true),
      resource('resourcequotas', 'ResourceQuota', true),
      resource('pods', 'Pod', true),
    ],
  },
  '/apis/apps/v1': {
    kind: 'APIResourceList',
    groupVersion: 'apps/v1',
    resources: [resource('deployments', 'Deployment', true)],
  },
  '/apis/batch/v1': {
    kind: 'APIResourceList',
    groupVersion: 'batch/v1',
    resources: [resource('jobs', 'Job', true), resource('cronjobs', 'CronJob', true)],
  },
  '/apis/networking.k8s.io/v1': {
    kind: 'APIResourceList',
    groupVersion: 'networking.k8s.io/v1',
    resources: [resource('ingresses', 'Ingress', true)],
  },
  '/apis/rbac.authorization.k8s.io/v1': {
    kind: 'APIResourceList',
    groupVersion: 'rbac.authorization.k8s.io/v1',
    resources: [resource('rolebindings', 'RoleBinding', true), resource('roles', 'Role', true)],
  },
  '/apis/policy/v1': {
    kind: 'APIResourceList',
    groupVersion: 'policy/v1',
    resources: [resource('poddisruptionbudgets', 'PodDisruptionBudget', true)],
  },
  '/apis/scheduling.k8s.io/v1': {
    kind: 'APIResourceList',
    groupVersion: 'scheduling.k8s.io/v1',
    resources: [resource('priorityclasses', 'PriorityClass', false)],
  },
};

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** Answers for a recorded create: a minimal object of the posted kind. */
function created(path: string, body: Buffer): unknown {
  if (path.endsWith('/token')) {
    return {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      status: { token: 'token', expirationTimestamp: '2030-01-01T00:00:00Z' },
    };
  }
  try {
    const obj = decodeKubernetesProtobuf(body);
    return { apiVersion: obj.apiVersion, kind: obj.kind, metadata: obj.metadata };
  } catch {
    return JSON.parse(body.toString('utf8'));
  }
}

let workDir = '';

/** Runs kubectl against a fresh recording server, which is closed again before returning. */
async function runKubectl(kubectl: string, args: string[]): Promise<KubectlRun> {
  const posts: KubectlRun['posts'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const body = Buffer.concat(chunks);
      if (req.method === 'POST') {
        posts.push({ path: url.pathname, contentType: req.headers['content-type'] ?? '', body });
        reply(res, 201, created(url.pathname, body));
        return;
      }
      const doc = DISCOVERY[url.pathname];
      // /version stays 404: gcloud's kubectl dispatcher would otherwise pick
      // the kubectl matching the server's version instead of its own.
      if (req.method === 'GET' && doc) reply(res, 200, doc);
      else
        reply(res, 404, {
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          reason: 'NotFound',
          code: 404,
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const kubeconfig = path.join(workDir, `kubeconfig-${port}`);
  writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: c, cluster: {server: "http://127.0.0.1:' + port + '"}}]',
      'users: [{name: u, user: {}}]',
      'contexts: [{name: c, context: {cluster: c, user: u, namespace: default}}]',
      'current-context: c',
      '',
    ].join('\n'),
  );
  try {
    return await new Promise<KubectlRun>((resolve) => {
      execFile(
        kubectl,
        // Global flags first: some commands pass everything after "--" on to the container.
        ['--kubeconfig', kubeconfig, '--cache-dir', path.join(workDir, `cache-${port}`), ...args],
        {
          timeout: 15_000,
          killSignal: 'SIGKILL',
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: workDir, KUBECONFIG: kubeconfig },
        },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
          resolve({ code, stdout, stderr, posts });
        },
      );
    });
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * The decoded object must say everything the JSON says (JSON's null means
 * absent), and may add only zero values: Go writes non-pointer ints and
 * bools even when zero, where JSON's omitempty leaves them out.
 */
function assertMatchesJson(decoded: unknown, json: unknown, at = '$'): void {
  if (json === null) {
    assert.equal(decoded, undefined, `${at} should be absent`);
  } else if (Array.isArray(json)) {
    assert.ok(Array.isArray(decoded), `${at} should be an array`);
    assert.equal(decoded.length, json.length, `${at} length`);
    for (const [i, item] of json.entries()) assertMatchesJson(decoded[i], item, `${at}[${i}]`);
  } else if (typeof json === 'object') {
    assert.ok(
      decoded !== null && typeof decoded === 'object' && !Array.isArray(decoded),
      `${at} should be an object`,
    );
    const d = decoded as Record<string, unknown>;
    const j = json as Record<string, unknown>;
    for (const [k, v] of Object.entries(j)) assertMatchesJson(d[k], v, `${at}.${k}`);
    for (const [k, v] of Object.entries(d)) {
      if (!(k in j)) assert.ok(isZero(v), `${at}.${k} = ${JSON.stringify(v)} is not in the JSON`);
    }
  } else {
    assert.equal(decoded, json, at);
  }
}

function isZero(v: unknown): boolean {
  if (v === 0 || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  return typeof v === 'object' && v !== null && Object.values(v).every(isZero);
}

interface Case {
  name: string;
  args: string[];
  /** false when the command has no --dry-run. */
  dryRun?: boolean;
  check: (obj: Record<string, unknown>) => void;
}

type Any = any;

const CASES: Case[] = [
  {
    name: 'configmap',
    args: ['create', 'configmap', 'c', '--from-literal=a=b', '--from-literal=e='],
    check: (o: Any) => {
      assert.equal(o.apiVersion, 'v1');
      assert.equal(o.kind, 'ConfigMap');
      assert.deepEqual(o.metadata, { name: 'c', generation: 0 });
      assert.deepEqual(o.data, { a: 'b', e: '' });
    },
  },
  {
    name: 'secret generic',
    args: ['create', 'secret', 'generic', 's', '--from-literal=k=v'],
    check: (o: Any) => {
      assert.equal(o.kind, 'Secret');
      assert.deepEqual(o.data, { k: Buffer.from('v').toString('base64') });
    },
  },
  {
    name: 'namespace',
    args: ['create', 'namespace', 'n'],
    check: (o: Any) => {
      assert.equal(o.kind, 'Namespace');
      assert.equal(o.metadata.name, 'n');
      assert.deepEqual(o.spec, {});
    },
  },
  {
    name: 'deployment',
    args: ['create', 'deployment', 'd', '--image=busybox', '--replicas=0', '--port=8080'],
    check: (o: Any) => {
      assert.equal(o.apiVersion, 'apps/v1');
      assert.equal(o.kind, 'Deployment');
      assert.equal(o.spec.replicas, 0);
      assert.deepEqual(o.spec.selector, { matchLabels: { app: 'd' } });
      const c = o.spec.template.spec.containers[0];
      assert.equal(c.image, 'busybox');
      assert.equal(c.ports[0].containerPort, 8080);
      assert.equal(o.metadata.creationTimestamp, undefined);
      assert.equal(o.spec.template.metadata.creationTimestamp, undefined);
    },
  },
  {
    name: 'service clusterip',
    args: ['create', 'service', 'clusterip', 's', '--tcp=80:8080'],
    check: (o: Any) => {
      assert.equal(o.kind, 'Service');
      assert.equal(o.spec.type, 'ClusterIP');
      assert.equal(o.spec.ports[0].port, 80);
      assert.equal(o.spec.ports[0].targetPort, 8080);
      assert.equal(o.spec.ports[0].protocol, 'TCP');
      assert.equal(o.spec.clusterIP, undefined);
    },
  },
  {
    name: 'job',
    args: ['create', 'job', 'j', '--image=busybox', '--', 'echo', 'hi'],
    check: (o: Any) => {
      assert.equal(o.apiVersion, 'batch/v1');
      assert.deepEqual(o.spec.template.spec.containers[0].command, ['echo', 'hi']);
      assert.equal(o.spec.template.spec.restartPolicy, 'Never');
    },
  },
  {
    name: 'cronjob',
    args: ['create', 'cronjob', 'cj', '--image=busybox', '--schedule=*/5 * * * *'],
    check: (o: Any) => {
      assert.equal(o.kind, 'CronJob');
      assert.equal(o.spec.schedule, '*/5 * * * *');
      assert.equal(o.spec.jobTemplate.spec.template.spec.containers[0].image, 'busybox');
    },
  },
  {
    name: 'ingress',
    args: ['create', 'ingress', 'i', '--rule=foo.com/bar=svc1:8080'],
    check: (o: Any) => {
      assert.equal(o.apiVersion, 'networking.k8s.io/v1');
      const rule = o.spec.rules[0];
      assert.equal(rule.host, 'foo.com');
      assert.deepEqual(rule.http.paths[0].backend, { service: { name: 'svc1', port: { number: 8080 } } });
    },
  },
  {
    name: 'rolebinding',
    args: ['create', 'rolebinding', 'rb', '--clusterrole=view', '--user=u'],
    check: (o: Any) => {
      assert.deepEqual(o.roleRef, {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'view',
      });
      assert.deepEqual(o.subjects, [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'u' }]);
    },
  },
  {
    name: 'poddisruptionbudget',
    args: ['create', 'pdb', 'p', '--selector=app=x', '--min-available=50%'],
    check: (o: Any) => {
      assert.equal(o.apiVersion, 'policy/v1');
      assert.equal(o.spec.minAvailable, '50%');
      assert.deepEqual(o.spec.selector, { matchLabels: { app: 'x' } });
    },
  },
  {
    name: 'priorityclass',
    args: ['create', 'priorityclass', 'pc', '--value=1000', '--description=d', '--preemption-policy=Never'],
    check: (o: Any) => {
      assert.equal(o.value, 1000);
      assert.equal(o.description, 'd');
      assert.equal(o.preemptionPolicy, 'Never');
    },
  },
  {
    name: 'resourcequota',
    args: ['create', 'quota', 'q', '--hard=cpu=1,memory=1G,pods=10'],
    check: (o: Any) => {
      assert.deepEqual(o.spec.hard, { cpu: '1', memory: '1G', pods: '10' });
    },
  },
  {
    name: 'token',
    args: ['create', 'token', 'default', '--duration=1h', '--audience=a'],
    dryRun: false,
    check: (o: Any) => {
      assert.equal(o.apiVersion, 'authentication.k8s.io/v1');
      assert.equal(o.kind, 'TokenRequest');
      assert.deepEqual(o.spec.audiences, ['a']);
      assert.equal(o.spec.expirationSeconds, 3600);
    },
  },
];

/** Adds --dry-run=client -o json before any "--" (after it, args belong to the container). */
function withDryRun(args: string[]): string[] {
  const dash = args.indexOf('--');
  const at = dash < 0 ? args.length : dash;
  return [...args.slice(0, at), '--dry-run=client', '-o', 'json', ...args.slice(at)];
}

const KUBECTLS = ['/usr/bin/kubectl', '/usr/lib/google-cloud-sdk/bin/kubectl.1.33'];

before(() => {
  workDir = mkdtempSync(path.join(tmpdir(), 'skiff-protobuf-'));
});

after(() => {
  rmSync(workDir, { recursive: true, force: true });
});

for (const kubectl of KUBECTLS) {
  describe(`real bodies from ${kubectl}`, {
    skip: existsSync(kubectl) ? false : `${kubectl} not installed`,
  }, () => {
    const results = new Map<string, { run: KubectlRun; dry: KubectlRun | undefined }>();

    before(async () => {
      // A few at a time: each run is a separate kubectl process and server.
      const queue = [...CASES];
      const worker = async () => {
        for (let c = queue.shift(); c; c = queue.shift()) {
          const run = await runKubectl(kubectl, c.args);
          const dry = c.dryRun === false ? undefined : await runKubectl(kubectl, withDryRun(c.args));
          results.set(c.name, { run, dry });
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
    });

    for (const c of CASES) {
      test(`kubectl ${c.args.slice(0, 3).join(' ')}`, (t) => {
        const r = results.get(c.name);
        assert.ok(r, 'kubectl did not run');
        const post = r.run.posts[0];
        assert.ok(post, `kubectl posted nothing (exit ${r.run.code}): ${r.run.stderr}`);
        assert.equal(r.run.posts.length, 1);
        if (post.contentType !== PROTOBUF) {
          t.skip(`this kubectl sends ${post.contentType}`);
          return;
        }
        const decoded = decodeKubernetesProtobuf(post.body);
        c.check(decoded);
        if (r.dry) {
          assert.equal(r.dry.code, 0, r.dry.stderr);
          assertMatchesJson(decoded, JSON.parse(r.dry.stdout));
        }
      });
    }

    test('truncations and mutations of real bodies fail cleanly', () => {
      const rand = prng(7);
      for (const { run } of results.values()) {
        const body = run.posts[0]?.body;
        if (!body || !isKubernetesProtobuf(body)) continue;
        expectDecodeError(body.subarray(0, body.length - 1));
        for (let n = 0; n < body.length; n++) decodesOrRejectsCleanly(body.subarray(0, n));
        for (let i = 0; i < 200; i++) {
          const mutated = Uint8Array.from(body);
          mutated[4 + Math.floor(rand() * (mutated.length - 4))] = Math.floor(rand() * 256);
          decodesOrRejectsCleanly(mutated);
        }
      }
    });
  });
}
