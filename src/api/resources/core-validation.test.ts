import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { goJSONMapError } from './go-json.ts';
import { createErrors, createObject, updateErrors } from './testing.ts';

type Obj = Record<string, unknown>;
const svcErrors = (spec: Obj) => createErrors('', 'v1', 'services', { metadata: { name: 's' }, spec });
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('Service validation', () => {
  it('accepts what kubectl create service and expose send', () => {
    assert.deepEqual(
      svcErrors({
        ports: [{ name: '80-8080', port: 80, protocol: 'TCP', targetPort: 8080 }],
        selector: { app: 'web' },
        type: 'NodePort',
      }),
      [],
    );
    assert.deepEqual(svcErrors({ clusterIP: 'None', clusterIPs: ['None'], selector: { app: 'db' } }), []);
    assert.deepEqual(svcErrors({ type: 'ExternalName', externalName: 'example.com.' }), []);
    assert.deepEqual(svcErrors({ type: 'LoadBalancer', ports: [{ port: 443, targetPort: 'https' }] }), []);
  });

  it('defaults what validation requires', () => {
    const { obj } = createObject('', 'v1', 'services', {
      spec: { type: 'ExternalName', externalName: 'x.example.com', sessionAffinity: '' },
    });
    assert.equal((obj.spec as Obj).sessionAffinity, 'None');
    const lb = createObject('', 'v1', 'services', {
      spec: { ports: [{ port: 80 }], sessionAffinity: 'ClientIP', externalIPs: ['192.0.2.1'] },
    });
    assert.deepEqual(lb.errors, []);
    assert.deepEqual((lb.obj.spec as Obj).sessionAffinityConfig, { clientIP: { timeoutSeconds: 10800 } });
    assert.equal((lb.obj.spec as Obj).externalTrafficPolicy, 'Cluster');
  });

  it('checks ports: names, uniqueness, numbers, protocols and target ports', () => {
    assert.deepEqual(
      svcErrors({
        ports: [
          { port: 80 },
          { name: 'web', port: 80, targetPort: 'HTTP' },
          { name: 'web', port: 0, protocol: 'ICMP', targetPort: 70000 },
        ],
      }),
      [
        'spec.ports[0].name: Required value',
        'spec.ports[1].targetPort: Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
        'spec.ports[1].targetPort: Invalid value: "HTTP": must contain at least one letter (a-z)',
        'spec.ports[2].name: Duplicate value: "web"',
        'spec.ports[2].port: Invalid value: 0: must be between 1 and 65535, inclusive',
        'spec.ports[2].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
        'spec.ports[2].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive',
        'spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}',
      ],
    );
    assert.deepEqual(svcErrors({}), ['spec.ports: Required value']);
  });

  it('ties nodePorts, headless services and externalName to the type', () => {
    assert.deepEqual(svcErrors({ type: 'ClusterIP', ports: [{ port: 80, nodePort: 30080 }] }), [
      "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
    ]);
    assert.deepEqual(svcErrors({ type: 'NodePort', clusterIP: 'None', ports: [{ port: 80 }] }), [
      'spec.clusterIPs[0]: Invalid value: "None": may not be set to \'None\' for NodePort services',
    ]);
    assert.deepEqual(svcErrors({ type: 'ExternalName' }), ['spec.externalName: Required value']);
    assert.deepEqual(svcErrors({ type: 'ExternalName', externalName: 'Not_A_Host' }), [
      `spec.externalName: Invalid value: "Not_A_Host": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
    ]);
    assert.deepEqual(svcErrors({ type: 'Internal', ports: [{ port: 80 }] }), [
      'spec.type: Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
    ]);
  });

  it('checks the selector and session affinity', () => {
    assert.deepEqual(
      svcErrors({ ports: [{ port: 80 }], selector: { app: 'a b' }, sessionAffinity: 'Sticky' }),
      [
        `spec.selector: Invalid value: "a b": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
        'spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"',
      ],
    );
    assert.deepEqual(
      svcErrors({
        ports: [{ port: 80 }],
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 0 } },
      }),
      [
        'spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be greater than 0 and less than 86400',
      ],
    );
  });

  it('drops the old type’s fields when an update changes the type', () => {
    const { obj } = createObject('', 'v1', 'services', {
      spec: {
        type: 'LoadBalancer',
        clusterIP: '10.43.0.5',
        clusterIPs: ['10.43.0.5'],
        ports: [{ port: 80, nodePort: 30001 }],
      },
    });
    assert.deepEqual(
      updateErrors('', 'v1', 'services', obj, (o) => {
        (o.spec as Obj).type = 'ClusterIP';
      }),
      [],
    );
    assert.deepEqual(
      updateErrors('', 'v1', 'services', obj, (o) => {
        Object.assign(o.spec as Obj, {
          type: 'ExternalName',
          externalName: 'example.com',
          ipFamilies: ['IPv4'],
        });
      }),
      ['spec.ipFamilies: Forbidden: may not be set for ExternalName services'],
    );
  });
});

describe('ConfigMap and Secret validation', () => {
  it('checks keys, duplicates across data and binaryData, and the size limit', () => {
    assert.deepEqual(
      createErrors('', 'v1', 'configmaps', {
        data: { 'ok.key_-1': 'x', 'a b': 'x', '..hidden': 'x', dup: 'x' },
        binaryData: { dup: b64('x') },
      }),
      [
        `data[..hidden]: Invalid value: "..hidden": must not start with '..'`,
        `data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`,
        'data[dup]: Invalid value: "dup": duplicate of key present in binaryData',
      ],
    );
    assert.deepEqual(
      createErrors('', 'v1', 'configmaps', { data: { a: 'x'.repeat(600_000), b: 'y'.repeat(600_000) } }),
      ['Too long: may not be more than 1048576 bytes'],
    );
    assert.deepEqual(createErrors('', 'v1', 'configmaps', { data: { a: 'x'.repeat(1_048_576) } }), []);
  });

  it('checks Secret keys, size and the keys each type needs', () => {
    const secret = (type: string, data: Record<string, string>, extra: Obj = {}) =>
      createErrors('', 'v1', 'secrets', {
        type,
        data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
        ...extra,
      });
    assert.deepEqual(secret('Opaque', { 'bad/key': 'x' }), [
      `data[bad/key]: Invalid value: "bad/key": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`,
    ]);
    assert.deepEqual(secret('kubernetes.io/tls', { 'tls.crt': 'c' }), ['data[tls.key]: Required value']);
    assert.deepEqual(secret('kubernetes.io/tls', { 'tls.crt': 'c', 'tls.key': 'k' }), []);
    assert.deepEqual(secret('kubernetes.io/dockerconfigjson', {}), [
      'data[.dockerconfigjson]: Required value',
    ]);
    assert.deepEqual(secret('kubernetes.io/dockerconfigjson', { '.dockerconfigjson': '{"auths": nope}' }), [
      `data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": invalid character 'o' in literal null (expecting 'u')`,
    ]);
    assert.deepEqual(secret('kubernetes.io/dockerconfigjson', { '.dockerconfigjson': '{"auths":{}}' }), []);
    assert.deepEqual(secret('kubernetes.io/basic-auth', {}), [
      'data[username]: Required value',
      'data[password]: Required value',
    ]);
    assert.deepEqual(secret('kubernetes.io/basic-auth', { password: '' }), []);
    assert.deepEqual(secret('kubernetes.io/ssh-auth', { 'ssh-privatekey': '' }), [
      'data[ssh-privatekey]: Required value',
    ]);
    assert.deepEqual(secret('kubernetes.io/service-account-token', {}), [
      'metadata.annotations[kubernetes.io/service-account.name]: Required value',
    ]);
    // stringData merges into data before validation.
    assert.deepEqual(
      createErrors('', 'v1', 'secrets', {
        type: 'kubernetes.io/tls',
        stringData: { 'tls.crt': 'c', 'tls.key': 'k' },
      }),
      [],
    );
    assert.deepEqual(secret('Opaque', { a: 'x'.repeat(1_048_577) }), [
      'data: Too long: may not be more than 1048576 bytes',
    ]);
  });

  it('reports JSON errors in Go’s words', () => {
    assert.equal(goJSONMapError('{"a": 1}'), undefined);
    assert.equal(goJSONMapError('null'), undefined);
    assert.equal(goJSONMapError(''), 'unexpected end of JSON input');
    assert.equal(goJSONMapError('{"a": 1'), 'unexpected end of JSON input');
    assert.equal(goJSONMapError('{"a" 1}'), "invalid character '1' after object key");
    assert.equal(
      goJSONMapError('{"a": 1,}'),
      "invalid character '}' looking for beginning of object key string",
    );
    assert.equal(goJSONMapError('{"a": 1} x'), "invalid character 'x' after top-level value");
    assert.equal(
      goJSONMapError('[1, 2]'),
      'json: cannot unmarshal array into Go value of type map[string]interface {}',
    );
    assert.equal(goJSONMapError('{"a": -x}'), "invalid character 'x' in numeric literal");
    assert.equal(
      goJSONMapError("{'a': 1}"),
      "invalid character '\\'' looking for beginning of object key string",
    );
  });
});

describe('Namespace, ReplicationController and volume claim validation', () => {
  it('checks a namespace’s spec.finalizers', () => {
    assert.deepEqual(createErrors('', 'v1', 'namespaces', { metadata: { name: 'n' } }), []);
    assert.deepEqual(
      createErrors('', 'v1', 'namespaces', {
        metadata: { name: 'n' },
        spec: { finalizers: ['kubernetes', 'example.com/cleanup', 'cleanup'] },
      }),
      [
        'spec.finalizers: Invalid value: "cleanup": name is neither a standard finalizer name nor is it fully qualified',
      ],
    );
  });

  it('requires a ReplicationController’s pods to restart always', () => {
    assert.deepEqual(
      createErrors('', 'v1', 'replicationcontrollers', {
        spec: {
          template: {
            metadata: { labels: { a: 'b' } },
            spec: { restartPolicy: 'OnFailure', containers: [{ name: 'c', image: 'x' }] },
          },
        },
      }),
      ['spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always"'],
    );
  });

  it('checks claims: access modes and a positive storage request', () => {
    const pvc = (spec: Obj) => createErrors('', 'v1', 'persistentvolumeclaims', { spec });
    assert.deepEqual(
      pvc({ accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } }),
      [],
    );
    assert.deepEqual(pvc({}), [
      'spec.accessModes: Required value: at least 1 access mode is required',
      'spec.resources[storage]: Required value',
    ]);
    assert.deepEqual(
      pvc({
        accessModes: ['ReadWriteOncePod', 'ReadWriteOnce', 'WriteOnly'],
        resources: { requests: { storage: '0' } },
      }),
      [
        'spec.accessModes: Unsupported value: "WriteOnly": supported values: "ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"',
        'spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes',
        'spec.resources[storage]: Invalid value: "0": must be greater than zero',
      ],
    );
  });

  it('keeps a claim’s spec immutable except binding and resizing a bound claim', () => {
    const { obj } = createObject('', 'v1', 'persistentvolumeclaims', {
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    });
    const change = (f: (spec: Obj) => void, phase?: string) =>
      updateErrors('', 'v1', 'persistentvolumeclaims', obj, (o) => {
        f(o.spec as Obj);
        if (phase) o.status = { phase, capacity: { storage: '1Gi' } };
      });
    assert.deepEqual(
      change((s) => Object.assign(s, { volumeName: 'pv-1' })),
      [],
    );
    const resize = (s: Obj) => {
      s.resources = { requests: { storage: '2Gi' } };
    };
    assert.match(
      change(resize)[0] ?? '',
      /^spec: Forbidden: spec is immutable after creation except resources.requests/,
    );
    assert.deepEqual(change(resize, 'Bound'), []);
  });

  it('checks volumes: capacity, access modes and exactly one source', () => {
    const pv = (spec: Obj) => createErrors('', 'v1', 'persistentvolumes', { spec });
    assert.deepEqual(
      pv({ capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], hostPath: { path: '/data' } }),
      [],
    );
    assert.deepEqual(pv({}), [
      'spec.accessModes: Required value',
      'spec.capacity: Required value',
      'spec.capacity: Unsupported value: {}: supported values: "storage"',
      'spec: Required value: must specify a volume type',
    ]);
    assert.deepEqual(
      pv({
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        hostPath: { path: '/a' },
        nfs: { server: 's', path: '/b' },
      }),
      ['spec.nfs: Forbidden: may not specify more than 1 volume type'],
    );
  });
});
