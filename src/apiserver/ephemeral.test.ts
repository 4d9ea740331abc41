// pods/ephemeralcontainers through the API server: GET answers the Pod; PUT
// and every patch type change spec.ephemeralContainers and nothing else;
// what was added is defaulted as a container, and may never be removed or
// changed (422 with upstream's causes).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './testing.ts';

describe('pods/ephemeralcontainers', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  const pods = '/api/v1/namespaces/default/pods';
  const sub = (name: string) => `${pods}/${name}/ephemeralcontainers`;
  const strategic = { 'content-type': 'application/strategic-merge-patch+json' };

  async function runningPod(name: string, annotations?: Record<string, string>) {
    const created = await t.request('POST', pods, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, labels: { app: name }, ...(annotations ? { annotations } : {}) },
      spec: { nodeName: 'n1', containers: [{ name: 'app', image: 'busybox' }] },
    });
    assert.equal(created.status, 201, created.text);
    const status = await t.request(
      'PATCH',
      `${pods}/${name}/status`,
      { status: { phase: 'Running' } },
      { 'content-type': 'application/merge-patch+json' },
    );
    assert.equal(status.status, 200, status.text);
    return status.body;
  }

  /** What `kubectl debug --image=busybox --target=app -it` adds (kubectl's generateDebugContainer). */
  const debugger_ = (name: string, extra: Record<string, unknown> = {}) => ({
    name,
    image: 'busybox',
    stdin: true,
    tty: true,
    targetContainerName: 'app',
    terminationMessagePolicy: 'File',
    resources: {},
    ...extra,
  });

  const addDebugger = (pod: string, container: Record<string, unknown>) =>
    t.request(
      'PATCH',
      `${sub(pod)}?fieldManager=kubectl-debug`,
      { spec: { ephemeralContainers: [container] } },
      strategic,
    );

  const causes = (body: { details?: { causes?: Array<{ field: string; message: string }> } }) =>
    (body.details?.causes ?? []).map((c) => `${c.field}: ${c.message}`);

  it('GET answers the Pod', async () => {
    await runningPod('get');
    const got = await t.request('GET', sub('get'));
    assert.equal(got.status, 200, got.text);
    assert.equal(got.body.kind, 'Pod');
    assert.equal(got.body.metadata.name, 'get');
    assert.equal(got.body.spec.containers[0].name, 'app');
  });

  it('a strategic patch adds an ephemeral container, defaulted as a container, owned by its manager', async () => {
    const before = await runningPod('debug');
    const r = await addDebugger('debug', debugger_('dbg'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.kind, 'Pod');
    assert.deepEqual(r.body.spec.ephemeralContainers, [
      {
        ...debugger_('dbg'),
        terminationMessagePath: '/dev/termination-log',
        imagePullPolicy: 'Always',
      },
    ]);
    // The pod's own containers and its status are untouched.
    assert.deepEqual(r.body.spec.containers, before.spec.containers);
    assert.deepEqual(r.body.status, before.status);
    const entry = r.body.metadata.managedFields.find(
      (m: { manager: string }) => m.manager === 'kubectl-debug',
    );
    assert.equal(entry.subresource, 'ephemeralcontainers');
    assert.equal(entry.operation, 'Update');
    assert.deepEqual(Object.keys(entry.fieldsV1), ['f:spec']);
    assert.deepEqual(Object.keys(entry.fieldsV1['f:spec']), ['f:ephemeralContainers']);
    // A second one is merged in by name, the first stays: kubectl's two-way
    // merge patch names the order of the whole list.
    const second = await t.request(
      'PATCH',
      sub('debug'),
      {
        spec: {
          '$setElementOrder/ephemeralContainers': [{ name: 'dbg' }, { name: 'dbg2' }],
          ephemeralContainers: [debugger_('dbg2', { targetContainerName: undefined })],
        },
      },
      strategic,
    );
    assert.equal(second.status, 200, second.text);
    assert.deepEqual(
      second.body.spec.ephemeralContainers.map((c: { name: string }) => c.name),
      ['dbg', 'dbg2'],
    );
  });

  it('PUT and merge or JSON patches change spec.ephemeralContainers and nothing else', async () => {
    const pod = await runningPod('put');
    const body = structuredClone(pod);
    body.metadata.labels = { app: 'changed' };
    body.spec.containers[0].image = 'other';
    body.spec.activeDeadlineSeconds = 5;
    body.status = { phase: 'Failed' };
    body.spec.ephemeralContainers = [debugger_('one')];
    const put = await t.request('PUT', sub('put'), body);
    assert.equal(put.status, 200, put.text);
    assert.deepEqual(put.body.metadata.labels, { app: 'put' });
    assert.equal(put.body.spec.containers[0].image, 'busybox');
    assert.equal(put.body.spec.activeDeadlineSeconds, undefined);
    assert.equal(put.body.status.phase, 'Running');
    assert.deepEqual(
      put.body.spec.ephemeralContainers.map((c: { name: string }) => c.name),
      ['one'],
    );

    const merge = await t.request(
      'PATCH',
      sub('put'),
      {
        metadata: { labels: { x: 'y' } },
        spec: { ephemeralContainers: [debugger_('one'), debugger_('two')] },
      },
      { 'content-type': 'application/merge-patch+json' },
    );
    assert.equal(merge.status, 200, merge.text);
    assert.deepEqual(merge.body.metadata.labels, { app: 'put' });
    assert.equal(merge.body.spec.ephemeralContainers.length, 2);

    const json = await t.request(
      'PATCH',
      sub('put'),
      [{ op: 'add', path: '/spec/ephemeralContainers/-', value: debugger_('three') }],
      { 'content-type': 'application/json-patch+json' },
    );
    assert.equal(json.status, 200, json.text);
    assert.deepEqual(
      json.body.spec.ephemeralContainers.map((c: { name: string }) => c.name),
      ['one', 'two', 'three'],
    );
    const stored = await t.request('GET', `${pods}/put`);
    assert.equal(stored.body.spec.ephemeralContainers.length, 3);
  });

  it('server-side apply through the subresource owns only the ephemeral containers it applies', async () => {
    await runningPod('applied');
    const r = await t.request(
      'PATCH',
      `${sub('applied')}?fieldManager=debugger`,
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'applied', labels: { taken: 'no' } },
        spec: { containers: [{ name: 'app', image: 'redis' }], ephemeralContainers: [debugger_('dbg')] },
      },
      { 'content-type': 'application/apply-patch+yaml' },
    );
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.spec.ephemeralContainers[0].name, 'dbg');
    assert.equal(r.body.spec.containers[0].image, 'busybox');
    assert.deepEqual(r.body.metadata.labels, { app: 'applied' });
    const entry = r.body.metadata.managedFields.find((m: { manager: string }) => m.manager === 'debugger');
    assert.equal(entry.operation, 'Apply');
    assert.equal(entry.subresource, 'ephemeralcontainers');
    assert.deepEqual(Object.keys(entry.fieldsV1), ['f:spec']);
    assert.deepEqual(Object.keys(entry.fieldsV1['f:spec']), ['f:ephemeralContainers']);
  });

  it('an ephemeral container may not be removed or changed', async () => {
    await runningPod('keep');
    assert.equal((await addDebugger('keep', debugger_('dbg'))).status, 200);

    const removed = await t.request(
      'PATCH',
      sub('keep'),
      [{ op: 'remove', path: '/spec/ephemeralContainers/0' }],
      { 'content-type': 'application/json-patch+json' },
    );
    assert.equal(removed.status, 422, removed.text);
    assert.equal(removed.body.reason, 'Invalid');
    assert.deepEqual(causes(removed.body), [
      'spec.ephemeralContainers: Forbidden: existing ephemeral containers "dbg" may not be removed\n',
    ]);

    const changed = await addDebugger('keep', debugger_('dbg', { image: 'redis' }));
    assert.equal(changed.status, 422, changed.text);
    const [cause] = causes(changed.body);
    assert.match(
      cause ?? '',
      /^spec\.ephemeralContainers\[dbg\]: Forbidden: existing ephemeral containers "dbg" may not be changed\n/,
    );
    assert.match(cause ?? '', /image/);
  });

  it('validates the new container as upstream: unique name, existing target, no ports, probes or resources', async () => {
    await runningPod('bad');
    const r = await addDebugger(
      'bad',
      debugger_('app', {
        targetContainerName: 'nope',
        ports: [{ containerPort: 80 }],
        readinessProbe: { exec: { command: ['true'] } },
        resources: { limits: { cpu: '1' } },
        volumeMounts: [{ name: 'v', mountPath: '/v', subPath: 'x' }],
      }),
    );
    assert.equal(r.status, 422, r.text);
    const got = causes(r.body);
    for (const want of [
      'spec.ephemeralContainers[0].name: Duplicate value: "app"',
      'spec.ephemeralContainers[0].targetContainerName: Not found: "nope"',
      'spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container',
      'spec.ephemeralContainers[0].resources: Forbidden: cannot be set for an Ephemeral Container',
      'spec.ephemeralContainers[0].readinessProbe: Forbidden: cannot be set for an Ephemeral Container',
      'spec.ephemeralContainers[0].volumeMounts[0].subPath: Forbidden: cannot be set for an Ephemeral Container',
    ]) {
      assert.ok(got.includes(want), `${want}\nnot in\n${got.join('\n')}`);
    }
    const pod = await t.request('GET', `${pods}/bad`);
    assert.equal(pod.body.spec.ephemeralContainers, undefined);
  });

  it('a static pod takes no ephemeral containers', async () => {
    await runningPod('static', { 'kubernetes.io/config.mirror': 'abc' });
    const r = await addDebugger('static', debugger_('dbg'));
    assert.equal(r.status, 422, r.text);
    assert.match(r.body.message, /static pods do not support ephemeral containers/);
  });

  it('the pod itself cannot add ephemeral containers', async () => {
    const pod = await runningPod('main');
    const r = await t.request(
      'PATCH',
      `${pods}/main`,
      { spec: { ephemeralContainers: [debugger_('dbg')] } },
      strategic,
    );
    assert.equal(r.status, 422, r.text);
    assert.match(r.body.message, /pod updates may not change fields/);
    const put = structuredClone(pod);
    put.spec.ephemeralContainers = [debugger_('dbg')];
    assert.equal((await t.request('PUT', `${pods}/main`, put)).status, 422);
  });

  it('a missing pod is 404 with its name', async () => {
    const r = await addDebugger('absent', debugger_('dbg'));
    assert.equal(r.status, 404);
    assert.equal(r.body.details.name, 'absent');
  });
});
