// Endpoints and EndpointSlices seen through the real kubectl against a real
// `skiff server`: the controllers fill them from a Service's pods, and the
// `kubernetes` Service points at the API server. There is no kubelet, so the
// test writes pod IPs and readiness through pods/status, as a kubelet would.

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

const NS = 'ep-e2e';
const k = (args: string[], input?: string) => ok(skiff, args, input === undefined ? {} : { input });
const kns = (args: string[]) => k(['-n', NS, ...args]);

/** Retries `check` (which may throw) until it returns a truthy value. */
async function eventually<T>(what: string, check: () => Promise<T>, ms = 30_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${String(last ?? '')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const pod = (name: string, port: number) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${NS}
  labels: {app: echo}
spec:
  nodeName: worker-1
  containers:
  - name: echo
    image: busybox
    ports:
    - {name: http, containerPort: ${port}}
`;

const node = `apiVersion: v1
kind: Node
metadata:
  name: worker-1
  labels: {topology.kubernetes.io/zone: zone-1}
`;

const setReady = (name: string, ip: string) =>
  kns([
    'patch',
    'pod',
    name,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({
      status: {
        phase: 'Running',
        podIP: ip,
        podIPs: [{ ip }],
        conditions: [
          { type: 'Ready', status: 'True', lastTransitionTime: new Date().toISOString().slice(0, 19) + 'Z' },
        ],
      },
    }),
  ]);

describe('endpoints with kubectl', () => {
  it('kubectl expose: get endpoints, get endpointslices and describe svc show the pod IPs', async () => {
    await k(['create', 'namespace', NS]);
    await k(['apply', '-f', '-'], `${node}---\n${pod('echo-1', 8080)}---\n${pod('echo-2', 9090)}`);
    await setReady('echo-1', '10.42.0.11');
    await setReady('echo-2', '10.42.0.12');
    await kns([
      'expose',
      'pod',
      'echo-1',
      '--name=echo',
      '--port=80',
      '--target-port=http',
      '--selector=app=echo',
    ]);

    // The named port resolves per pod: 8080 on one, 9090 on the other.
    const endpoints = await eventually('endpoints', async () => {
      const out = await kns(['get', 'endpoints', 'echo']);
      return out.includes('10.42.0.11:8080') && out.includes('10.42.0.12:9090') ? out : undefined;
    });
    assert.match(endpoints, /^echo\s/m);

    const slices = await eventually('endpointslices', async () => {
      const out = await kns(['get', 'endpointslices', '-l', 'kubernetes.io/service-name=echo']);
      return out.includes('10.42.0.11') && out.includes('10.42.0.12') ? out : undefined;
    });
    assert.match(slices, /IPv4/);
    const json = JSON.parse(
      await kns(['get', 'endpointslices', '-l', 'kubernetes.io/service-name=echo', '-o', 'json']),
    );
    for (const slice of json.items) {
      assert.equal(
        slice.metadata.labels['endpointslice.kubernetes.io/managed-by'],
        'endpointslice-controller.k8s.io',
      );
      assert.equal(slice.metadata.ownerReferences[0].kind, 'Service');
      assert.equal(slice.endpoints[0].zone, 'zone-1');
    }

    const described = await kns(['describe', 'svc', 'echo']);
    assert.match(described, /^Endpoints:\s+.*10\.42\.0\.1[12]:(8080|9090)/m);
  });

  it('the kubernetes Service points at the API server, and the controllers leave it alone', async () => {
    const ep = JSON.parse(await k(['-n', 'default', 'get', 'endpoints', 'kubernetes', '-o', 'json']));
    const address = ep.subsets[0].addresses[0].ip;
    assert.equal(ep.subsets[0].ports[0].port, skiff.port);
    const slice = JSON.parse(await k(['-n', 'default', 'get', 'endpointslice', 'kubernetes', '-o', 'json']));
    assert.equal(slice.metadata.labels['kubernetes.io/service-name'], 'kubernetes');
    assert.deepEqual(slice.endpoints[0].addresses, [address]);
    assert.equal(slice.ports[0].port, skiff.port);
    // Nothing else claims the Service: its only slice is the API server's.
    const all = JSON.parse(
      await k([
        '-n',
        'default',
        'get',
        'endpointslices',
        '-l',
        'kubernetes.io/service-name=kubernetes',
        '-o',
        'json',
      ]),
    );
    assert.deepEqual(
      all.items.map((s: { metadata: { name: string } }) => s.metadata.name),
      ['kubernetes'],
    );
    assert.match(
      await k(['-n', 'default', 'describe', 'svc', 'kubernetes']),
      new RegExp(`Endpoints:\\s+${address}:`),
    );
  });

  it('deleting the Service deletes its Endpoints', async () => {
    await kns(['delete', 'svc', 'echo']);
    await eventually('endpoints gone', async () => {
      const r = await skiff.kubectl(['-n', NS, 'get', 'endpoints', 'echo']);
      return r.code !== 0 && /NotFound|not found/.test(r.stderr);
    });
  });
});
