// The ingress proxy on a real node (issue 16): `skiff server` with its
// agent (containerd, runc, CNI) runs HAProxy on free ports; the real kubectl
// makes Deployments, Services and Ingresses; requests go to the node's
// ingress ports from this process, as a user's would to ports 80 and 443.
//
//   - the default IngressClass, an Ingress given it, status with the node's IP;
//   - two Deployments behind one Ingress, split by host and by path
//     (Prefix, Exact, 404 for no rule), with X-Forwarded-* headers;
//   - TLS by SNI with a Secret made by openssl (curl --resolve), HTTP/2,
//     the default certificate for other names, the HTTP→HTTPS redirect;
//   - a WebSocket upgrade through the proxy;
//   - a backend scaled 2 → 0 → 1: 503 while empty, then served;
//   - a rolling update under a bounded request loop: 0 failed requests;
//   - an Ingress of another class ignored, and a broken one reported by a
//     Warning Event without breaking the rest; the controller's RBAC.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { eventually, freePort, ok, type Skiff, skiffCli, startSkiff } from './harness.ts';

const run = promisify(execFile);
const CLUSTER_CIDR = '10.196.0.0/16';
const SERVICE_CIDR = '10.197.0.0/16';
const NS = 'ingress-e2e';

let skiff: Skiff;
let httpPort = 0;
let httpsPort = 0;
let nodeIP = '';
const tmp = mkdtempSync(join(tmpdir(), 'skiff-ingress-e2e-'));

const k = (args: string[], input?: string) =>
  ok(skiff, ['-n', NS, ...args], { ...(input !== undefined ? { input } : {}), timeoutMs: 60_000 });

/** A busybox httpd Deployment answering "<name> <pod>" on /, /beta/ and /exact, and its Service. */
const web = (name: string, replicas: number) => `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: httpd
        image: busybox
        imagePullPolicy: IfNotPresent
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
        command: [sh, -c, 'mkdir -p /www/beta && echo ${name} $(hostname) | tee /www/index.html /www/beta/index.html > /www/exact && ln -s /scripts /www/cgi-bin && exec httpd -f -p 8080 -h /www']
        volumeMounts: [{name: scripts, mountPath: /scripts}]
      volumes: [{name: scripts, configMap: {name: scripts, defaultMode: 0755}}]
---
apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec:
  selector: {app: ${name}}
  ports: [{name: web, port: 80, targetPort: http}]
`;

// headers: a CGI echoing the X-Forwarded-* headers; ws.sh: a WebSocket
// server for busybox nc (the handshake, then one text frame, then it drains).
const scripts = `apiVersion: v1
kind: ConfigMap
metadata: {name: scripts}
data:
  headers: |
    #!/bin/sh
    printf 'Content-Type: text/plain\\r\\n\\r\\n'
    echo "for=$HTTP_X_FORWARDED_FOR proto=$HTTP_X_FORWARDED_PROTO host=$HTTP_X_FORWARDED_HOST"
  ws.sh: |
    #!/bin/sh
    key=
    while read -r line; do
      line=$(printf '%s' "$line" | tr -d '\\r')
      [ -z "$line" ] && break
      case "$line" in [Ss]ec-[Ww]eb[Ss]ocket-[Kk]ey:*) key=$(printf '%s' "\${line#*:}" | tr -d ' ');; esac
    done
    accept=$(printf '%s' "\${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11" | sha1sum | cut -c1-40 | xxd -r -p | base64)
    printf 'HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: %s\\r\\n\\r\\n' "$accept"
    msg="hello from $(hostname)"
    printf '\\201'; printf "\\\\$(printf %o \${#msg})"; printf '%s' "$msg"
    cat > /dev/null
`;

const wsServer = `apiVersion: apps/v1
kind: Deployment
metadata: {name: ws}
spec:
  replicas: 1
  selector: {matchLabels: {app: ws}}
  template:
    metadata: {labels: {app: ws}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: ws
        image: busybox
        imagePullPolicy: IfNotPresent
        ports: [{containerPort: 8080}]
        command: [nc, -ll, -p, '8080', -e, /scripts/ws.sh]
        volumeMounts: [{name: scripts, mountPath: /scripts}]
      volumes: [{name: scripts, configMap: {name: scripts, defaultMode: 0755}}]
---
apiVersion: v1
kind: Service
metadata: {name: ws}
spec:
  selector: {app: ws}
  ports: [{port: 80, targetPort: 8080}]
`;

const routes = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: routes}
spec:
  rules:
  - host: a.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: alpha, port: {number: 80}}}}
  - host: b.test
    http:
      paths:
      - {path: /beta, pathType: Prefix, backend: {service: {name: beta, port: {name: web}}}}
      - {path: /exact, pathType: Exact, backend: {service: {name: beta, port: {number: 80}}}}
  - http:
      paths:
      - {path: /ws, pathType: Prefix, backend: {service: {name: ws, port: {number: 80}}}}
      - {path: /cgi-bin, pathType: Prefix, backend: {service: {name: alpha, port: {number: 80}}}}
`;

interface Answer {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** One HTTP request to the node's ingress port; error codes become status 0. */
function get(host: string, path: string, agent?: Agent): Promise<Answer> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: httpPort,
        path,
        headers: { host },
        timeout: 10_000,
        ...(agent ? { agent } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: body.trim(), headers: res.headers }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, body: String(e), headers: {} }));
    req.end();
  });
}

const curl = async (args: string[]) => {
  const r = await run('curl', ['-sS', '--max-time', '10', ...args]).catch((e) => e);
  return { out: String(r.stdout ?? ''), err: String(r.stderr ?? '') };
};

before(async () => {
  httpPort = await freePort();
  httpsPort = await freePort();
  skiff = await startSkiff([
    '--no-disable-agent',
    '--cluster-cidr',
    CLUSTER_CIDR,
    '--service-cidr',
    SERVICE_CIDR,
    '--ingress-http-port',
    String(httpPort),
    '--ingress-https-port',
    String(httpsPort),
  ]);
  await eventually(
    'the node Ready',
    async () => (await ok(skiff, ['get', 'nodes', '--no-headers'])).includes(' Ready '),
    120_000,
  );
  nodeIP = (
    await ok(skiff, [
      'get',
      'nodes',
      '-o',
      'jsonpath={.items[0].status.addresses[?(@.type=="InternalIP")].address}',
    ])
  ).trim();
  await ok(skiff, ['create', 'namespace', NS]);
  await k(['apply', '-f', '-'], [scripts, web('alpha', 2), web('beta', 2), wsServer, routes].join('\n---\n'));
  await eventually(
    'the pods Ready',
    async () => {
      const out = await k(['get', 'pods', '--no-headers']);
      return out.split('\n').filter((l) => / 1\/1 +Running /.test(l)).length === 5;
    },
    120_000,
  );
});

after(async () => {
  try {
    if (skiff) {
      await skiff.kubectl(['delete', 'namespace', NS, '--wait=true'], { timeoutMs: 90_000 });
      await skiff.stop();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  // skiff agent --cleanup (the harness's stop) stops a left-over HAProxy: none of this cluster's is running.
  const { stdout } = await run('ps', ['-eo', 'args']);
  assert.ok(!stdout.includes(join(skiff.dataDir, 'agent', 'ingress')), `HAProxy left running:\n${stdout}`);
});

describe('ingress', () => {
  it('gives an Ingress without a class the default class skiff, and the node’s address as its status', async () => {
    const classes = await ok(skiff, ['get', 'ingressclass', 'skiff', '-o', 'json']);
    const c = JSON.parse(classes);
    assert.equal(c.spec.controller, 'skiff.io/ingress');
    assert.equal(c.metadata.annotations['ingressclass.kubernetes.io/is-default-class'], 'true');
    assert.equal(
      (await k(['get', 'ingress', 'routes', '-o', 'jsonpath={.spec.ingressClassName}'])).trim(),
      'skiff',
    );
    await eventually('status.loadBalancer with the node IP', async () => {
      const ip = await k(['get', 'ingress', 'routes', '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}']);
      return ip.trim() === nodeIP;
    });
    // kubectl's ADDRESS column shows it.
    assert.match(
      await k(['get', 'ingress', 'routes']),
      new RegExp(`routes +skiff +a\\.test,b\\.test +${nodeIP.replace(/\./g, '\\.')} +80`),
    );
  });

  it('splits two Deployments by host and by path, with X-Forwarded headers and a 404 for no rule', async () => {
    const seen = await eventually('both alpha pods behind a.test', async () => {
      const names = new Set<string>();
      for (let i = 0; i < 10; i++) {
        const r = await get('a.test', '/');
        if (r.status !== 200 || !r.body.startsWith('alpha ')) return undefined;
        names.add(r.body);
      }
      return names.size === 2 ? names : undefined;
    });
    assert.equal(seen.size, 2);
    const beta = await get('b.test', '/beta/');
    assert.equal(beta.status, 200);
    assert.match(beta.body, /^beta /);
    assert.match(
      (await get('b.test:8000', '/exact')).body,
      /^beta /,
      'the Host header’s port is not part of the host',
    );
    assert.match((await get('B.TEST', '/beta/')).body, /^beta /, 'hosts are matched without case');
    for (const [host, path] of [
      ['b.test', '/exact/'],
      ['b.test', '/betax'],
      ['c.test', '/'],
    ] as const) {
      const r = await get(host, path);
      assert.equal(r.status, 404, `${host}${path}`);
      assert.equal(r.body, '404 page not found', `${host}${path}`);
    }
    const headers = await get('any.test', '/cgi-bin/headers');
    assert.equal(headers.status, 200, headers.body);
    assert.equal(headers.body, 'for=127.0.0.1 proto=http host=any.test');
  });

  it('serves TLS by SNI with a Secret made by openssl, over HTTP/2, with the default certificate for other names', async () => {
    const crt = join(tmp, 'tls.crt');
    const key = join(tmp, 'tls.key');
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      crt,
      '-days',
      '2',
      '-subj',
      '/CN=secure.test',
      '-addext',
      'subjectAltName=DNS:secure.test',
    ]);
    await k(['create', 'secret', 'tls', 'secure-tls', '--cert', crt, '--key', key]);
    await k(
      ['apply', '-f', '-'],
      `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: secure
  annotations: {ingress.skiff.io/ssl-redirect: "true"}
spec:
  ingressClassName: skiff
  tls: [{hosts: [secure.test], secretName: secure-tls}]
  rules:
  - host: secure.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: alpha, port: {number: 80}}}}
`,
    );
    const resolve = ['--resolve', `secure.test:${httpsPort}:127.0.0.1`, '--cacert', crt];
    const served = await eventually('secure.test over TLS', async () => {
      const r = await curl([...resolve, '-w', '\n%{http_version}', `https://secure.test:${httpsPort}/`]);
      return /^alpha [^\n]*\n+2$/.test(r.out.trim()) ? r : undefined;
    });
    assert.match(served.out, /^alpha /);
    // Another name gets the node's self-signed default certificate.
    const other = await curl([
      '-k',
      '-v',
      '--resolve',
      `other.test:${httpsPort}:127.0.0.1`,
      `https://other.test:${httpsPort}/`,
    ]);
    assert.match(other.err, /issuer: CN=skiff-ingress-default-ca/);
    // Plain HTTP to the TLS host is redirected, as the annotation asks.
    const redirect = await get('secure.test', '/x');
    assert.equal(redirect.status, 308);
    assert.equal(redirect.headers.location, 'https://secure.test/x');
  });

  it('upgrades a WebSocket through the proxy', async () => {
    const message = await eventually('a WebSocket message', async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${httpPort}/ws`);
      return await new Promise<string | undefined>((resolve) => {
        const timer = setTimeout(() => {
          ws.close();
          resolve(undefined);
        }, 5000);
        ws.onmessage = (e) => {
          clearTimeout(timer);
          ws.close();
          resolve(String(e.data));
        };
        ws.onerror = () => {
          clearTimeout(timer);
          resolve(undefined);
        };
      });
    });
    assert.match(message, /^hello from ws-/);
  });

  it('answers 503 while a backend has no endpoints, then serves it again (2 → 0 → 1)', async () => {
    await k(['scale', 'deployment', 'beta', '--replicas=0']);
    await eventually(
      '503 with no beta pod',
      async () => (await get('b.test', '/beta/')).status === 503,
      60_000,
    );
    await k(['scale', 'deployment', 'beta', '--replicas=1']);
    const r = await eventually(
      'beta served again',
      async () => {
        const a = await get('b.test', '/beta/');
        return a.status === 200 ? a : undefined;
      },
      90_000,
    );
    assert.match(r.body, /^beta /);
  });

  it('loses no request while the backend rolls to new pods', async () => {
    const before = new Set((await k(['get', 'pods', '-l', 'app=alpha', '-o', 'name'])).trim().split('\n'));
    await k(['rollout', 'restart', 'deployment', 'alpha']);
    // Done when only new pods are left, two of them, Ready (the old ones gone, not just terminating).
    let done = false;
    const rolled = eventually(
      'every alpha pod replaced',
      async () => {
        const pods = JSON.parse(await k(['get', 'pods', '-l', 'app=alpha', '-o', 'json'])).items as {
          metadata: { name: string; deletionTimestamp?: string };
          status: { conditions?: { type: string; status: string }[] };
        }[];
        return (
          pods.length === 2 &&
          pods.every(
            (p) =>
              !before.has(`pod/${p.metadata.name}`) &&
              !p.metadata.deletionTimestamp &&
              p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
          )
        );
      },
      120_000,
    ).finally(() => (done = true));
    const agent = new Agent({ keepAlive: true, maxSockets: 2 });
    const failures: string[] = [];
    let requests = 0;
    const served = new Set<string>();
    // Bounded: until the rollout is done, and at most 50,000 requests.
    while (!done && requests < 50_000) {
      const r = await get('a.test', '/', agent);
      requests++;
      if (r.status !== 200 || !r.body.startsWith('alpha '))
        failures.push(`${r.status} ${r.body.slice(0, 80)}`);
      else served.add(r.body);
    }
    await rolled;
    // A few more, now only the new pods serve.
    for (let i = 0; i < 20; i++) {
      const r = await get('a.test', '/', agent);
      requests++;
      if (r.status !== 200) failures.push(`${r.status} ${r.body.slice(0, 80)}`);
      else served.add(r.body);
    }
    agent.destroy();
    assert.deepEqual(failures, [], `${failures.length} of ${requests} requests failed`);
    assert.ok(served.size >= 3, `requests reached old and new pods: ${[...served].join(', ')}`);
  });

  it('ignores an Ingress of another class, reports a broken one, and keeps serving the rest', async () => {
    await k(
      ['apply', '-f', '-'],
      `apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: e2e-other}
spec: {controller: example.com/other}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: theirs}
spec:
  ingressClassName: e2e-other
  rules:
  - host: theirs.test
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: alpha, port: {number: 80}}}}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: broken}
spec:
  rules:
  - host: broken.test
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: missing, port: {number: 80}}}}]}
  - host: fine.test
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: beta, port: {number: 80}}}}]}
`,
    );
    await eventually('a Warning event for the missing Service', async () => {
      const ev = await k(['get', 'events', '--field-selector', 'involvedObject.name=broken', '-o', 'json']);
      return JSON.parse(ev).items.some(
        (e: { type: string; reason: string; message: string }) =>
          e.type === 'Warning' && e.reason === 'ServiceNotFound' && e.message.includes(`${NS}/missing`),
      );
    });
    await eventually('fine.test served', async () => (await get('fine.test', '/')).body.startsWith('beta '));
    assert.equal((await get('theirs.test', '/')).status, 404);
    assert.equal((await get('a.test', '/')).status, 200);
    assert.equal(await k(['get', 'ingress', 'theirs', '-o', 'jsonpath={.status.loadBalancer.ingress}']), '');
    // The controller's identity reads what routing needs and writes only Ingress status.
    const can = async (...args: string[]) =>
      (await skiff.kubectl(['auth', 'can-i', '--as', 'system:skiff-ingress', ...args])).stdout.trim();
    assert.equal(await can('watch', 'endpointslices.discovery.k8s.io', '-A'), 'yes');
    assert.equal(await can('update', 'ingresses.networking.k8s.io', '--subresource=status', '-A'), 'yes');
    assert.equal(await can('update', 'ingresses.networking.k8s.io', '-A'), 'no');
    assert.equal(await can('get', 'secrets', '-n', NS), 'no');
    assert.equal(await can('delete', 'pods', '-A'), 'no');
  });

  it('refuses an unknown --disable component and a bad ingress port with a clear message', async () => {
    const bad = await skiffCli(['server', '--disable', 'bogus']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--disable: unknown component "bogus" \(one of ingress\)/);
    const port = await skiffCli(['agent', '--ingress-http-port', '99999']);
    assert.equal(port.code, 2);
    assert.match(port.stderr, /--ingress-http-port must be a port \(1-65535\), not 99999/);
  });
});
