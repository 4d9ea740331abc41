// The ingress model: upstream's pathType examples table
// (https://kubernetes.io/docs/concepts/services-networking/ingress/#examples),
// run through the reference matcher (routeFor) and through the lookups the
// HAProxy config makes in its maps (haproxy-config.ts), which must agree;
// hosts, classes, endpoints and the problems a bad Ingress reports.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Secret, Service } from '../api/types/core-v1.ts';
import type { EndpointSlice } from '../api/types/discovery-v1.ts';
import type { Ingress, IngressClass } from '../api/types/networking-v1.ts';
import { routingMaps } from './haproxy-config.ts';
import { buildModel, hostMatches, isOurs, type PathType, type Route, routeFor } from './model.ts';

/** What haproxy.cfg's frontend does with exact.map (map_str) and prefix.map (map_beg: the longest prefix, here the first of the sorted file). */
function haproxyLookup(routes: Route[], host: string, path: string): string | undefined {
  const { exact, prefix } = routingMaps(routes);
  const find = (key: string) =>
    exact.find(([k]) => k === key)?.[1] ?? prefix.find(([k]) => key.startsWith(k))?.[1];
  const wild = host.replace(/^[^.]*/, '*');
  return find(`${host}${path}`) ?? find(`${wild}${path}`) ?? find(path);
}

// The docs' table: the Ingress paths (type, path), a request path, and whether it matches (which path wins).
const TABLE: { paths: [PathType, string][]; request: string; match: string | undefined }[] = [
  { paths: [['Prefix', '/']], request: '/anything/at/all', match: 'Prefix /' },
  { paths: [['Exact', '/foo']], request: '/foo', match: 'Exact /foo' },
  { paths: [['Exact', '/foo']], request: '/bar', match: undefined },
  { paths: [['Exact', '/foo']], request: '/foo/', match: undefined },
  { paths: [['Exact', '/foo/']], request: '/foo', match: undefined },
  { paths: [['Prefix', '/foo']], request: '/foo', match: 'Prefix /foo' },
  { paths: [['Prefix', '/foo']], request: '/foo/', match: 'Prefix /foo' },
  { paths: [['Prefix', '/foo/']], request: '/foo', match: 'Prefix /foo/' },
  { paths: [['Prefix', '/foo/']], request: '/foo/', match: 'Prefix /foo/' },
  { paths: [['Prefix', '/aaa/bb']], request: '/aaa/bbb', match: undefined },
  { paths: [['Prefix', '/aaa/bbb']], request: '/aaa/bbb', match: 'Prefix /aaa/bbb' },
  { paths: [['Prefix', '/aaa/bbb/']], request: '/aaa/bbb', match: 'Prefix /aaa/bbb/' },
  { paths: [['Prefix', '/aaa/bbb']], request: '/aaa/bbb/', match: 'Prefix /aaa/bbb' },
  { paths: [['Prefix', '/aaa/bbb']], request: '/aaa/bbb/ccc', match: 'Prefix /aaa/bbb' },
  { paths: [['Prefix', '/aaa/bbb']], request: '/aaa/bbbxyz', match: undefined },
  {
    paths: [
      ['Prefix', '/'],
      ['Prefix', '/aaa'],
    ],
    request: '/aaa/ccc',
    match: 'Prefix /aaa',
  },
  {
    paths: [
      ['Prefix', '/'],
      ['Prefix', '/aaa'],
      ['Prefix', '/aaa/bbb'],
    ],
    request: '/aaa/bbb',
    match: 'Prefix /aaa/bbb',
  },
  {
    paths: [
      ['Prefix', '/'],
      ['Prefix', '/aaa'],
      ['Prefix', '/aaa/bbb'],
    ],
    request: '/ccc',
    match: 'Prefix /',
  },
  { paths: [['Prefix', '/aaa']], request: '/ccc', match: undefined },
  {
    paths: [
      ['Prefix', '/foo'],
      ['Exact', '/foo'],
    ],
    request: '/foo',
    match: 'Exact /foo',
  },
  {
    paths: [
      ['Exact', '/foo'],
      ['Prefix', '/foo'],
    ],
    request: '/foo',
    match: 'Exact /foo',
  },
  // ImplementationSpecific: a string prefix here.
  {
    paths: [['ImplementationSpecific', '/aaa/b']],
    request: '/aaa/bbb',
    match: 'ImplementationSpecific /aaa/b',
  },
];

describe('pathType matching (the Ingress docs table)', () => {
  for (const row of TABLE) {
    const name = `${row.paths.map(([t, p]) => `${t} ${p}`).join(', ')} with ${row.request}: ${row.match ?? 'no match'}`;
    it(name, () => {
      const routes: Route[] = row.paths.map(([pathType, path]) => ({
        host: 'a.test',
        path: pathType === 'Prefix' ? path.replace(/(.)\/+$/, '$1') : path,
        pathType,
        backend: `${pathType} ${path}`,
        ingress: 'ns/i',
      }));
      assert.equal(routeFor(routes, 'a.test', row.request)?.backend, row.match, 'reference');
      assert.equal(haproxyLookup(routes, 'a.test', row.request), row.match, 'haproxy maps');
    });
  }
});

describe('hosts', () => {
  it('match exactly, by a one-label wildcard, or any host for a rule without one', () => {
    assert.equal(hostMatches('foo.bar.com', 'foo.bar.com'), true);
    assert.equal(hostMatches('*.foo.com', 'bar.foo.com'), true);
    assert.equal(hostMatches('*.foo.com', 'baz.bar.foo.com'), false);
    assert.equal(hostMatches('*.foo.com', 'foo.com'), false);
    assert.equal(hostMatches('', 'anything'), true);
  });

  it('prefer the exact host over the wildcard over no host, in the model and in the maps alike', () => {
    const routes: Route[] = [
      { host: '', path: '/', pathType: 'Prefix', backend: 'any', ingress: 'ns/i' },
      { host: '*.foo.com', path: '/', pathType: 'Prefix', backend: 'wild', ingress: 'ns/i' },
      { host: 'a.foo.com', path: '/', pathType: 'Prefix', backend: 'exact', ingress: 'ns/i' },
    ];
    for (const [host, want] of [
      ['a.foo.com', 'exact'],
      ['b.foo.com', 'wild'],
      ['x.b.foo.com', 'any'],
      ['foo.com', 'any'],
    ] as const) {
      assert.equal(routeFor(routes, host, '/x')?.backend, want, host);
      assert.equal(haproxyLookup(routes, host, '/x'), want, host);
    }
  });
});

const svc = (name: string, ports: { name?: string; port: number }[], ns = 'web'): Service => ({
  metadata: { name, namespace: ns },
  spec: { ports: ports.map((p) => ({ ...p, protocol: 'TCP' })) },
});
const slice = (
  service: string,
  port: { name?: string; port: number },
  eps: { ip: string; ready?: boolean; serving?: boolean; terminating?: boolean }[],
): EndpointSlice => ({
  metadata: { name: `${service}-x`, namespace: 'web', labels: { 'kubernetes.io/service-name': service } },
  addressType: 'IPv4',
  ports: [{ ...port, protocol: 'TCP' }],
  endpoints: eps.map((e) => ({
    addresses: [e.ip],
    conditions: {
      ready: e.ready ?? true,
      serving: e.serving ?? e.ready ?? true,
      terminating: e.terminating ?? false,
    },
  })),
});
const classes: IngressClass[] = [
  {
    metadata: { name: 'skiff', annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' } },
    spec: { controller: 'skiff.io/ingress' },
  },
  { metadata: { name: 'nginx' }, spec: { controller: 'k8s.io/ingress-nginx' } },
];
const ing = (
  name: string,
  spec: Ingress['spec'],
  created = '2026-01-01T00:00:00Z',
  annotations?: Record<string, string>,
): Ingress => ({
  metadata: { name, namespace: 'web', creationTimestamp: created, ...(annotations ? { annotations } : {}) },
  spec,
});
const backend = (name: string, port: number | string) => ({
  service: { name, port: typeof port === 'number' ? { number: port } : { name: port } },
});

describe('buildModel', () => {
  it('serves only Ingresses of a class of ours', () => {
    assert.equal(isOurs(ing('a', { ingressClassName: 'skiff' }), classes), true);
    assert.equal(isOurs(ing('a', { ingressClassName: 'nginx' }), classes), false);
    assert.equal(isOurs(ing('a', {}, undefined, { 'kubernetes.io/ingress.class': 'nginx' }), classes), false);
    assert.equal(isOurs(ing('a', {}), classes), true, 'no class, and ours is the default');
    assert.equal(isOurs(ing('a', {}), [classes[1]!]), false);
  });

  it('takes ready endpoints by Service port number or name, and terminating ones only when none is ready', () => {
    const model = buildModel({
      ingresses: [
        ing('a', {
          ingressClassName: 'skiff',
          rules: [
            {
              host: 'a.test',
              http: {
                paths: [
                  { path: '/n', pathType: 'Prefix', backend: backend('app', 80) },
                  { path: '/h', pathType: 'Prefix', backend: backend('app', 'http') },
                  { path: '/t', pathType: 'Prefix', backend: backend('old', 80) },
                ],
              },
            },
          ],
        }),
      ],
      classes,
      services: [svc('app', [{ name: 'http', port: 80 }]), svc('old', [{ port: 80 }])],
      endpointSlices: [
        slice('app', { name: 'http', port: 8080 }, [
          { ip: '10.42.0.2' },
          { ip: '10.42.0.3', ready: false, serving: true, terminating: true },
        ]),
        slice('old', { port: 9090 }, [{ ip: '10.42.0.9', ready: false, serving: true, terminating: true }]),
      ],
      secrets: [],
    });
    assert.deepEqual(model.problems, []);
    const eps = Object.fromEntries(model.backends.map((b) => [b.name, b.endpoints]));
    assert.deepEqual(eps, {
      web_app_80: [{ ip: '10.42.0.2', port: 8080 }],
      web_app_http: [{ ip: '10.42.0.2', port: 8080 }],
      web_old_80: [{ ip: '10.42.0.9', port: 9090 }],
    });
  });

  it('reports a missing Service, a missing TLS Secret and a duplicate path, and serves the rest', () => {
    const good = (path: string) => ({ path, pathType: 'Prefix', backend: backend('app', 80) });
    const crt = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString(
      'base64',
    );
    const key = Buffer.from('-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n').toString(
      'base64',
    );
    const secret: Secret = {
      metadata: { name: 'tls-ok', namespace: 'web' },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': crt, 'tls.key': key },
    };
    const model = buildModel({
      ingresses: [
        ing('first', {
          ingressClassName: 'skiff',
          rules: [{ host: 'a.test', http: { paths: [good('/')] } }],
        }),
        ing(
          'second',
          {
            ingressClassName: 'skiff',
            tls: [
              { hosts: ['a.test'], secretName: 'tls-ok' },
              { hosts: ['b.test'], secretName: 'missing' },
            ],
            rules: [
              {
                host: 'a.test',
                http: {
                  paths: [
                    good('/'),
                    good('/ok'),
                    { path: '/gone', pathType: 'Prefix', backend: backend('nope', 80) },
                  ],
                },
              },
            ],
          },
          '2026-01-02T00:00:00Z',
        ),
      ],
      classes,
      services: [svc('app', [{ port: 80 }])],
      endpointSlices: [],
      secrets: [secret],
    });
    assert.deepEqual(
      model.problems.map((p) => [p.ingress, p.reason]),
      [
        ['web/second', 'DuplicatePath'],
        ['web/second', 'ServiceNotFound'],
        ['web/second', 'SecretNotFound'],
      ],
    );
    assert.deepEqual(
      model.routes.map((r) => `${r.ingress} ${r.host}${r.path}`),
      ['web/first a.test/', 'web/second a.test/ok'],
    );
    assert.deepEqual(
      model.certificates.map((c) => [c.secret, c.hosts]),
      [['web/tls-ok', ['a.test']]],
    );
    assert.deepEqual(model.ingresses, ['web/first', 'web/second']);
  });

  it('takes the oldest Ingress’s defaultBackend and redirects TLS hosts on the annotation', () => {
    const model = buildModel({
      ingresses: [
        ing('new', { defaultBackend: backend('app', 80) }, '2026-02-01T00:00:00Z'),
        ing(
          'old',
          { defaultBackend: backend('other', 80), tls: [{ hosts: ['s.test'] }] },
          '2026-01-01T00:00:00Z',
          { 'ingress.skiff.io/ssl-redirect': 'true' },
        ),
      ],
      classes,
      services: [svc('app', [{ port: 80 }]), svc('other', [{ port: 80 }])],
      endpointSlices: [],
      secrets: [],
    });
    assert.equal(model.defaultBackend, 'web_other_80');
    assert.deepEqual(
      model.problems.map((p) => p.reason),
      ['DuplicateDefaultBackend'],
    );
    assert.deepEqual(model.redirectHosts, ['s.test']);
  });
});
