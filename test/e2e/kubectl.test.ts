// The real kubectl (1.27, 1.32 and 1.33) against a real `skiff server`.
// Each kubectl version works in its own namespace of one shared server.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, KUBECTL_VERSIONS, ok, type Skiff, startSkiff } from './harness.ts';

let skiff: Skiff;
before(async () => {
  skiff = await startSkiff();
});
after(async () => {
  await skiff?.stop();
});

const manifest = (ns: string, value: string) => `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: ${ns}
data:
  value: "${value}"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: ${ns}
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: busybox
        command: ["sleep", "3600"]
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: ${ns}
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
`;

for (const version of KUBECTL_VERSIONS) {
  describe(`kubectl ${version}`, () => {
    const ns = `v${version.replace('.', '')}`;
    const k = (args: string[], opts: { input?: string; env?: Record<string, string> } = {}) =>
      ok(skiff, args, { version, ...opts });
    const kns = (args: string[], opts: { input?: string; env?: Record<string, string> } = {}) =>
      k(['-n', ns, ...args], opts);

    it('discovers the API: api-resources, api-versions', async () => {
      const resources = await k(['api-resources']);
      for (const r of ['pods', 'deployments', 'cronjobs', 'ingresses', 'clusterroles', 'leases']) {
        assert.match(resources, new RegExp(`^${r}\\s`, 'm'));
      }
      const versions = await k(['api-versions']);
      for (const gv of [
        'v1',
        'apps/v1',
        'batch/v1',
        'networking.k8s.io/v1',
        'rbac.authorization.k8s.io/v1',
      ]) {
        assert.match(versions, new RegExp(`^${gv.replace('.', '\\.')}$`, 'm'));
      }
    });

    it('creates a namespace, a configmap, a secret and a deployment', async () => {
      assert.match(await k(['create', 'namespace', ns]), /created/);
      assert.match(
        await kns(['create', 'configmap', 'plain', '--from-literal=a=b']),
        /configmap\/plain created/,
      );
      assert.match(
        await kns(['create', 'secret', 'generic', 'creds', '--from-literal=user=admin']),
        /created/,
      );
      assert.match(await kns(['create', 'deployment', 'made', '--image=busybox', '--replicas=2']), /created/);
      const secret = JSON.parse(await kns(['get', 'secret', 'creds', '-o', 'json']));
      assert.equal(Buffer.from(secret.data.user, 'base64').toString(), 'admin');
      const d = JSON.parse(await kns(['get', 'deployment', 'made', '-o', 'json']));
      assert.equal(d.spec.replicas, 2);
      assert.equal(d.spec.template.spec.containers[0].image, 'busybox');
    });

    it('applies a multi-document manifest: created, unchanged, configured', async () => {
      const file = join(skiff.dataDir, `manifest-${ns}.yaml`);
      writeFileSync(file, manifest(ns, 'one'));
      const first = await k(['apply', '-f', file]);
      assert.match(first, /configmap\/settings created/);
      assert.match(first, /deployment.apps\/web created/);
      assert.match(first, /service\/web created/);
      const again = await k(['apply', '-f', file]);
      assert.match(again, /configmap\/settings unchanged/);
      assert.match(again, /deployment.apps\/web unchanged/);
      writeFileSync(file, manifest(ns, 'two'));
      const changed = await k(['apply', '-f', file]);
      assert.match(changed, /configmap\/settings configured/);
      assert.match(changed, /service\/web unchanged/);
      assert.equal(await kns(['get', 'configmap', 'settings', '-o', 'jsonpath={.data.value}']), 'two');
    });

    it('applies server-side, diffs, and explains', async () => {
      const file = join(skiff.dataDir, `ssa-${ns}.yaml`);
      writeFileSync(
        file,
        `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  namespace: ${ns}\ndata:\n  k: v1\n`,
      );
      assert.match(await k(['apply', '--server-side', '-f', file]), /configmap\/ssa serverside-applied/);
      const same = await skiff.kubectl(['diff', '-f', file], { version });
      assert.equal(same.code, 0, same.stderr);
      writeFileSync(
        file,
        `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  namespace: ${ns}\ndata:\n  k: v2\n`,
      );
      const changed = await skiff.kubectl(['diff', '-f', file], { version });
      assert.equal(changed.code, 1, changed.stderr);
      assert.match(changed.stdout, /^- {2}k: v1$/m);
      assert.match(changed.stdout, /^\+ {2}k: v2$/m);
      const explain = await k(['explain', 'pod.spec.containers']);
      assert.match(explain, /KIND:\s+Pod/);
      assert.match(explain, /FIELD:\s+containers <\[\]Container>/);
      assert.match(explain, /^\s+image\s+<string>/m);
    });

    it('describes an object with its events', async () => {
      const uid = await kns(['get', 'configmap', 'settings', '-o', 'jsonpath={.metadata.uid}']);
      const event = {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name: 'settings.e2e', namespace: ns },
        involvedObject: { apiVersion: 'v1', kind: 'ConfigMap', name: 'settings', namespace: ns, uid },
        reason: 'Checked',
        message: 'the e2e suite looked at it',
        type: 'Normal',
        count: 1,
        source: { component: 'e2e' },
      };
      await k(['create', '-f', '-'], { input: JSON.stringify(event) });
      const described = await kns(['describe', 'configmap', 'settings']);
      assert.match(described, /^Events:/m);
      assert.match(described, /Normal\s+Checked\s+\S+\s+e2e\s+the e2e suite looked at it/);
    });

    it('gets in every output format', async () => {
      // The Deployment controller makes both replicas up to date; no node runs them.
      await eventually(
        'the deployment rolled out',
        async () =>
          (await kns(['get', 'deployment', 'web', '-o', 'jsonpath={.status.updatedReplicas}'])) === '2',
      );
      const wide = await kns(['get', 'deployments', '-o', 'wide']);
      assert.match(wide, /^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\s+CONTAINERS\s+IMAGES\s+SELECTOR/m);
      assert.match(wide, /^web\s+0\/2\s+2\s+0\s+\S+\s+web\s+busybox\s+app=web/m);
      const svc = await kns(['get', 'svc', 'web']);
      assert.match(svc, /^web\s+ClusterIP\s+10\.43\.\d+\.\d+\s+<none>\s+80\/TCP/m);
      const yaml = await kns(['get', 'configmap', 'settings', '-o', 'yaml']);
      assert.match(yaml, /^kind: ConfigMap$/m);
      const json = JSON.parse(await kns(['get', 'configmap', 'settings', '-o', 'json']));
      assert.equal(json.data.value, 'two');
      assert.equal(
        await kns(['get', 'deployment', 'web', '-o', 'jsonpath={.spec.template.spec.containers[0].image}']),
        'busybox',
      );
      const cols = await kns([
        'get',
        'deployment',
        'web',
        '-o',
        'custom-columns=NAME:.metadata.name,REPLICAS:.spec.replicas',
      ]);
      assert.match(cols, /^web\s+2$/m);
      assert.match(await kns(['get', 'configmaps', '-o', 'name']), /^configmap\/settings$/m);
    });

    it('labels and annotates with --overwrite, and patches with all three types', async () => {
      await kns(['label', 'configmap', 'settings', 'tier=a']);
      const refused = await skiff.kubectl(['-n', ns, 'label', 'configmap', 'settings', 'tier=b'], {
        version,
      });
      assert.notEqual(refused.code, 0);
      await kns(['label', 'configmap', 'settings', 'tier=b', '--overwrite']);
      await kns(['annotate', 'configmap', 'settings', 'note=x']);
      await kns(['annotate', 'configmap', 'settings', 'note=y', '--overwrite']);
      await kns(['patch', 'configmap', 'settings', '-p', '{"data":{"s":"strategic"}}']);
      await kns(['patch', 'configmap', 'settings', '--type=merge', '-p', '{"data":{"m":"merge"}}']);
      await kns([
        'patch',
        'configmap',
        'settings',
        '--type=json',
        '-p',
        '[{"op":"add","path":"/data/j","value":"json"}]',
      ]);
      const cm = JSON.parse(await kns(['get', 'configmap', 'settings', '-o', 'json']));
      assert.equal(cm.metadata.labels.tier, 'b');
      assert.equal(cm.metadata.annotations.note, 'y');
      assert.deepEqual([cm.data.s, cm.data.m, cm.data.j], ['strategic', 'merge', 'json']);
    });

    it('scales a deployment through /scale', async () => {
      assert.match(await kns(['scale', 'deployment', 'web', '--replicas=3']), /scaled/);
      assert.equal(await kns(['get', 'deployment', 'web', '-o', 'jsonpath={.spec.replicas}']), '3');
    });

    it('edits with a scripted KUBE_EDITOR', async () => {
      const editor = join(skiff.dataDir, 'editor.sh');
      writeFileSync(editor, `#!/bin/sh\nsed -i 's/value: two/value: edited/' "$1"\n`, { mode: 0o755 });
      await kns(['edit', 'configmap', 'settings'], { env: { KUBE_EDITOR: editor, EDITOR: editor } });
      assert.equal(await kns(['get', 'configmap', 'settings', '-o', 'jsonpath={.data.value}']), 'edited');
    });

    it('watches: get -w sees an update', async () => {
      const watching = skiff.kubectl(
        ['-n', ns, 'get', 'configmap', 'settings', '-w', '--request-timeout=4s'],
        {
          version,
          timeoutMs: 8000,
        },
      );
      await new Promise((r) => setTimeout(r, 1500));
      await kns(['label', 'configmap', 'settings', 'watched=yes']);
      const r = await watching;
      const lines = r.stdout.trim().split('\n');
      assert.match(lines[0] ?? '', /^NAME\s+DATA\s+AGE/);
      assert.ok(lines.filter((l) => l.startsWith('settings')).length >= 2, r.stdout + r.stderr);
    });

    it('waits for a jsonpath condition and for deletion', async () => {
      await kns(['create', 'configmap', 'waiter', '--from-literal=ready=yes']);
      await kns(['wait', '--for=jsonpath={.data.ready}=yes', 'configmap/waiter', '--timeout=10s']);
      const waiting = skiff.kubectl(['-n', ns, 'wait', '--for=delete', 'configmap/waiter', '--timeout=15s'], {
        version,
      });
      await new Promise((r) => setTimeout(r, 500));
      await kns(['delete', 'configmap', 'waiter']);
      const r = await waiting;
      assert.equal(r.code, 0, r.stderr);
    });

    it('exposes a deployment and sets its image', async () => {
      assert.match(await kns(['expose', 'deployment', 'made', '--port=80', '--target-port=8080']), /exposed/);
      const svc = JSON.parse(await kns(['get', 'service', 'made', '-o', 'json']));
      assert.equal(svc.spec.ports[0].targetPort, 8080);
      assert.equal(svc.spec.selector.app, 'made');
      assert.match(await kns(['set', 'image', 'deployment/made', 'busybox=busybox:1.36']), /image updated/);
      assert.equal(
        await kns(['get', 'deployment', 'made', '-o', 'jsonpath={.spec.template.spec.containers[0].image}']),
        'busybox:1.36',
      );
    });

    it('deletes with each --cascade', async () => {
      for (const cascade of ['background', 'foreground', 'orphan']) {
        await kns(['create', 'configmap', `cascade-${cascade}`]);
        assert.match(
          await kns(['delete', 'configmap', `cascade-${cascade}`, `--cascade=${cascade}`, '--wait=false']),
          /deleted/,
        );
      }
      const left = await kns(['get', 'configmaps', '-o', 'name']);
      assert.ok(!left.includes('cascade-background'));
    });
  });
}
