import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PatchError } from './errors.ts';
import {
  applyStrategicMergePatch,
  createStrategicMergePatch,
  kubernetesPatchSchema,
  type PatchFieldMeta,
  type PatchSchema,
} from './strategic.ts';

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

const patchError = (pattern?: RegExp) => (err: unknown) => {
  assert.ok(err instanceof PatchError, `expected PatchError, got ${String(err)}`);
  if (pattern) assert.match(err.message, pattern);
  return true;
};

/** Applies with frozen inputs, so any mutation of them throws. */
function apply(doc: unknown, patch: unknown, schema: PatchSchema = kubernetesPatchSchema): any {
  return applyStrategicMergePatch(
    deepFreeze(structuredClone(doc)),
    deepFreeze(structuredClone(patch)),
    schema,
  );
}

// The MergeItem struct of upstream's patch_test.go, whose fields recurse:
// metadata depends only on the field name.
const mergeItemFields: Record<string, PatchFieldMeta> = {
  mergingList: { strategy: 'merge', mergeKey: 'name' },
  mergingIntList: { strategy: 'merge' },
  mergeItemPtr: { strategy: 'merge', mergeKey: 'name' },
  replacingItem: { strategy: 'replace' },
  retainKeysMap: { strategy: 'retainKeys' },
  retainKeysMergingList: { strategy: 'merge,retainKeys', mergeKey: 'name' },
};
const mergeItemSchema: PatchSchema = { fieldMeta: (path) => mergeItemFields[path.at(-1) ?? ''] };

// Cases from upstream's customStrategicMergePatchTestCaseData and raw cases.
const upstreamCases: { name: string; original: unknown; patch: unknown; result: unknown }[] = [
  {
    name: 'unique scalars when merging lists',
    original: { mergingIntList: [1, 2] },
    patch: { mergingIntList: [2, 3] },
    result: { mergingIntList: [1, 2, 3] },
  },
  {
    name: 'delete map from nested map',
    original: { simpleMap: { key1: 1, key2: 1 } },
    patch: { simpleMap: { $patch: 'delete' } },
    result: { simpleMap: {} },
  },
  {
    name: 'delete all items from merging list',
    original: { mergingList: [{ name: 1 }, { name: 2 }] },
    patch: { mergingList: [{ $patch: 'replace' }] },
    result: { mergingList: [] },
  },
  {
    name: 'merge empty merging lists',
    original: { mergingList: [] },
    patch: { mergingList: [] },
    result: { mergingList: [] },
  },
  {
    name: 'delete all keys from map',
    original: { name: 1, value: 1 },
    patch: { $patch: 'replace' },
    result: {},
  },
  {
    name: 'add key and delete all keys from map',
    original: { name: 1, value: 1 },
    patch: { other: 'a', $patch: 'replace' },
    result: { other: 'a' },
  },
  {
    name: 'delete all duplicate entries in a merging list',
    original: { mergingList: [{ name: 1 }, { name: 1 }, { name: 2, value: 'a' }, { name: 3 }, { name: 3 }] },
    patch: {
      mergingList: [
        { name: 1, $patch: 'delete' },
        { name: 3, $patch: 'delete' },
      ],
    },
    result: { mergingList: [{ name: 2, value: 'a' }] },
  },
  {
    name: 'retainKeys map can add a field when no retainKeys directive present',
    original: { retainKeysMap: { name: 'foo' } },
    patch: { retainKeysMap: { value: 'bar' } },
    result: { retainKeysMap: { name: 'foo', value: 'bar' } },
  },
  {
    name: 'retainKeys map can delete a field when no retainKeys directive present',
    original: { retainKeysMap: { name: 'foo', value: 'a' } },
    patch: { retainKeysMap: { value: null } },
    result: { retainKeysMap: { name: 'foo' } },
  },
  {
    name: 'retainKeys map merge an empty map',
    original: { retainKeysMap: { name: 'foo', value: 'a' } },
    patch: { retainKeysMap: {} },
    result: { retainKeysMap: { name: 'foo', value: 'a' } },
  },
  {
    name: 'retainKeys list can change a field when no retainKeys directive present',
    original: { retainKeysMergingList: [{ name: 'bar' }, { name: 'foo', value: 'a' }] },
    patch: { retainKeysMergingList: [{ name: 'foo', value: 'b' }] },
    result: { retainKeysMergingList: [{ name: 'bar' }, { name: 'foo', value: 'b' }] },
  },
  {
    name: 'retainKeys directive clears unlisted keys',
    original: { retainKeysMap: { name: 'foo', value: 'a', other: 'b' } },
    patch: { retainKeysMap: { $retainKeys: ['name', 'value'], value: 'c' } },
    result: { retainKeysMap: { name: 'foo', value: 'c' } },
  },
  {
    name: 'preserve the order from the patch in a merging list',
    original: { mergingList: [{ name: 1 }, { name: 2, value: 'b' }, { name: 3 }] },
    patch: {
      mergingList: [
        { name: 3, value: 'c' },
        { name: 1, value: 'a' },
        { name: 2, other: 'x' },
      ],
    },
    result: {
      mergingList: [
        { name: 3, value: 'c' },
        { name: 1, value: 'a' },
        { name: 2, value: 'b', other: 'x' },
      ],
    },
  },
  {
    name: 'preserve the order from the patch in a merging list 2',
    original: { mergingList: [{ name: 1 }, { name: 2, value: 'b' }, { name: 3 }] },
    patch: {
      mergingList: [
        { name: 3, value: 'c' },
        { name: 1, value: 'a' },
      ],
    },
    result: {
      mergingList: [
        { name: 2, value: 'b' },
        { name: 3, value: 'c' },
        { name: 1, value: 'a' },
      ],
    },
  },
  {
    name: 'preserve the order from the patch in a merging int list',
    original: { mergingIntList: [1, 2, 3] },
    patch: { mergingIntList: [3, 1, 2] },
    result: { mergingIntList: [3, 1, 2] },
  },
  {
    name: 'preserve the order from the patch in a merging int list 2',
    original: { mergingIntList: [1, 2, 3] },
    patch: { mergingIntList: [3, 1] },
    result: { mergingIntList: [2, 3, 1] },
  },
  {
    name: '$setElementOrder contains item that is not present in the list to be merged',
    original: { mergingList: [{ name: 1 }, { name: 3 }] },
    patch: {
      '$setElementOrder/mergingList': [{ name: 3 }, { name: 2 }, { name: 1 }],
      mergingList: [
        { name: 3, value: 3 },
        { name: 1, value: 1 },
      ],
    },
    result: {
      mergingList: [
        { name: 3, value: 3 },
        { name: 1, value: 1 },
      ],
    },
  },
  {
    name: '$setElementOrder contains item that is not present in the int list to be merged',
    original: { mergingIntList: [1, 3] },
    patch: { '$setElementOrder/mergingIntList': [3, 2, 1] },
    result: { mergingIntList: [3, 1] },
  },
  {
    name: 'nested merging lists merge too',
    original: { mergingList: [{ name: 1, mergingList: [{ name: 'a', value: 1 }] }] },
    patch: { mergingList: [{ name: 1, mergingList: [{ name: 'b' }, { name: 'a', value: 2 }] }] },
    result: {
      mergingList: [
        {
          name: 1,
          mergingList: [{ name: 'b' }, { name: 'a', value: 2 }],
        },
      ],
    },
  },
  {
    name: 'non-merging list is replaced',
    original: { nonMergingList: [{ name: 1, value: 1 }], nonMergingIntList: [1, 2] },
    patch: { nonMergingList: [{ name: 2 }], nonMergingIntList: [3] },
    result: { nonMergingList: [{ name: 2 }], nonMergingIntList: [3] },
  },
  {
    name: 'replace strategy replaces a map',
    original: { replacingItem: { a: 1, b: 2 } },
    patch: { replacingItem: { c: 3 } },
    result: { replacingItem: { c: 3 } },
  },
  {
    name: 'a value of a different type replaces',
    original: { mergingList: [{ name: 1 }], simpleMap: { a: 1 } },
    patch: { mergingList: 'x', simpleMap: [1] },
    result: { mergingList: 'x', simpleMap: [1] },
  },
];

describe('applyStrategicMergePatch: upstream cases', () => {
  for (const c of upstreamCases) {
    it(c.name, () => {
      assert.deepEqual(apply(c.original, c.patch, mergeItemSchema), c.result);
    });
  }

  it('rejects a patch list whose order contradicts $setElementOrder', () => {
    const original = { mergingList: [{ name: 1 }, { name: 3 }, { name: 2 }] };
    const patch = {
      '$setElementOrder/mergingList': [{ name: 1 }, { name: 2 }, { name: 3 }],
      mergingList: [
        { name: 3, value: 3 },
        { name: 1, value: 1 },
      ],
    };
    assert.throws(() => apply(original, patch, mergeItemSchema), patchError(/does not match/));
  });
});

const pod = () => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name: 'web',
    labels: { app: 'web', tier: 'front' },
    finalizers: ['example.com/a', 'example.com/b'],
  },
  spec: {
    containers: [
      {
        name: 'app',
        image: 'nginx:1.0',
        ports: [{ containerPort: 80, protocol: 'TCP' }],
        env: [{ name: 'A', value: '1' }],
      },
      { name: 'sidecar', image: 'envoy:1.0' },
    ],
    tolerations: [{ key: 'a', operator: 'Exists' }],
    volumes: [{ name: 'data', emptyDir: {} }],
  },
});

describe('applyStrategicMergePatch: Kubernetes objects', () => {
  it('merges a container by name, changing only its image', () => {
    const out = apply(pod(), { spec: { containers: [{ name: 'app', image: 'nginx:2.0' }] } });
    assert.deepEqual(out.spec.containers, [
      { ...pod().spec.containers[0], image: 'nginx:2.0' },
      pod().spec.containers[1],
    ]);
    assert.deepEqual(out.spec.tolerations, pod().spec.tolerations);
  });

  it('deletes a container with $patch: delete', () => {
    const out = apply(pod(), { spec: { containers: [{ name: 'sidecar', $patch: 'delete' }] } });
    assert.deepEqual(
      out.spec.containers.map((c: any) => c.name),
      ['app'],
    );
  });

  it('replaces the containers list with $patch: replace', () => {
    const out = apply(pod(), {
      spec: { containers: [{ name: 'only', image: 'busybox' }, { $patch: 'replace' }] },
    });
    assert.deepEqual(out.spec.containers, [{ name: 'only', image: 'busybox' }]);
  });

  it('replaces a whole map with $patch: replace', () => {
    const out = apply(pod(), { metadata: { labels: { $patch: 'replace', new: 'x' } } });
    assert.deepEqual(out.metadata.labels, { new: 'x' });
  });

  it('adds an env var and changes another', () => {
    const out = apply(pod(), {
      spec: {
        containers: [
          {
            name: 'app',
            env: [
              { name: 'B', value: '2' },
              { name: 'A', value: 'changed' },
            ],
          },
        ],
      },
    });
    assert.deepEqual(out.spec.containers[0].env, [
      { name: 'B', value: '2' },
      { name: 'A', value: 'changed' },
    ]);
  });

  it('removes an env var and a port by merge key', () => {
    const out = apply(pod(), {
      spec: {
        containers: [
          {
            name: 'app',
            env: [{ name: 'A', $patch: 'delete' }],
            ports: [{ containerPort: 80, $patch: 'delete' }],
          },
        ],
      },
    });
    assert.deepEqual(out.spec.containers[0].env, []);
    assert.deepEqual(out.spec.containers[0].ports, []);
  });

  it('puts a new container first, as kubectl patch documents', () => {
    const out = apply(pod(), { spec: { containers: [{ name: 'new', image: 'redis' }] } });
    assert.deepEqual(
      out.spec.containers.map((c: any) => c.name),
      ['new', 'app', 'sidecar'],
    );
  });

  it('removes a label with null and ignores null for a missing key', () => {
    const out = apply(pod(), { metadata: { labels: { tier: null, missing: null, env: 'prod' } } });
    assert.deepEqual(out.metadata.labels, { app: 'web', env: 'prod' });
  });

  it('drops nulls and directives inside values it adds', () => {
    const out = apply(pod(), {
      metadata: { annotations: { a: 'x', b: null } },
      spec: {
        containers: [
          {
            name: 'new',
            image: 'redis',
            resources: null,
            env: [
              { name: 'X', value: null },
              { name: 'Y', $patch: 'delete' },
            ],
          },
        ],
        affinity: { nodeAffinity: { $patch: 'delete' }, podAffinity: { $patch: 'replace', x: 1 } },
      },
    });
    assert.deepEqual(out.metadata.annotations, { a: 'x' });
    assert.deepEqual(out.spec.containers[0], { name: 'new', image: 'redis', env: [{ name: 'X' }] });
    assert.deepEqual(out.spec.affinity, { podAffinity: { x: 1 } });
  });

  it('unions finalizers', () => {
    const out = apply(pod(), { metadata: { finalizers: ['example.com/b', 'example.com/c'] } });
    assert.deepEqual(out.metadata.finalizers, ['example.com/a', 'example.com/b', 'example.com/c']);
  });

  it('removes finalizers with $deleteFromPrimitiveList', () => {
    const out = apply(pod(), {
      metadata: { '$deleteFromPrimitiveList/finalizers': ['example.com/a', 'nope'] },
    });
    assert.deepEqual(out.metadata.finalizers, ['example.com/b']);
  });

  it('adds and removes finalizers in one patch, keeping $setElementOrder', () => {
    const out = apply(pod(), {
      metadata: {
        '$setElementOrder/finalizers': ['example.com/c', 'example.com/b'],
        '$deleteFromPrimitiveList/finalizers': ['example.com/a'],
        finalizers: ['example.com/c'],
      },
    });
    assert.deepEqual(out.metadata.finalizers, ['example.com/c', 'example.com/b']);
  });

  it('reorders containers with $setElementOrder', () => {
    const out = apply(pod(), {
      spec: {
        '$setElementOrder/containers': [{ name: 'sidecar' }, { name: 'app' }],
        containers: [{ name: 'app', image: 'nginx:2.0' }],
      },
    });
    assert.deepEqual(
      out.spec.containers.map((c: any) => [c.name, c.image]),
      [
        ['sidecar', 'envoy:1.0'],
        ['app', 'nginx:2.0'],
      ],
    );
  });

  it('reorders without content changes', () => {
    const out = apply(pod(), {
      spec: { '$setElementOrder/containers': [{ name: 'sidecar' }, { name: 'app' }] },
    });
    assert.deepEqual(
      out.spec.containers.map((c: any) => c.name),
      ['sidecar', 'app'],
    );
    assert.deepEqual(out.spec.containers[1], pod().spec.containers[0]);
  });

  it('replaces tolerations, which have no patch strategy', () => {
    const out = apply(pod(), { spec: { tolerations: [{ key: 'b', operator: 'Exists' }] } });
    assert.deepEqual(out.spec.tolerations, [{ key: 'b', operator: 'Exists' }]);
  });

  it('switches a volume source with $retainKeys', () => {
    const out = apply(pod(), {
      spec: { volumes: [{ name: 'data', $retainKeys: ['configMap', 'name'], configMap: { name: 'cm' } }] },
    });
    assert.deepEqual(out.spec.volumes, [{ name: 'data', configMap: { name: 'cm' } }]);
  });

  it('rejects a patch that sets keys its $retainKeys does not list', () => {
    const patch = { spec: { volumes: [{ name: 'data', $retainKeys: ['name'], configMap: { name: 'cm' } }] } };
    assert.throws(() => apply(pod(), patch), patchError(/retainKeys/));
  });

  const deployment = () => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web' },
    spec: {
      replicas: 2,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { containers: [{ name: 'app', image: 'nginx:1.0', env: [{ name: 'A', value: '1' }] }] },
      },
    },
  });

  it('switching a Deployment from RollingUpdate to Recreate with $retainKeys removes rollingUpdate', () => {
    const out = apply(deployment(), { spec: { strategy: { $retainKeys: ['type'], type: 'Recreate' } } });
    assert.deepEqual(out.spec.strategy, { type: 'Recreate' });
    assert.equal(out.spec.replicas, 2);
  });

  it('without $retainKeys the strategy map merges', () => {
    const out = apply(deployment(), { spec: { strategy: { type: 'Recreate' } } });
    assert.deepEqual(out.spec.strategy, {
      type: 'Recreate',
      rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
    });
  });

  it('merges containers inside a Deployment pod template', () => {
    const out = apply(deployment(), {
      spec: { template: { spec: { containers: [{ name: 'app', env: [{ name: 'B', value: '2' }] }] } } },
    });
    assert.deepEqual(out.spec.template.spec.containers, [
      {
        name: 'app',
        image: 'nginx:1.0',
        env: [
          { name: 'B', value: '2' },
          { name: 'A', value: '1' },
        ],
      },
    ]);
  });

  it('merges containers inside a CronJob job template', () => {
    const cronJob = {
      spec: {
        schedule: '* * * * *',
        jobTemplate: {
          spec: { template: { spec: { containers: [{ name: 'job', image: 'busybox', args: ['a'] }] } } },
        },
      },
    };
    const out = apply(cronJob, {
      spec: {
        jobTemplate: { spec: { template: { spec: { containers: [{ name: 'job', image: 'alpine' }] } } } },
      },
    });
    assert.deepEqual(out.spec.jobTemplate.spec.template.spec.containers, [
      { name: 'job', image: 'alpine', args: ['a'] },
    ]);
  });

  it('merges Service ports by port', () => {
    const svc = {
      spec: {
        ports: [
          { name: 'http', port: 80, targetPort: 8080 },
          { name: 'https', port: 443 },
        ],
      },
    };
    const out = apply(svc, { spec: { ports: [{ port: 80, targetPort: 9090 }] } });
    assert.deepEqual(out.spec.ports, [
      { name: 'http', port: 80, targetPort: 9090 },
      { name: 'https', port: 443 },
    ]);
  });

  it('merges status conditions by type and node addresses by type', () => {
    const node = {
      status: {
        conditions: [
          { type: 'Ready', status: 'False' },
          { type: 'MemoryPressure', status: 'False' },
        ],
        addresses: [{ type: 'InternalIP', address: '10.0.0.1' }],
      },
    };
    const out = apply(node, {
      status: {
        conditions: [{ type: 'Ready', status: 'True' }],
        addresses: [{ type: 'Hostname', address: 'n1' }],
      },
    });
    assert.deepEqual(out.status.conditions, [
      { type: 'Ready', status: 'True' },
      { type: 'MemoryPressure', status: 'False' },
    ]);
    assert.deepEqual(out.status.addresses, [
      { type: 'Hostname', address: 'n1' },
      { type: 'InternalIP', address: '10.0.0.1' },
    ]);
  });

  it('merges ownerReferences by uid', () => {
    const doc = { metadata: { ownerReferences: [{ uid: 'u1', name: 'a' }] } };
    const out = apply(doc, { metadata: { ownerReferences: [{ uid: 'u2', name: 'b' }] } });
    assert.deepEqual(
      out.metadata.ownerReferences.map((r: any) => r.uid),
      ['u2', 'u1'],
    );
  });

  it('treats other $-prefixed keys as data (CRD schemas use $ref)', () => {
    const crd = { spec: { schema: { $ref: '#/a' } } };
    const out = apply(crd, { spec: { schema: { $ref: '#/b', $schema: 'x' } } });
    assert.deepEqual(out.spec.schema, { $ref: '#/b', $schema: 'x' });
  });

  it('accepts $patch: merge as the default behaviour', () => {
    const out = apply(pod(), {
      metadata: { labels: { $patch: 'merge', env: 'prod' } },
      spec: { containers: [{ name: 'app', image: 'x', $patch: 'merge' }, { $patch: 'merge' }] },
    });
    assert.deepEqual(out.metadata.labels, { app: 'web', tier: 'front', env: 'prod' });
    assert.equal(out.spec.containers[0].image, 'x');
    assert.equal(out.spec.containers.length, 2);
  });

  it('a top-level $patch: delete empties the document', () => {
    assert.deepEqual(apply(pod(), { $patch: 'delete' }), {});
  });

  it('applies to a missing document', () => {
    assert.deepEqual(applyStrategicMergePatch(undefined, { a: { b: null, c: 1 } }, kubernetesPatchSchema), {
      a: { c: 1 },
    });
  });

  it('never aliases its inputs', () => {
    const doc = deepFreeze(pod());
    const patch = deepFreeze({ spec: { containers: [{ name: 'new', env: [{ name: 'X' }] }] } });
    const out = applyStrategicMergePatch(doc, patch, kubernetesPatchSchema) as any;
    out.spec.containers[0].env.push({ name: 'Y' });
    out.spec.containers[1].env.push({ name: 'Z' });
    out.metadata.labels.x = 'y';
    assert.deepEqual(patch.spec.containers[0]!.env, [{ name: 'X' }]);
    assert.deepEqual(doc, pod());
  });

  it('rejects malformed patches and directives', () => {
    const bad: [unknown, RegExp][] = [
      [[], /JSON object/],
      ['x', /JSON object/],
      [{ $patch: 'frobnicate' }, /unknown patch directive/],
      [{ metadata: { labels: { $patch: 'nope' } } }, /unknown patch directive/],
      [{ spec: { containers: [{ name: 'app', $patch: 'nope' }] } }, /unknown patch directive/],
      [{ spec: { containers: [{ $patch: 'delete' }] } }, /merge key/],
      [{ spec: { containers: [{ image: 'no-name' }] } }, /merge key/],
      [{ metadata: { $setElementOrder: [] } }, /malformed directive/],
      [{ metadata: { '$setElementOrder/': [] } }, /malformed directive/],
      [{ metadata: { $deleteFromPrimitiveListX: [] } }, /malformed directive/],
      [{ metadata: { '$setElementOrder/finalizers': 'x' } }, /must be a list/],
      [{ metadata: { '$deleteFromPrimitiveList/finalizers': 'x' } }, /must be a list/],
      [{ spec: { strategy: { $retainKeys: 'type' } } }, /list of field names/],
      [{ metadata: { finalizers: [{ a: 1 }] } }, /same type/],
      [{ spec: { containers: [['x']] } }, /lists of lists/],
    ];
    for (const [patch, pattern] of bad) {
      assert.throws(() => apply(pod(), patch), patchError(pattern), JSON.stringify(patch));
    }
    assert.throws(() => applyStrategicMergePatch([1], {}, kubernetesPatchSchema), patchError(/JSON object/));
  });

  it('rejects a merge list of objects without a merge key in the schema', () => {
    const schema: PatchSchema = {
      fieldMeta: (p) => (p.at(-1) === 'items' ? { strategy: 'merge' } : undefined),
    };
    assert.throws(() => apply({ items: [{ a: 1 }] }, { items: [{ a: 2 }] }, schema), patchError(/merge key/));
    const badStrategy: PatchSchema = { fieldMeta: () => ({ strategy: 'sideways' }) };
    assert.throws(
      () => apply({ a: {} }, { a: { b: 1 } }, badStrategy),
      patchError(/unsupported patch strategy/),
    );
  });
});

describe('kubernetesPatchSchema', () => {
  const meta = (path: string) => kubernetesPatchSchema.fieldMeta(path.split('.'));

  it('finds pod spec lists wherever a pod spec sits', () => {
    for (const prefix of [
      'spec',
      'template.spec',
      'spec.template.spec',
      'spec.jobTemplate.spec.template.spec',
    ]) {
      assert.deepEqual(meta(`${prefix}.containers`), { strategy: 'merge', mergeKey: 'name' }, prefix);
      assert.deepEqual(meta(`${prefix}.initContainers`), { strategy: 'merge', mergeKey: 'name' }, prefix);
      assert.deepEqual(
        meta(`${prefix}.ephemeralContainers`),
        { strategy: 'merge', mergeKey: 'name' },
        prefix,
      );
      assert.deepEqual(meta(`${prefix}.volumes`), { strategy: 'merge,retainKeys', mergeKey: 'name' }, prefix);
      assert.deepEqual(meta(`${prefix}.imagePullSecrets`), { strategy: 'merge', mergeKey: 'name' }, prefix);
      assert.deepEqual(meta(`${prefix}.hostAliases`), { strategy: 'merge', mergeKey: 'ip' }, prefix);
      assert.deepEqual(
        meta(`${prefix}.containers.ports`),
        { strategy: 'merge', mergeKey: 'containerPort' },
        prefix,
      );
      assert.deepEqual(meta(`${prefix}.initContainers.env`), { strategy: 'merge', mergeKey: 'name' }, prefix);
      assert.deepEqual(
        meta(`${prefix}.containers.volumeMounts`),
        { strategy: 'merge', mergeKey: 'mountPath' },
        prefix,
      );
      assert.deepEqual(meta(`${prefix}.containers.volumeDevices`), {
        strategy: 'merge',
        mergeKey: 'devicePath',
      });
      assert.equal(meta(`${prefix}.tolerations`), undefined, prefix);
      assert.equal(meta(`${prefix}.containers.resources`), undefined, prefix);
      assert.equal(meta(`${prefix}.containers.envFrom`), undefined, prefix);
    }
  });

  it('covers metadata, status and other kinds', () => {
    assert.deepEqual(meta('metadata.finalizers'), { strategy: 'merge' });
    assert.deepEqual(meta('spec.template.metadata.ownerReferences'), { strategy: 'merge', mergeKey: 'uid' });
    assert.deepEqual(meta('status.conditions'), { strategy: 'merge', mergeKey: 'type' });
    assert.deepEqual(meta('status.addresses'), { strategy: 'merge', mergeKey: 'type' });
    assert.deepEqual(meta('status.podIPs'), { strategy: 'merge', mergeKey: 'ip' });
    assert.deepEqual(meta('spec.ports'), { strategy: 'merge', mergeKey: 'port' });
    assert.deepEqual(meta('spec.strategy'), { strategy: 'retainKeys' });
    assert.deepEqual(meta('secrets'), { strategy: 'merge', mergeKey: 'name' });
    assert.equal(meta('spec.secrets'), undefined);
    assert.equal(meta('metadata.labels'), undefined);
    assert.equal(meta('spec.containers.ports.protocol'), undefined);
  });
});

describe('createStrategicMergePatch', () => {
  const roundTrip = (original: unknown, modified: unknown, schema: PatchSchema = kubernetesPatchSchema) => {
    const patch = createStrategicMergePatch(deepFreeze(original), deepFreeze(modified), schema);
    assert.deepEqual(apply(original, patch, schema), modified, JSON.stringify(patch));
    return patch;
  };

  it('emits only what changed', () => {
    const modified = structuredClone(pod());
    modified.spec.containers[0]!.image = 'nginx:2.0';
    const patch = roundTrip(pod(), modified);
    assert.deepEqual(patch, {
      spec: {
        containers: [{ name: 'app', image: 'nginx:2.0' }],
        '$setElementOrder/containers': [{ name: 'app' }, { name: 'sidecar' }],
      },
    });
    assert.deepEqual(createStrategicMergePatch(pod(), pod(), kubernetesPatchSchema), {});
  });

  it('deletes removed containers with $patch: delete', () => {
    const modified = structuredClone(pod());
    modified.spec.containers.pop();
    const patch = roundTrip(pod(), modified) as any;
    assert.deepEqual(patch.spec.containers, [{ name: 'sidecar', $patch: 'delete' }]);
  });

  it('removes finalizers with $deleteFromPrimitiveList', () => {
    const modified = structuredClone(pod());
    modified.metadata.finalizers = ['example.com/b', 'example.com/c'];
    const patch = roundTrip(pod(), modified) as any;
    assert.deepEqual(patch.metadata.finalizers, ['example.com/c']);
    assert.deepEqual(patch.metadata['$deleteFromPrimitiveList/finalizers'], ['example.com/a']);
  });

  it('builds $retainKeys for a Deployment strategy switch', () => {
    const original = { spec: { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1 } } } };
    const modified = { spec: { strategy: { type: 'Recreate' } } };
    const patch = roundTrip(original, modified);
    assert.deepEqual(patch, {
      spec: { strategy: { $retainKeys: ['type'], type: 'Recreate', rollingUpdate: null } },
    });
  });

  it('round-trips assorted changes', () => {
    const modified = structuredClone(pod()) as any;
    modified.metadata.labels = { app: 'web', env: 'prod' };
    modified.spec.containers.reverse();
    modified.spec.containers.push({ name: 'third', image: 'busybox' });
    modified.spec.containers[1].env = [{ name: 'B' }, { name: 'A', value: '2' }];
    modified.spec.containers[1].ports = [];
    modified.spec.tolerations = [];
    modified.spec.volumes = [
      { name: 'data', configMap: { name: 'cm' } },
      { name: 'logs', emptyDir: {} },
    ];
    modified.spec.nodeSelector = { disk: 'ssd' };
    delete modified.apiVersion;
    roundTrip(pod(), modified);
  });

  it('round-trips reorders, additions and deletions in merge lists', () => {
    roundTrip({ mergingIntList: [1, 2, 3] }, { mergingIntList: [3, 1] }, mergeItemSchema);
    roundTrip({ mergingIntList: [1, 2] }, { mergingIntList: [2, 1, 4] }, mergeItemSchema);
    roundTrip({ mergingIntList: [] }, { mergingIntList: [1] }, mergeItemSchema);
    roundTrip({ mergingIntList: [1] }, { mergingIntList: [] }, mergeItemSchema);
    roundTrip(
      { mergingList: [{ name: 'a' }, { name: 'b', value: 1 }, { name: 'c' }] },
      { mergingList: [{ name: 'c' }, { name: 'd' }, { name: 'b', value: 2 }] },
      mergeItemSchema,
    );
    roundTrip({ mergingList: [{ name: 'a' }] }, { mergingList: [] }, mergeItemSchema);
    roundTrip({ replacingItem: { a: 1 } }, { replacingItem: { b: 2 } }, mergeItemSchema);
    roundTrip(
      { retainKeysMap: { name: 'a', value: 'b' } },
      { retainKeysMap: { name: 'a', other: 'c' } },
      mergeItemSchema,
    );
  });

  it('rejects documents that are not objects', () => {
    assert.throws(() => createStrategicMergePatch([1], {}, kubernetesPatchSchema), patchError());
    assert.throws(() => createStrategicMergePatch({}, 'x', kubernetesPatchSchema), patchError());
  });
});
