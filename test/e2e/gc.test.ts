// Namespace deletion and the garbage collector through the real kubectl
// (1.32 and 1.27) against a real `skiff server` running every controller.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ok, type Skiff, startSkiff } from './harness.ts';

let skiff: Skiff;
before(async () => {
  skiff = await startSkiff();
});
after(async () => {
  await skiff?.stop();
});

async function eventually<T>(what: string, check: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${skiff.logs().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

for (const version of ['1.32', '1.27']) {
  const ns = `gc-${version.replace('.', '-')}`;
  const k = (args: string[], input?: string) => ok(skiff, args, { version, ...(input ? { input } : {}) });
  const kns = (args: string[], input?: string) => k([...args, '-n', ns], input);

  describe(`kubectl ${version}`, () => {
    it('deletes dependents with the owner, orphans them with --cascade=orphan', async () => {
      await k(['create', 'namespace', ns]);
      const owner = JSON.parse(await kns(['create', 'configmap', 'owner', '-o', 'json']));
      const dependent = (name: string) => `apiVersion: v1
kind: ConfigMap
metadata:
  name: ${name}
  ownerReferences:
  - apiVersion: v1
    kind: ConfigMap
    name: owner
    uid: ${owner.metadata.uid}
`;
      await kns(['apply', '-f', '-'], `${dependent('dep-a')}---\n${dependent('dep-b')}`);
      assert.match(await kns(['delete', 'configmap', 'owner']), /deleted/);
      await eventually('the dependents to be collected', async () => {
        const left = await kns(['get', 'configmaps', '-o', 'name']);
        return left.includes('dep-a') || left.includes('dep-b') ? undefined : true;
      });

      const owner2 = JSON.parse(await kns(['create', 'configmap', 'owner2', '-o', 'json']));
      await kns(
        ['apply', '-f', '-'],
        dependent('dep-c')
          .replace(owner.metadata.uid, owner2.metadata.uid)
          .replace('name: owner\n', 'name: owner2\n'),
      );
      assert.match(await kns(['delete', 'configmap', 'owner2', '--cascade=orphan']), /deleted/);
      const orphan = JSON.parse(await kns(['get', 'configmap', 'dep-c', '-o', 'json']));
      assert.equal(orphan.metadata.ownerReferences, undefined, 'the orphan lost its ownerReference');
    });

    it('foreground deletion waits for the dependents', async () => {
      const owner = JSON.parse(await kns(['create', 'configmap', 'fg-owner', '-o', 'json']));
      await kns(
        ['apply', '-f', '-'],
        `apiVersion: v1
kind: ConfigMap
metadata:
  name: fg-dep
  ownerReferences:
  - apiVersion: v1
    kind: ConfigMap
    name: fg-owner
    uid: ${owner.metadata.uid}
    blockOwnerDeletion: true
`,
      );
      // kubectl waits until the owner is gone, which is after its dependent.
      assert.match(await kns(['delete', 'configmap', 'fg-owner', '--cascade=foreground']), /deleted/);
      const left = await kns(['get', 'configmaps', '-o', 'name']);
      assert.ok(!left.includes('fg-dep'), left);
    });

    it('kubectl delete namespace returns and the namespace and its content are gone', async () => {
      await kns(['create', 'secret', 'generic', 's', '--from-literal=a=b']);
      await kns(['run', 'p', '--image=busybox', '--restart=Never']);
      assert.match(await k(['delete', 'namespace', ns], undefined), /namespace "[^"]+" deleted/);
      const r = await skiff.kubectl(['get', 'namespace', ns], { version });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /NotFound|not found/);
      assert.match(await k(['get', 'configmaps,secrets,pods', '-n', ns, '--ignore-not-found']), /^$/);
    });
  });
}
