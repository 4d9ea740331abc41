// The life of a CustomResourceDefinition with the real kubectl (1.27 and
// 1.33) and @kubernetes/client-node against a real `skiff server`: a
// namespaced CRD with printer columns and the status and scale
// subresources; apply, get, describe, explain, edit, scale, patch and delete
// of its objects; a second version; and the CRD deleted, its kind gone.

import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { eventually, ok, type Skiff, startSkiff } from './harness.ts';

let skiff: Skiff;
const NS = 'crd-e2e';

const crd = (versions: string) => `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.e2e.example.com
spec:
  group: e2e.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd], categories: [all]}
  versions:
${versions}`;

const version = (name: string, storage: boolean) => `  - name: ${name}
    served: true
    storage: ${storage}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: What the widget should be.
            required: [color]
            properties:
              color: {type: string, enum: [red, blue], description: The colour of the widget.}
              replicas: {type: integer, minimum: 0, default: 1}
          status:
            type: object
            properties:
              replicas: {type: integer}
              selector: {type: string}
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas, labelSelectorPath: .status.selector}
    additionalPrinterColumns:
    - {name: Color, type: string, jsonPath: .spec.color}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
`;

const widget = (name: string, color: string) => `apiVersion: e2e.example.com/v1
kind: Widget
metadata: {name: ${name}, namespace: ${NS}}
spec: {color: ${color}}
`;

before(async () => {
  skiff = await startSkiff();
  await ok(skiff, ['create', 'namespace', NS]);
  await ok(skiff, ['apply', '-f', '-'], { input: crd(version('v1', true)) });
  await ok(skiff, ['wait', '--for', 'condition=established', '--timeout=30s', 'crd/widgets.e2e.example.com']);
});
after(async () => {
  await skiff?.stop();
});

describe('a CRD with kubectl', () => {
  it('applies, gets and describes custom resources, with the printer columns in 1.27 and 1.33', async () => {
    await ok(skiff, ['apply', '-f', '-'], { input: widget('w1', 'red') });
    for (const v of ['1.27', '1.33']) {
      const out = await ok(skiff, ['get', 'widgets', '-n', NS], { version: v });
      const [header, row] = out.trim().split('\n');
      assert.match(header!, /^NAME\s+COLOR\s+REPLICAS\s+AGE$/, `kubectl ${v}: ${out}`);
      assert.match(row!, /^w1\s+red\s+1\s+\d+s$/, `kubectl ${v}: ${out}`);
    }
    assert.match(
      await ok(skiff, ['get', 'wd', 'w1', '-n', NS, '-o', 'name']),
      /^widget\.e2e\.example\.com\/w1$/m,
    );
    assert.match(await ok(skiff, ['get', 'all', '-n', NS]), /widget\.e2e\.example\.com\/w1/);
    const described = await ok(skiff, ['describe', 'widget', 'w1', '-n', NS]);
    assert.match(described, /Kind:\s+Widget/);
    assert.match(described, /Color:\s+red/);
  });

  it('explains the kind from its schema (OpenAPI v2 for 1.27, v3 for 1.33)', async () => {
    for (const v of ['1.27', '1.33']) {
      const out = await ok(skiff, ['explain', 'widgets.spec.color'], { version: v });
      assert.match(out, /The colour of the widget\./, `kubectl ${v}`);
    }
  });

  it('lists the CRD with its CREATED AT column, and applies a changed object again', async () => {
    const out = await ok(skiff, ['get', 'crd', 'widgets.e2e.example.com']);
    assert.match(out, /^NAME\s+CREATED AT\nwidgets\.e2e\.example\.com\s+\d{4}-\d{2}-\d{2}T/m);
    await ok(skiff, ['apply', '-f', '-'], { input: widget('again', 'red') });
    await ok(skiff, ['apply', '-f', '-'], { input: widget('again', 'blue') });
    assert.equal(
      await ok(skiff, ['get', 'widget', 'again', '-n', NS, '-o', 'jsonpath={.spec.color}']),
      'blue',
    );
  });

  it('refuses an object the schema does not allow, with the server message', async () => {
    const r = await skiff.kubectl(['apply', '-f', '-'], { input: widget('bad', 'pink') });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /spec\.color: Unsupported value: "pink": supported values: "red", "blue"/);
  });

  it('refuses what an x-kubernetes-validations rule does not allow, on create and (a transition rule) on update', async () => {
    const gadgets = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.e2e.example.com}
spec:
  group: e2e.example.com
  scope: Namespaced
  names: {plural: gadgets, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - {rule: 'self.replicas <= 3', message: at most 3 replicas}
            properties:
              replicas: {type: integer}
              color:
                type: string
                x-kubernetes-validations:
                - {rule: self == oldSelf, message: color is immutable}
`;
    await ok(skiff, ['apply', '-f', '-'], { input: gadgets });
    await ok(skiff, [
      'wait',
      '--for',
      'condition=established',
      '--timeout=30s',
      'crd/gadgets.e2e.example.com',
    ]);
    const gadget = (replicas: number, color: string) =>
      `{"apiVersion":"e2e.example.com/v1","kind":"Gadget","metadata":{"name":"g1","namespace":"${NS}"},"spec":{"replicas":${replicas},"color":"${color}"}}`;
    const tooMany = await skiff.kubectl(['apply', '-f', '-'], { input: gadget(5, 'red') });
    assert.notEqual(tooMany.code, 0);
    assert.match(
      tooMany.stderr,
      /Gadget.*"g1" is invalid: spec: Invalid value: "object": at most 3 replicas/,
    );
    await ok(skiff, ['apply', '-f', '-'], { input: gadget(2, 'red') });
    const recolor = await skiff.kubectl(['apply', '-f', '-'], { input: gadget(2, 'blue') });
    assert.notEqual(recolor.code, 0);
    assert.match(recolor.stderr, /spec\.color: Invalid value: "string": color is immutable/);
    await ok(skiff, ['apply', '-f', '-'], { input: gadget(3, 'red') });
    await ok(skiff, ['delete', 'crd', 'gadgets.e2e.example.com']);
  });

  it('edits with KUBE_EDITOR, scales, and refuses a strategic merge patch', async () => {
    const editor = join(skiff.dataDir, 'editor.sh');
    writeFileSync(editor, '#!/bin/sh\nsed -i "s/color: red/color: blue/" "$1"\n');
    chmodSync(editor, 0o755);
    await ok(skiff, ['edit', 'widget', 'w1', '-n', NS], { env: { KUBE_EDITOR: editor } });
    assert.equal(await ok(skiff, ['get', 'widget', 'w1', '-n', NS, '-o', 'jsonpath={.spec.color}']), 'blue');
    await ok(skiff, ['scale', 'widget', 'w1', '-n', NS, '--replicas=4']);
    assert.equal(await ok(skiff, ['get', 'widget', 'w1', '-n', NS, '-o', 'jsonpath={.spec.replicas}']), '4');
    const smp = await skiff.kubectl(['patch', 'widget', 'w1', '-n', NS, '-p', '{"spec":{"color":"red"}}']);
    assert.notEqual(smp.code, 0);
    assert.match(smp.stderr, /UnsupportedMediaType|unknown format/);
    await ok(skiff, ['patch', 'widget', 'w1', '-n', NS, '--type=merge', '-p', '{"spec":{"color":"red"}}']);
  });

  it('serves a second version, stored in one', async () => {
    await ok(skiff, ['apply', '-f', '-'], { input: crd(version('v1', true) + version('v1beta1', false)) });
    const apiVersion = await eventually('v1beta1 served', async () => {
      const r = await skiff.kubectl([
        'get',
        'widgets.v1beta1.e2e.example.com',
        'w1',
        '-n',
        NS,
        '-o',
        'jsonpath={.apiVersion}',
      ]);
      return r.code === 0 ? r.stdout : undefined;
    });
    assert.equal(apiVersion, 'e2e.example.com/v1beta1');
    assert.equal(
      await ok(skiff, ['get', 'widgets', 'w1', '-n', NS, '-o', 'jsonpath={.apiVersion}']),
      'e2e.example.com/v1',
    );
    const stored = await ok(skiff, [
      'get',
      'crd',
      'widgets.e2e.example.com',
      '-o',
      'jsonpath={.status.storedVersions}',
    ]);
    assert.equal(stored, '["v1"]');
  });
});

describe('a CRD with client-node', () => {
  it("CustomObjectsApi creates, reads, lists and patches, and a watch sees the CR's events", async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(skiff.kubeconfig);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const ref = { group: 'e2e.example.com', version: 'v1', namespace: NS, plural: 'widgets' };
    const events: string[] = [];
    const req = await new k8s.Watch(kc).watch(
      `/apis/e2e.example.com/v1/namespaces/${NS}/widgets`,
      { labelSelector: 'suite=client-node' },
      (type, obj: { metadata?: { name?: string } }) => events.push(`${type} ${obj.metadata?.name}`),
      () => {},
    );
    await new Promise((r) => setTimeout(r, 200));
    const body = {
      apiVersion: 'e2e.example.com/v1',
      kind: 'Widget',
      metadata: { name: 'cn', labels: { suite: 'client-node' } },
      spec: { color: 'blue' },
    };
    const created = (await custom.createNamespacedCustomObject({ ...ref, body })) as {
      spec: { replicas: number };
    };
    assert.equal(created.spec.replicas, 1);
    const read = (await custom.getNamespacedCustomObject({ ...ref, name: 'cn' })) as {
      spec: { color: string };
    };
    assert.equal(read.spec.color, 'blue');
    const list = (await custom.listNamespacedCustomObject({
      ...ref,
      labelSelector: 'suite=client-node',
    })) as {
      items: unknown[];
    };
    assert.equal(list.items.length, 1);
    await custom.patchNamespacedCustomObject(
      { ...ref, name: 'cn', body: { spec: { color: 'red' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await custom.deleteNamespacedCustomObject({ ...ref, name: 'cn' });
    await eventually('three watch events', async () => events.length >= 3, 15_000);
    req.abort();
    assert.deepEqual(events, ['ADDED cn', 'MODIFIED cn', 'DELETED cn']);
  });
});

describe('deleting the CRD', () => {
  it('deletes its objects and the kind leaves discovery', async () => {
    await ok(skiff, ['delete', 'crd', 'widgets.e2e.example.com', '--timeout=60s']);
    const resources = await ok(skiff, ['api-resources', '--api-group=e2e.example.com', '-o', 'name']);
    assert.equal(resources.trim(), '');
    // kubectl still knows the kind from its discovery cache: the list is a 404.
    const r = await skiff.kubectl(['get', 'widgets', '-n', NS]);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /the server doesn't have a resource type "widgets"|the server could not find the requested resource/,
    );
    await ok(skiff, ['delete', 'namespace', NS, '--wait=false']);
  });
});
