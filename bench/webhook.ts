// bench/webhook: the latency one validating webhook that allows everything
// adds to a write. The API server runs in process (memory store, the real
// handler chain and admission plugins); the webhook is its own process on
// loopback, over HTTPS with a caBundle, as a webhook pod is reached. Creates
// of a ConfigMap are timed one at a time without the webhook, then with it,
// alternating rounds so that a change in the machine's load hits both.
// Headline: added p50 (ms) (goal: <= 2 ms).

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startTestServer } from '../src/apiserver/testing.ts';
import { ensureCA, issueLeaf } from '../src/pki/pki.ts';
import { percentile, round, writeResult } from './lib.ts';

const quick = process.env.BENCH_QUICK === '1';
const PER_ROUND = quick ? 200 : 1000;
const ROUNDS = 4;

const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-webhook-'));
const ca = ensureCA(dir, 'bench-webhook-ca');
const leaf = issueLeaf(ca, { commonName: '127.0.0.1', ips: ['127.0.0.1'], usage: 'server' });
const hook = spawn(process.execPath, [new URL('./webhook/server.ts', import.meta.url).pathname], {
  env: { ...process.env, HOOK_CERT: leaf.cert, HOOK_KEY: leaf.key },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const hookPort = Number(
  await new Promise<string>((resolve) => createInterface({ input: hook.stdout! }).once('line', resolve)),
);

const srv = await startTestServer();
const CONFIG = '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations';
let seq = 0;

async function createLatencies(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await srv.request('POST', '/api/v1/namespaces/default/configmaps', {
      metadata: { name: `cm-${seq++}` },
      data: { k: 'v' },
    });
    out.push(performance.now() - t0);
    if (res.status !== 201) throw new Error(`create: ${res.status} ${res.text}`);
  }
  return out;
}

async function setWebhook(on: boolean): Promise<void> {
  if (!on) {
    await srv.request('DELETE', `${CONFIG}/allow-all`);
    return;
  }
  const res = await srv.request('POST', CONFIG, {
    metadata: { name: 'allow-all' },
    webhooks: [
      {
        name: 'allow-all.bench.skiff.dev',
        clientConfig: {
          url: `https://127.0.0.1:${hookPort}/validate`,
          caBundle: Buffer.from(ca.cert).toString('base64'),
        },
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['configmaps'] }],
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
      },
    ],
  });
  if (res.status !== 201) throw new Error(`webhook configuration: ${res.status} ${res.text}`);
  // The plugin reads configurations from the watch cache: wait until a create goes through the webhook.
  await createLatencies(50);
}

const bare: number[] = [];
const withHook: number[] = [];
await createLatencies(200); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  bare.push(...(await createLatencies(PER_ROUND)));
  await setWebhook(true);
  withHook.push(...(await createLatencies(PER_ROUND)));
  await setWebhook(false);
}

const p50Bare = percentile(bare, 50);
const p50Hook = percentile(withHook, 50);
const figures = {
  creates: bare.length,
  bare: { p50: round(p50Bare, 3), p99: round(percentile(bare, 99), 3) },
  withWebhook: { p50: round(p50Hook, 3), p99: round(percentile(withHook, 99), 3) },
};
console.log(
  `create p50 bare ${figures.bare.p50} ms, with one validating webhook ${figures.withWebhook.p50} ms`,
);
console.log(
  `create p99 bare ${figures.bare.p99} ms, with one validating webhook ${figures.withWebhook.p99} ms`,
);

await srv.close();
hook.kill();
rmSync(dir, { recursive: true, force: true });
writeResult(
  'webhook',
  { metric: 'added p50 of one validating webhook', value: round(p50Hook - p50Bare, 3), unit: 'ms' },
  figures,
);
