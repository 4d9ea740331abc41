// The dashboard in a real browser (Debian's chromium, headless, driven by
// playwright-core) against a real `skiff server` with its agent on
// containerd, as a person uses it:
//
//   - log in with a ServiceAccount's token and see the node on the overview;
//   - create a small guestbook frontend (an RC and its Service) from YAML,
//     and watch its pods become Ready on the live map, with no page load;
//   - scale the RC, read a pod's log, run `echo hi` in the terminal (exec
//     over the API server's WebSocket), delete a pod and see it replaced;
//   - a `view` user sees no edit buttons, and a write shows the API's 403;
//   - every control on the main pages has an accessible name (axe-core).
//
// Screenshots of the main pages are taken on the way; with
// SKIFF_DASHBOARD_SCREENSHOTS=DIR they are kept there (docs/dashboard/ is
// what docs/dashboard.md shows). Needs root, containerd and chromium, as
// scripts/setup.sh installs them; run it under flock /tmp/skiff-real.lock.

/// <reference lib="dom" />

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { buildDashboard } from '../../src/dashboard/build.ts';
import { go, launchBrowser, login, newContext } from './browser.ts';
import { eventually, ok, type Skiff, startSkiff } from './harness.ts';

// This file's own pod and Service ranges, apart from every other e2e file's.
const CLUSTER_CIDR = '10.186.0.0/16';
const SERVICE_CIDR = '10.187.0.0/16';
const NS = 'dash-e2e';

const MANIFESTS = `apiVersion: v1
kind: ReplicationController
metadata:
  name: frontend
  labels: {app: guestbook, tier: frontend}
spec:
  replicas: 2
  selector: {app: guestbook, tier: frontend}
  template:
    metadata:
      labels: {app: guestbook, tier: frontend}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: web
          image: busybox
          imagePullPolicy: IfNotPresent
          command: [sh, -c, 'echo "hello from $(hostname)"; exec httpd -f -p 8080 -h /tmp']
          ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata:
  name: frontend
spec:
  selector: {app: guestbook, tier: frontend}
  ports: [{port: 80, targetPort: 8080}]
`;

let skiff: Skiff;
let base = '';
let nodeName = '';
let adminToken = '';
let viewerToken = '';
let browser: Browser;
let page: Page;
const shots = process.env.SKIFF_DASHBOARD_SCREENSHOTS;

async function screenshot(p: Page, name: string): Promise<void> {
  const png = await p.screenshot();
  assert.ok(png.length > 10_000, `the ${name} screenshot has content`);
  if (shots) {
    mkdirSync(shots, { recursive: true });
    writeFileSync(join(shots, `${name}.png`), png);
  }
}

/** A kubeconfig that authenticates with a bearer token only (the admin one has a client certificate, which wins). */
function tokenKubeconfig(token: string): string {
  const admin = readFileSync(skiff.kubeconfig, 'utf8');
  const ca = /certificate-authority-data: (\S+)/.exec(admin)![1];
  const path = join(skiff.dataDir, 'viewer.kubeconfig');
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
clusters: [{name: skiff, cluster: {server: '${base}', certificate-authority-data: ${ca}}}]
users: [{name: viewer, user: {token: '${token}'}}]
contexts: [{name: skiff, context: {cluster: skiff, user: viewer}}]
current-context: skiff
`,
  );
  return path;
}

const podNames = async (): Promise<string[]> =>
  JSON.parse(await ok(skiff, ['get', 'pods', '-n', NS, '-l', 'tier=frontend', '-o', 'json']))
    .items.filter((p: any) => !p.metadata.deletionTimestamp)
    .map((p: any) => p.metadata.name)
    .sort();

/** The map's pods of the frontend that are Ready, as the page shows them. */
const readyOnMap = (p: Page) =>
  p
    .locator('li.pod[data-state="ready"]')
    .evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset['pod']!).sort());

before(async () => {
  await buildDashboard();
  skiff = await startSkiff([
    '--no-disable-agent',
    '--cluster-cidr',
    CLUSTER_CIDR,
    '--service-cidr',
    SERVICE_CIDR,
  ]);
  base = `https://127.0.0.1:${skiff.port}`;
  await eventually(
    'the node Ready',
    async () => {
      const node = JSON.parse(await ok(skiff, ['get', 'nodes', '-o', 'json'])).items[0];
      const ready = node?.status?.conditions?.find((c: { type: string }) => c.type === 'Ready');
      nodeName = node?.metadata?.name ?? '';
      return ready?.status === 'True';
    },
    120_000,
  ).catch((err) => {
    throw new Error(`${err}\nserver output:\n${skiff.logs()}`);
  });
  await ok(skiff, ['create', 'namespace', NS]);
  await ok(skiff, ['create', 'serviceaccount', 'dash-admin', '-n', NS]);
  await ok(skiff, [
    'create',
    'clusterrolebinding',
    'dash-e2e-admin',
    '--clusterrole=cluster-admin',
    `--serviceaccount=${NS}:dash-admin`,
  ]);
  await ok(skiff, ['create', 'serviceaccount', 'dash-viewer', '-n', NS]);
  await ok(skiff, [
    'create',
    'rolebinding',
    'dash-viewer',
    '-n',
    NS,
    '--clusterrole=view',
    `--serviceaccount=${NS}:dash-viewer`,
  ]);
  adminToken = (await ok(skiff, ['create', 'token', 'dash-admin', '-n', NS])).trim();
  viewerToken = (await ok(skiff, ['create', 'token', 'dash-viewer', '-n', NS])).trim();
  browser = await launchBrowser();
  page = await (await newContext(browser)).newPage();
});

after(async () => {
  await browser?.close();
  if (!skiff) return;
  await skiff.kubectl(['delete', 'namespace', NS, '--wait=true', '--timeout=90s'], { timeoutMs: 100_000 });
  await skiff.kubectl(['delete', 'clusterrolebinding', 'dash-e2e-admin']);
  await skiff.stop();
});

describe('the dashboard in a browser', () => {
  it('logs in with a ServiceAccount token and shows the node on the overview', async () => {
    await login(page, base, adminToken);
    // Marks this page load: every later step must find it, so nothing reloaded.
    await page.evaluate(() => {
      (window as any).__sameLoad = true;
    });
    await assert.doesNotReject(page.getByText('system:serviceaccount:dash-e2e:dash-admin').waitFor());
    const card = page.getByRole('article', { name: `Node ${nodeName}` });
    await card.getByText('Ready', { exact: true }).waitFor();
    assert.match(String(await card.textContent()), /cpu/);
    await screenshot(page, 'overview');
  });

  it('creates the frontend from YAML and shows its pods become Ready on the live map, without a reload', async () => {
    await go(page, `#/create?ns=${NS}`);
    await page.getByLabel('Manifests (several documents separated by ---)').fill(MANIFESTS);
    await page.getByRole('button', { name: 'Create' }).click();
    const results = page.getByRole('list', { name: 'Results' });
    await results.getByText('ReplicationController/frontend: created').waitFor();
    await results.getByText('Service/frontend: created').waitFor();
    await go(page, `#/map?ns=${NS}`);
    await page.getByRole('heading', { name: 'Live map' }).waitFor();
    await page.waitForFunction(
      () => document.querySelectorAll('li.pod[data-state="ready"]').length === 2,
      null,
      {
        timeout: 120_000,
      },
    );
    assert.deepEqual(await readyOnMap(page), await podNames());
    // The Service's endpoints are the two pods.
    const svc = page.getByRole('article', { name: 'Service frontend' });
    await page.waitForFunction(
      () => document.querySelectorAll('article.service li.good').length === 2,
      null,
      {
        timeout: 60_000,
      },
    );
    assert.match(String(await svc.textContent()), /→ frontend-/);
    assert.equal(await page.evaluate(() => (window as any).__sameLoad), true, 'no page load happened');
    await screenshot(page, 'map');
  });

  it('scales the RC from its page', async () => {
    await go(page, `#/r/core/replicationcontrollers/${NS}/frontend`);
    await page.getByRole('heading', { name: 'frontend' }).waitFor();
    await page.getByLabel('Replicas').fill('3');
    await page.getByRole('button', { name: 'Scale' }).click();
    await page.getByRole('status').getByText('Scaled to 3').waitFor();
    assert.equal(
      JSON.parse(await ok(skiff, ['get', 'rc', 'frontend', '-n', NS, '-o', 'json'])).spec.replicas,
      3,
    );
    await screenshot(page, 'detail');
    await go(page, `#/map?ns=${NS}`);
    await page.waitForFunction(
      () => document.querySelectorAll('li.pod[data-state="ready"]').length === 3,
      null,
      {
        timeout: 120_000,
      },
    );
  });

  it("lists pods as kubectl's table, filtered by label and search", async () => {
    await go(page, `#/r/core/pods?ns=${NS}&l=tier%3Dfrontend`);
    const table = page.getByRole('table', { name: 'Pod' });
    await page.waitForFunction(
      () => document.querySelectorAll('table[aria-label="Pod"] tbody tr:not(.spacer)').length === 3,
    );
    const headers = await table.locator('thead th').allInnerTexts();
    // kubectl get pods' columns, from the API's Table.
    assert.deepEqual(headers, ['Name', 'Ready', 'Status', 'Restarts', 'Age']);
    const [first] = await podNames();
    await page.getByLabel('Search').fill(first!);
    await page.waitForFunction(
      () => document.querySelectorAll('table[aria-label="Pod"] tbody tr:not(.spacer)').length === 1,
    );
    await screenshot(page, 'pods');
  });

  it('moves by keyboard: g p goes to the pods, j selects a row, Enter opens it, ? lists the keys', async () => {
    await go(page, '#/');
    await page.getByRole('heading', { name: 'Cluster overview' }).waitFor();
    await page.keyboard.press('g');
    await page.keyboard.press('p');
    await page.waitForFunction(() => location.hash.startsWith('#/r/core/pods'));
    await page.keyboard.press('?');
    const help = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
    await help.getByText('Open the selected row').waitFor();
    await page.keyboard.press('Escape');
    await help.waitFor({ state: 'hidden' });
    await go(page, `#/r/core/pods?ns=${NS}&l=tier%3Dfrontend`);
    await page.waitForFunction(
      () => document.querySelectorAll('table[aria-label="Pod"] tbody tr:not(.spacer)').length === 3,
    );
    await page.keyboard.press('j');
    await page.keyboard.press('j');
    const selected = page.locator('table[aria-label="Pod"] tbody tr.selected');
    await selected.waitFor();
    const second = (await podNames())[1]!;
    assert.equal(await selected.locator('td').first().textContent(), second);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: second }).waitFor();
  });

  it('rolls a Deployment back to its previous revision', async () => {
    await ok(skiff, ['create', 'deployment', 'undo-me', '-n', NS, '--image=busybox', '--replicas=0']);
    await ok(skiff, ['set', 'env', 'deployment/undo-me', '-n', NS, 'VERSION=2']);
    await eventually('the second revision', async () => {
      const rs = JSON.parse(
        await ok(skiff, ['get', 'rs', '-n', NS, '-l', 'app=undo-me', '-o', 'json']),
      ).items;
      return rs.length === 2;
    });
    await go(page, `#/r/apps/deployments/${NS}/undo-me`);
    await page.getByRole('heading', { name: 'undo-me' }).waitFor();
    await page.getByRole('button', { name: 'Rollout undo' }).click();
    await page.getByRole('status').getByText('Deployment undo-me rolled back').waitFor();
    const d = JSON.parse(await ok(skiff, ['get', 'deployment', 'undo-me', '-n', NS, '-o', 'json']));
    assert.equal(
      d.spec.template.spec.containers[0].env,
      undefined,
      'the template of revision 1, with no VERSION',
    );
    assert.equal(d.spec.template.metadata.labels['pod-template-hash'], undefined);
    // A second undo goes back to what the first undid, as kubectl's does.
    await page.getByRole('button', { name: 'Rollout undo' }).click();
    await eventually('the VERSION=2 template back', async () => {
      const again = JSON.parse(await ok(skiff, ['get', 'deployment', 'undo-me', '-n', NS, '-o', 'json']));
      return again.spec.template.spec.containers[0].env?.[0]?.value === '2';
    });
  });

  it("reads a pod's log", async () => {
    const [pod] = await podNames();
    await go(page, `#/logs/${NS}/${pod}`);
    const log = page.getByLabel('Log of web');
    await log.getByText(`hello from ${pod}`).waitFor({ timeout: 30_000 });
    await screenshot(page, 'logs');
  });

  it('runs echo hi in the terminal', async () => {
    const [pod] = await podNames();
    await go(page, `#/exec/${NS}/${pod}`);
    await page.getByRole('status').getByText('connected', { exact: true }).waitFor({ timeout: 30_000 });
    await page.locator('.xterm-helper-textarea').focus();
    await page.keyboard.type('echo hi\r');
    // Each xterm row is a div: the shell echoed the command, then printed hi on a row of its own.
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll('.xterm-rows > div')].some((row) => row.textContent?.trim() === 'hi'),
      null,
      { timeout: 30_000 },
    );
    await screenshot(page, 'terminal');
  });

  it('deletes a pod after a confirmation, and the RC replaces it', async () => {
    const before = await podNames();
    const victim = before[0]!;
    await go(page, `#/r/core/pods/${NS}/${victim}`);
    await page.getByRole('heading', { name: victim }).waitFor();
    await page.getByRole('button', { name: 'Delete' }).click();
    const dialog = page.getByRole('dialog', { name: 'Confirm' });
    await dialog.getByText(`Delete Pod ${victim} in ${NS}?`).waitFor();
    await dialog.getByRole('button', { name: 'Delete' }).click();
    // Once the API has answered, the page goes back to the pod list.
    await page.getByRole('table', { name: 'Pod' }).waitFor();
    await go(page, `#/map?ns=${NS}`);
    await page
      .waitForFunction(
        (gone) => {
          const ready = [...document.querySelectorAll('li.pod[data-state="ready"]')].map(
            (e) => (e as HTMLElement).dataset['pod'],
          );
          return (
            ready.length === 3 &&
            !ready.includes(gone) &&
            !document.querySelector(`li.pod[data-pod="${gone}"]`)
          );
        },
        victim,
        { timeout: 120_000 },
      )
      .catch(async (err) => {
        const shown = await page.locator('li.pod').evaluateAll((els) => els.map((e) => e.textContent));
        const pods = await ok(skiff, ['get', 'pods', '-n', NS, '-o', 'wide']).catch(String);
        throw new Error(`${err}\nthe map shows: ${JSON.stringify(shown)}\nkubectl get pods:\n${pods}`);
      });
    const after = await podNames();
    assert.equal(after.length, 3);
    assert.ok(!after.includes(victim), `${victim} was replaced`);
    assert.equal(await page.evaluate(() => (window as any).__sameLoad), true, 'no page load happened');
  });

  it('gives every control on the main pages an accessible name (axe-core)', async () => {
    const axe = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
    const [pod] = await podNames();
    const pages = [
      '#/',
      `#/map?ns=${NS}`,
      `#/r/core/pods?ns=${NS}`,
      `#/r/core/replicationcontrollers/${NS}/frontend`,
      `#/create?ns=${NS}`,
      `#/logs/${NS}/${pod}`,
    ];
    const rules = [
      'button-name',
      'link-name',
      'label',
      'select-name',
      'input-button-name',
      'aria-input-field-name',
      'document-title',
      'html-has-lang',
    ];
    for (const hash of pages) {
      await go(page, hash);
      await page.waitForTimeout(500); // the page's first list has rendered
      // The page's CSP allows no injected script tag; DevTools' evaluation is not bound by it.
      if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axe);
      const violations = await page.evaluate(async (only) => {
        const r = await (window as any).axe.run(document, { runOnly: { type: 'rule', values: only } });
        return r.violations.map(
          (v: any) => `${v.id}: ${v.nodes.map((n: any) => n.target.join(' ')).join(', ')}`,
        ) as string[];
      }, rules);
      assert.deepEqual(violations, [], `accessibility of ${hash}`);
    }
  });

  it('shows a view user no edit buttons, and a write shows the API 403', async () => {
    const viewer = await (await newContext(browser)).newPage();
    await login(viewer, base, viewerToken);
    await go(viewer, `#/r/core/replicationcontrollers/${NS}/frontend`);
    await viewer.getByRole('heading', { name: 'YAML' }).waitFor();
    // Shown once the access reviews have answered that view allows no change.
    await viewer.getByRole('note').getByText('Read only').waitFor();
    for (const name of ['Delete', 'Scale', 'Edit YAML', 'Rollout restart'])
      assert.equal(await viewer.getByRole('button', { name }).count(), 0, `no ${name} button`);
    await screenshot(viewer, 'viewer');
    await go(viewer, `#/create?ns=${NS}`);
    await viewer.getByRole('button', { name: 'Create' }).click();
    const alert = viewer.getByRole('list', { name: 'Results' }).getByRole('alert');
    await alert.waitFor();
    // The same write by kubectl as the same user: the dashboard shows the API's very message.
    const kubectl = await skiff.kubectl(['create', 'configmap', 'example', '-n', NS], {
      env: { KUBECONFIG: tokenKubeconfig(viewerToken) },
    });
    const apiMessage = /(configmaps is forbidden: .*)$/m.exec(kubectl.stderr)?.[1];
    assert.ok(apiMessage, kubectl.stderr);
    assert.equal(await alert.textContent(), `ConfigMap/example: ${apiMessage} (Forbidden, 403)`);
  });

  it('drains the node: cordoned, its pods evicted, and uncordoned they run again', async () => {
    const before = await podNames();
    await go(page, `#/r/core/nodes/_/${nodeName}`);
    await page.getByRole('heading', { name: nodeName }).waitFor();
    await page.getByRole('button', { name: 'Drain' }).click();
    const dialog = page.getByRole('dialog', { name: 'Drain' });
    assert.equal(await dialog.getByLabel('Ignore DaemonSets').isChecked(), true);
    await screenshot(page, 'drain');
    await dialog.getByRole('button', { name: 'Drain' }).click();
    const notice = page.getByRole('status').getByText(/^Drained: \d+ pods evicted/);
    await notice.waitFor({ timeout: 120_000 });
    const node = JSON.parse(await ok(skiff, ['get', 'node', nodeName, '-o', 'json']));
    assert.equal(node.spec.unschedulable, true);
    // The RC's replacements wait: the only node is cordoned.
    const pods = JSON.parse(
      await ok(skiff, ['get', 'pods', '-n', NS, '-l', 'tier=frontend', '-o', 'json']),
    ).items;
    assert.ok(
      pods.every((p: any) => !before.includes(p.metadata.name)),
      'every frontend pod was evicted',
    );
    assert.ok(
      pods.every((p: any) => !p.spec.nodeName),
      'no replacement is scheduled on the cordoned node',
    );
    await page.getByRole('button', { name: 'Uncordon' }).click();
    await page.getByRole('status').getByText('Uncordoned').waitFor();
    await go(page, `#/map?ns=${NS}`);
    await page.waitForFunction(
      () => document.querySelectorAll('li.pod[data-state="ready"]').length === 3,
      null,
      { timeout: 120_000 },
    );
  });
});
