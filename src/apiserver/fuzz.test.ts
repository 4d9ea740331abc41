// Throws thousands of mutated requests at the API server and checks that
// every answer is a 2xx or a 4xx Status (never a 500, never a dropped
// connection), and that afterwards every stored object still reads back and
// validates: nothing half-written.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { builtinRegistry } from '../api/resources/index.ts';
import { startTestServer, type TestServer } from './testing.ts';

// A small deterministic PRNG (mulberry32), so a failure can be replayed.
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

const SEED = Number(process.env.FUZZ_SEED ?? 20261121);
const ROUNDS = Number(process.env.FUZZ_ROUNDS ?? 3000);

const seeds: Array<{ path: string; body: Record<string, unknown> }> = [
  {
    path: '/api/v1/namespaces/default/pods',
    body: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', labels: { app: 'x' } },
      spec: {
        containers: [
          { name: 'c', image: 'busybox', ports: [{ containerPort: 80 }], env: [{ name: 'A', value: '1' }] },
        ],
      },
    },
  },
  {
    path: '/apis/apps/v1/namespaces/default/deployments',
    body: {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'd' },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'd' } },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 1 } },
        template: {
          metadata: { labels: { app: 'd' } },
          spec: { containers: [{ name: 'c', image: 'nginx' }] },
        },
      },
    },
  },
  {
    path: '/api/v1/namespaces/default/services',
    body: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 's' },
      spec: { type: 'NodePort', selector: { app: 'x' }, ports: [{ port: 80, targetPort: 'http' }] },
    },
  },
  {
    path: '/api/v1/namespaces/default/configmaps',
    body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { a: 'b' } },
  },
  { path: '/api/v1/namespaces', body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n' } } },
  {
    path: '/apis/batch/v1/namespaces/default/jobs',
    body: {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'j' },
      spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox' }] } } },
    },
  },
];

const weird: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1e308,
  2 ** 53 + 1,
  '',
  'x'.repeat(300),
  'ü\u0000\ud800',
  [],
  {},
  [null],
  { $patch: 'delete' },
  '-1',
  'NaN',
];

function mutate(value: unknown, rand: () => number, depth = 0): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  if (rand() < 0.15 || depth > 6) return pick(weird);
  if (Array.isArray(value)) {
    const out = value.map((v) => (rand() < 0.3 ? mutate(v, rand, depth + 1) : v));
    if (rand() < 0.2) out.push(mutate(pick(value.length ? value : [{}]), rand, depth + 1));
    if (rand() < 0.1) out.splice(0, 1);
    return out;
  }
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    for (const k of Object.keys(out)) {
      const r = rand();
      if (r < 0.1) delete out[k];
      else if (r < 0.4) out[k] = mutate(out[k], rand, depth + 1);
    }
    if (rand() < 0.1)
      out[pick(['extra', 'spec', 'status', 'metadata', 'kind', '__proto__', 'constructor'])] = pick(weird);
    return out;
  }
  return rand() < 0.5 ? pick(weird) : value;
}

function corruptText(text: string, rand: () => number): string {
  const r = rand();
  if (r < 0.3) return text.slice(0, Math.floor(rand() * text.length));
  if (r < 0.6) {
    const i = Math.floor(rand() * text.length);
    return text.slice(0, i) + String.fromCharCode(Math.floor(rand() * 128)) + text.slice(i + 1);
  }
  if (r < 0.8) return `${text}${text}`;
  return `a: [b\n  - c: {{{\n${text}`;
}

let s: TestServer;
before(async () => {
  s = await startTestServer();
});
after(async () => {
  await s.close();
});

describe('fuzz', () => {
  it(`answers ${ROUNDS} mutated requests with Status objects, never 5xx (seed ${SEED})`, async () => {
    const rand = prng(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const failures: string[] = [];
    const contentTypes = [
      'application/json',
      'application/yaml',
      'application/merge-patch+json',
      'application/strategic-merge-patch+json',
      'application/json-patch+json',
      'application/apply-patch+yaml',
      'text/plain',
      '',
    ];
    for (let i = 0; i < ROUNDS && failures.length < 5; i++) {
      const seed = pick(seeds);
      const body = mutate(structuredClone(seed.body), rand);
      let text = JSON.stringify(body) ?? 'null';
      if (rand() < 0.2) text = corruptText(text, rand);
      const name = pick(['p', 'd', 's', 'c', 'n', 'j', 'missing', 'UPPER', '..', '%2F', 'a'.repeat(300)]);
      const r = rand();
      let method = 'POST';
      let path = seed.path;
      let headers: Record<string, string> = { 'content-type': 'application/json' };
      if (r < 0.35) {
        method = 'POST';
      } else if (r < 0.55) {
        method = 'PUT';
        path = `${seed.path}/${name}`;
      } else if (r < 0.8) {
        method = 'PATCH';
        path = `${seed.path}/${name}`;
        headers = { 'content-type': pick(contentTypes) };
        if (headers['content-type'] === 'application/json-patch+json' && rand() < 0.7) {
          text = JSON.stringify([
            {
              op: pick(['add', 'remove', 'replace', 'move', 'copy', 'test', 'bogus']),
              path: pick([
                '/spec',
                '/metadata/labels/x',
                '/a/b/c',
                '',
                '/spec/containers/-',
                '/spec/replicas',
              ]),
              value: mutate({ x: 1 }, rand),
              from: '/metadata/name',
            },
          ]);
        }
      } else if (r < 0.9) {
        method = 'DELETE';
        path = `${seed.path}/${name}`;
        if (rand() < 0.5)
          text = JSON.stringify(
            mutate(
              {
                kind: 'DeleteOptions',
                apiVersion: 'v1',
                propagationPolicy: 'Foreground',
                gracePeriodSeconds: 0,
                preconditions: { uid: 'x' },
              },
              rand,
            ),
          );
        else text = '';
      } else {
        method = 'GET';
        const q = pick([
          'labelSelector=a%3D(',
          'fieldSelector=spec.x%3Dy',
          'limit=-1',
          'continue=%%%',
          'resourceVersion=abc',
          'resourceVersionMatch=Exact',
          'watch=true&resourceVersion=abc',
          'limit=1',
          'fieldSelector=metadata.name%3Dp',
        ]);
        path = `${seed.path}?${q}`;
        text = '';
      }
      if (rand() < 0.1) headers['content-type'] = pick(contentTypes);
      if (rand() < 0.05) path = path.replace('/default/', pick(['/nope/', '/UPPER/', '/../', '//']));
      const query =
        rand() < 0.2
          ? `${path.includes('?') ? '&' : '?'}${pick(['dryRun=All', 'fieldValidation=Strict', 'fieldValidation=Bogus', 'dryRun=x', 'gracePeriodSeconds=-5', 'propagationPolicy=Nope', 'fieldManager=f&force=true'])}`
          : '';
      try {
        const res = await fetch(`${s.url}${path}${query}`, {
          method,
          headers,
          ...(method === 'GET' || text === '' ? {} : { body: text }),
          signal: AbortSignal.timeout(5000),
        });
        const resText = await res.text();
        if (res.status >= 500)
          failures.push(
            `${method} ${path}${query} → ${res.status} ${resText.slice(0, 300)}\n  body: ${text.slice(0, 300)}`,
          );
        else if (res.status >= 400) {
          const status = JSON.parse(resText) as { kind?: string; code?: number };
          if (status.kind !== 'Status' || status.code !== res.status)
            failures.push(`${method} ${path} → ${res.status} without a Status: ${resText.slice(0, 200)}`);
        }
      } catch (err) {
        failures.push(`${method} ${path}${query} → ${String(err)}\n  body: ${text.slice(0, 300)}`);
      }
    }
    assert.deepEqual(failures, []);

    // Nothing half-written: every stored object of every kind reads back
    // through the API and passes its own validation.
    const registry = builtinRegistry();
    for (const rt of registry.all()) {
      const storage = s.api.storage(rt.group, rt.version, rt.plural)!;
      const list = await storage.list(undefined, {});
      for (const obj of list.items) {
        const errs = rt.validate?.(obj) ?? [];
        assert.deepEqual(
          errs,
          [],
          `${rt.plural} ${obj.metadata.namespace}/${obj.metadata.name} is stored but invalid`,
        );
        assert.ok(
          obj.metadata.uid && obj.metadata.creationTimestamp,
          `${rt.plural} ${obj.metadata.name} lacks uid or creationTimestamp`,
        );
      }
    }
    const health = await s.request('GET', '/healthz');
    assert.equal(health.status, 200);
  });
});
