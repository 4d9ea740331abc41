// bench/api's custom resource figure (issue 15): creates/s and LIST latency
// of a CRD's objects against ConfigMaps of the same size, on the same
// server in the same run, in alternating rounds (medians). A Note's spec.data
// is what a ConfigMap's data is (ten string keys); its schema makes the
// server prune, default and validate it. Goal: >= 0.8x the built-in kind.

import { load, ratio, round } from '../lib.ts';

type Call = (method: string, path: string, body?: unknown) => Promise<{ status: number; text: string }>;

const CLIENTS = 10;
const ROUNDS = 3;
const NS = 'bench-crd';

const noteCRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'notes.bench.skiff.dev' },
  spec: {
    group: 'bench.skiff.dev',
    scope: 'Namespaced',
    names: { plural: 'notes', singular: 'note', kind: 'Note' },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: {
                type: 'object',
                properties: {
                  data: { type: 'object', additionalProperties: { type: 'string', maxLength: 256 } },
                  kind: { type: 'string', default: 'plain' },
                },
              },
            },
          },
        },
      },
    ],
  },
};

const data = () =>
  Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`key-${i}`, `value-${i}-${'x'.repeat(24)}`]));
const labels = { app: 'bench' };
const configMap = (name: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, labels },
  data: data(),
});
const note = (name: string) => ({
  apiVersion: 'bench.skiff.dev/v1',
  kind: 'Note',
  metadata: { name, labels },
  spec: { data: data() },
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function customResourceCost(call: Call, n: number, log: (s: string) => void) {
  await call('POST', '/api/v1/namespaces', { metadata: { name: NS } });
  await call('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', noteCRD);
  const notes = `/apis/bench.skiff.dev/v1/namespaces/${NS}/notes`;
  const configMaps = `/api/v1/namespaces/${NS}/configmaps`;
  for (let i = 0; ; i++) {
    try {
      await call('GET', notes);
      break;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const rates = { cr: [] as number[], builtin: [] as number[] };
  const lists = { cr: [] as number[], builtin: [] as number[] };
  const timeList = async (path: string) => {
    const t = performance.now();
    await call('GET', path);
    return performance.now() - t;
  };
  for (let r = 0; r < ROUNDS; r++) {
    rates.builtin.push(
      (await load(n, CLIENTS, (i) => call('POST', configMaps, configMap(`r${r}-${i}`)))).opsPerSec,
    );
    rates.cr.push((await load(n, CLIENTS, (i) => call('POST', notes, note(`r${r}-${i}`)))).opsPerSec);
  }
  for (let r = 0; r < 5; r++) {
    lists.builtin.push(await timeList(configMaps));
    lists.cr.push(await timeList(notes));
  }
  const figures = {
    objects: n * ROUNDS,
    clients: CLIENTS,
    crCreatesPerSec: median(rates.cr),
    builtinCreatesPerSec: median(rates.builtin),
    createRateVsBuiltin: ratio(median(rates.cr), median(rates.builtin)),
    crListMs: round(median(lists.cr)),
    builtinListMs: round(median(lists.builtin)),
    // As a rate, so that >= 0.8 reads the same way as for creates.
    listRateVsBuiltin: ratio(median(lists.builtin), median(lists.cr)),
  };
  log(
    `custom resources: ${figures.crCreatesPerSec} creates/s vs ConfigMaps ${figures.builtinCreatesPerSec}/s (${figures.createRateVsBuiltin}x); LIST of ${figures.objects}: ${figures.crListMs} ms vs ${figures.builtinListMs} ms (${figures.listRateVsBuiltin}x as a rate)`,
  );
  return figures;
}
