import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ObjectMeta } from '../../../api/meta.ts';
import type { Container, PodSpec } from '../../../api/types/core-v1.ts';
import { POD_SECURITY_CHECKS } from '../pod-security.ts';
import { checksFor, evaluatePod, forbiddenDetails, type Version, type Violation } from './policy.ts';

/** Runs one check by its upstream ID. */
function check(id: string, spec: PodSpec, metadata: ObjectMeta = {}, version: Version = 'latest') {
  const c = POD_SECURITY_CHECKS.find((x) => x.id === id);
  assert.ok(c, `no check ${id}`);
  const minor = version === 'latest' ? Number.POSITIVE_INFINITY : Number(version.slice(3));
  return c.run({ metadata, spec }, minor);
}

const named = (
  name: string,
  securityContext?: Container['securityContext'],
  extra: Container = {},
): Container => ({
  name,
  image: 'img',
  ...(securityContext ? { securityContext } : {}),
  ...extra,
});

/** A pod every check allows: the restricted profile's required fields, nothing else. */
const compliant = (): PodSpec => ({
  securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
  containers: [named('c', { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } })],
});

const expectViolation = (got: Violation | undefined, reason: string, detail: string) =>
  assert.deepEqual(got, { reason, detail });

describe('PodSecurity checks: each passes a compliant pod', () => {
  for (const c of POD_SECURITY_CHECKS)
    it(c.id, () =>
      assert.equal(c.run({ metadata: {}, spec: compliant() }, Number.POSITIVE_INFINITY), undefined),
    );
});

describe('PodSecurity baseline checks', () => {
  it('appArmorProfile: Unconfined in fields and annotations, but not RuntimeDefault, Localhost or localhost/*', () => {
    assert.equal(
      check(
        'appArmorProfile',
        {
          securityContext: { appArmorProfile: { type: 'RuntimeDefault' } },
          containers: [named('a', { appArmorProfile: { type: 'Localhost', localhostProfile: 'p' } })],
        },
        { annotations: { 'container.apparmor.security.beta.kubernetes.io/a': 'localhost/p' } },
      ),
      undefined,
    );
    expectViolation(
      check('appArmorProfile', {
        securityContext: { appArmorProfile: { type: 'Unconfined' } },
        containers: [named('a', { appArmorProfile: { type: 'Unconfined' } }), named('b')],
      }),
      'forbidden AppArmor profile',
      'pod and container "a" must not set AppArmor profile type to "Unconfined"',
    );
    expectViolation(
      check(
        'appArmorProfile',
        { containers: [named('e'), named('f')] },
        {
          annotations: {
            'container.apparmor.security.beta.kubernetes.io/f': 'unknown',
            'container.apparmor.security.beta.kubernetes.io/e': 'unconfined',
          },
        },
      ),
      'forbidden AppArmor profiles',
      'annotations must not set AppArmor profile type to "container.apparmor.security.beta.kubernetes.io/e="unconfined"", "container.apparmor.security.beta.kubernetes.io/f="unknown""',
    );
  });

  it('capabilities_baseline: only the runtime default set may be added', () => {
    assert.equal(
      check('capabilities_baseline', {
        containers: [named('a', { capabilities: { add: ['CHOWN', 'NET_BIND_SERVICE'] } })],
      }),
      undefined,
    );
    expectViolation(
      check('capabilities_baseline', {
        containers: [
          named('a', { capabilities: { add: ['NET_RAW', 'CHOWN'] } }),
          named('b', { capabilities: { add: ['SYS_ADMIN', 'NET_RAW'] } }),
        ],
      }),
      'non-default capabilities',
      'containers "a", "b" must not include "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add',
    );
  });

  it('hostNamespaces: in network, PID, IPC order', () => {
    assert.equal(check('hostNamespaces', { hostNetwork: false }), undefined);
    expectViolation(
      check('hostNamespaces', { hostIPC: true, hostPID: true, hostNetwork: true }),
      'host namespaces',
      'hostNetwork=true, hostPID=true, hostIPC=true',
    );
  });

  it('hostPathVolumes', () => {
    assert.equal(check('hostPathVolumes', { volumes: [{ name: 'e', emptyDir: {} }] }), undefined);
    expectViolation(
      check('hostPathVolumes', {
        volumes: [
          { name: 'a', hostPath: { path: '/' } },
          { name: 'b', hostPath: { path: '/etc' } },
          { name: 'c', emptyDir: {} },
        ],
      }),
      'hostPath volumes',
      'volumes "a", "b"',
    );
  });

  it('hostPorts: ports listed once, as upstream orders them', () => {
    assert.equal(
      check('hostPorts', { containers: [named('a', undefined, { ports: [{ containerPort: 80 }] })] }),
      undefined,
    );
    expectViolation(
      check('hostPorts', {
        containers: [named('b', undefined, { ports: [{ containerPort: 80, hostPort: 8080 }] })],
      }),
      'hostPort',
      'container "b" uses hostPort 8080',
    );
    expectViolation(
      check('hostPorts', {
        containers: [
          named('a', undefined, { ports: [{ hostPort: 0 }] }),
          named('b', undefined, { ports: [{ hostPort: 10 }, { hostPort: 20 }] }),
          named('c', undefined, { ports: [{ hostPort: 10 }, { hostPort: 30 }] }),
        ],
      }),
      'hostPort',
      'containers "b", "c" use hostPorts 10, 20, 30',
    );
  });

  it('hostProbesAndHostLifecycle: from v1.34', () => {
    const spec: PodSpec = {
      containers: [
        named('b', undefined, { livenessProbe: { httpGet: { host: '10.0.0.1', port: 80 } } }),
        named('a', undefined, { lifecycle: { preStop: { tcpSocket: { host: 'metadata', port: 80 } } } }),
        named('c', undefined, { readinessProbe: { httpGet: { port: 80 } } }),
      ],
    };
    expectViolation(
      check('hostProbesAndHostLifecycle', spec),
      'probe or lifecycle host',
      'containers "a", "b" use probe or lifecycle hosts "10.0.0.1", "metadata"',
    );
    assert.equal(
      checksFor({ level: 'baseline', version: 'v1.33' }, POD_SECURITY_CHECKS).some(
        (c) => c.id === 'hostProbesAndHostLifecycle',
      ),
      false,
    );
    assert.equal(
      check('hostProbesAndHostLifecycle', { containers: [spec.containers?.[2] as Container] }),
      undefined,
    );
  });

  it('privileged', () => {
    assert.equal(check('privileged', { containers: [named('a', { privileged: false })] }), undefined);
    expectViolation(
      check('privileged', {
        initContainers: [named('init', { privileged: true })],
        containers: [named('a', { privileged: true }), named('b')],
      }),
      'privileged',
      'containers "init", "a" must not set securityContext.privileged=true',
    );
  });

  it('procMount: only Default, unless the pod has its own user namespace (from v1.35)', () => {
    assert.equal(check('procMount', { containers: [named('a', { procMount: 'Default' })] }), undefined);
    expectViolation(
      check('procMount', { containers: [named('a', { procMount: 'Unmasked' })] }),
      'procMount',
      'container "a" must not set securityContext.procMount to "Unmasked"',
    );
    const userns: PodSpec = { hostUsers: false, containers: [named('a', { procMount: 'Unmasked' })] };
    assert.equal(check('procMount', userns), undefined);
    assert.equal(check('procMount', userns, {}, 'v1.34')?.reason, 'procMount');
    // Restricted replaces the relaxed check with the strict one.
    const hardened: PodSpec = {
      ...compliant(),
      hostUsers: false,
      containers: [
        named('c', {
          allowPrivilegeEscalation: false,
          capabilities: { drop: ['ALL'] },
          procMount: 'Unmasked',
        }),
      ],
    };
    const at = (level: 'baseline' | 'restricted') =>
      evaluatePod({ level, version: 'latest' }, { metadata: {}, spec: hardened }, POD_SECURITY_CHECKS);
    assert.deepEqual(at('baseline'), []);
    assert.deepEqual(at('restricted'), [
      { reason: 'procMount', detail: 'container "c" must not set securityContext.procMount to "Unmasked"' },
    ]);
  });

  it('seLinuxOptions: container types only, no user or role', () => {
    assert.equal(
      check('seLinuxOptions', {
        securityContext: { seLinuxOptions: { type: 'container_t', level: 's0:c1' } },
        containers: [named('a', { seLinuxOptions: { type: 'container_engine_t' } })],
      }),
      undefined,
    );
    expectViolation(
      check('seLinuxOptions', {
        securityContext: { seLinuxOptions: { type: 'foo', user: 'bar', role: 'baz' } },
        containers: [
          named('a', { seLinuxOptions: { type: 'container_t' } }),
          named('e', { seLinuxOptions: { type: 'bar' } }),
          named('f', { seLinuxOptions: { user: 'bar' } }),
        ],
      }),
      'seLinuxOptions',
      'pod and containers "e", "f" set forbidden securityContext.seLinuxOptions: types "bar", "foo"; user may not be set; role may not be set',
    );
    // container_engine_t is allowed from v1.31 on.
    expectViolation(
      check(
        'seLinuxOptions',
        { containers: [named('d', { seLinuxOptions: { type: 'container_engine_t' } })] },
        {},
        'v1.30',
      ),
      'seLinuxOptions',
      'container "d" set forbidden securityContext.seLinuxOptions: type "container_engine_t"',
    );
    // Before v1.31 user and role were only named next to a bad type, as upstream's 1.0 check.
    expectViolation(
      check('seLinuxOptions', { securityContext: { seLinuxOptions: { user: 'bad' } } }, {}, 'v1.30'),
      'seLinuxOptions',
      'pod set forbidden securityContext.seLinuxOptions: ',
    );
    expectViolation(
      check('seLinuxOptions', { securityContext: { seLinuxOptions: { user: 'bad' } } }),
      'seLinuxOptions',
      'pod set forbidden securityContext.seLinuxOptions: user may not be set',
    );
  });

  it('seccompProfile_baseline: not Unconfined', () => {
    assert.equal(check('seccompProfile_baseline', { containers: [named('a')] }), undefined);
    expectViolation(
      check('seccompProfile_baseline', {
        securityContext: { seccompProfile: { type: 'Unconfined' } },
        containers: [named('a', { seccompProfile: { type: 'Unconfined' } })],
      }),
      'seccompProfile',
      'pod and container "a" must not set securityContext.seccompProfile.type to "Unconfined"',
    );
    // Before v1.19 the alpha annotations are what counts.
    const annotated = {
      annotations: {
        'seccomp.security.alpha.kubernetes.io/pod': 'unconfined',
        'container.seccomp.security.alpha.kubernetes.io/a': 'localhost/p',
        'container.seccomp.security.alpha.kubernetes.io/b': 'unconfined',
      },
    };
    expectViolation(
      check('seccompProfile_baseline', { containers: [named('a'), named('b')] }, annotated, 'v1.18'),
      'seccompProfile',
      'forbidden annotations container.seccomp.security.alpha.kubernetes.io/b="unconfined", seccomp.security.alpha.kubernetes.io/pod="unconfined"',
    );
    assert.equal(
      check('seccompProfile_baseline', { containers: [named('a'), named('b')] }, annotated),
      undefined,
    );
  });

  it('sysctls: the safe set, grown by version', () => {
    assert.equal(
      check('sysctls', {
        securityContext: { sysctls: [{ name: 'net.ipv4.tcp_keepalive_time', value: '60' }] },
      }),
      undefined,
    );
    expectViolation(
      check('sysctls', {
        securityContext: { sysctls: [{ name: 'kernel.msgmax' }, { name: 'net.core.somaxconn' }] },
      }),
      'forbidden sysctls',
      'kernel.msgmax, net.core.somaxconn',
    );
    expectViolation(
      check(
        'sysctls',
        { securityContext: { sysctls: [{ name: 'net.ipv4.ip_local_reserved_ports' }] } },
        {},
        'v1.26',
      ),
      'forbidden sysctls',
      'net.ipv4.ip_local_reserved_ports',
    );
    assert.equal(
      check('sysctls', { securityContext: { sysctls: [{ name: 'net.ipv4.tcp_wmem' }] } }, {}, 'v1.32'),
      undefined,
    );
    assert.equal(
      check('sysctls', { securityContext: { sysctls: [{ name: 'net.ipv4.tcp_wmem' }] } }, {}, 'v1.31')
        ?.detail,
      'net.ipv4.tcp_wmem',
    );
  });

  it('windowsHostProcess', () => {
    assert.equal(
      check('windowsHostProcess', { containers: [named('a', { windowsOptions: { hostProcess: false } })] }),
      undefined,
    );
    expectViolation(
      check('windowsHostProcess', {
        securityContext: { windowsOptions: { hostProcess: true } },
        containers: [
          named('d', { windowsOptions: { hostProcess: false } }),
          named('e', { windowsOptions: { hostProcess: true } }),
        ],
      }),
      'hostProcess',
      'pod and container "e" must not set securityContext.windowsOptions.hostProcess=true',
    );
  });
});

describe('PodSecurity restricted checks', () => {
  it('allowPrivilegeEscalation: must be set to false (Windows pods exempt)', () => {
    expectViolation(
      check('allowPrivilegeEscalation', {
        containers: [
          named('a'),
          named('b', {}),
          named('c', { allowPrivilegeEscalation: true }),
          named('d', { allowPrivilegeEscalation: false }),
        ],
      }),
      'allowPrivilegeEscalation != false',
      'containers "a", "b", "c" must set securityContext.allowPrivilegeEscalation=false',
    );
    assert.equal(
      check('allowPrivilegeEscalation', { os: { name: 'windows' }, containers: [named('a')] }),
      undefined,
    );
  });

  it('capabilities_restricted: drop ALL, add at most NET_BIND_SERVICE', () => {
    assert.equal(
      check('capabilities_restricted', {
        containers: [named('a', { capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] } })],
      }),
      undefined,
    );
    expectViolation(
      check('capabilities_restricted', {
        containers: [
          named('a'),
          named('b', { capabilities: { drop: ['ALL'], add: ['CHOWN', 'NET_BIND_SERVICE'] } }),
        ],
      }),
      'unrestricted capabilities',
      'container "a" must set securityContext.capabilities.drop=["ALL"]; container "b" must not include "CHOWN" in securityContext.capabilities.add',
    );
  });

  it('restrictedVolumes: only the core volume types', () => {
    assert.equal(
      check('restrictedVolumes', {
        volumes: [
          { name: 'a', configMap: { name: 'x' } },
          { name: 'b', secret: { secretName: 'x' } },
          { name: 'c', emptyDir: {} },
          { name: 'd', persistentVolumeClaim: { claimName: 'x' } },
          { name: 'e', projected: { sources: [] } },
          { name: 'f', downwardAPI: {} },
          { name: 'g', image: { reference: 'registry.example/data:1' } },
        ],
      }),
      undefined,
    );
    expectViolation(
      check('restrictedVolumes', {
        volumes: [
          { name: 'a', hostPath: { path: '/' } },
          { name: 'b', emptyDir: {} },
          { name: 'c', nfs: { server: 's', path: '/' } },
          { name: 'd', hostPath: { path: '/x' } },
        ],
      }),
      'restricted volume types',
      'volumes "a", "c", "d" use restricted volume types "hostPath", "nfs"',
    );
  });

  it('runAsNonRoot: set true on the pod or every container, never false', () => {
    assert.equal(check('runAsNonRoot', { containers: [named('a', { runAsNonRoot: true })] }), undefined);
    expectViolation(
      check('runAsNonRoot', {
        securityContext: { runAsNonRoot: false },
        containers: [named('a', { runAsNonRoot: false }), named('b')],
      }),
      'runAsNonRoot != true',
      'pod and container "a" must not set securityContext.runAsNonRoot=false',
    );
    expectViolation(
      check('runAsNonRoot', { containers: [named('a'), named('b', {}), named('c', { runAsNonRoot: true })] }),
      'runAsNonRoot != true',
      'pod or containers "a", "b" must set securityContext.runAsNonRoot=true',
    );
  });

  it('runAsNonRoot and runAsUser: not required of a pod in its own user namespace, from v1.35', () => {
    const root: PodSpec = { hostUsers: false, securityContext: { runAsUser: 0 }, containers: [named('a')] };
    assert.equal(check('runAsNonRoot', root), undefined);
    assert.equal(check('runAsUser', root), undefined);
    assert.equal(check('runAsNonRoot', root, {}, 'v1.34')?.reason, 'runAsNonRoot != true');
    assert.equal(check('runAsUser', root, {}, 'v1.34')?.reason, 'runAsUser=0');
  });

  it('runAsUser: not 0', () => {
    assert.equal(
      check('runAsUser', { securityContext: { runAsUser: 1000 }, containers: [named('a')] }),
      undefined,
    );
    expectViolation(
      check('runAsUser', {
        securityContext: { runAsUser: 0 },
        containers: [named('a', { runAsUser: 0 }), named('b', { runAsUser: 1 })],
      }),
      'runAsUser=0',
      'pod and container "a" must not set runAsUser=0',
    );
  });

  it('seccompProfile_restricted: RuntimeDefault or Localhost required', () => {
    assert.equal(
      check('seccompProfile_restricted', {
        containers: [named('a', { seccompProfile: { type: 'Localhost', localhostProfile: 'p' } })],
      }),
      undefined,
    );
    expectViolation(
      check('seccompProfile_restricted', {
        containers: [named('a'), named('b', { seccompProfile: { type: 'RuntimeDefault' } })],
      }),
      'seccompProfile',
      'pod or container "a" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"',
    );
    expectViolation(
      check('seccompProfile_restricted', {
        securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
        containers: [named('a', { seccompProfile: { type: 'Unconfined' } })],
      }),
      'seccompProfile',
      'container "a" must not set securityContext.seccompProfile.type to "Unconfined"',
    );
  });
});

describe('PodSecurity levels', () => {
  /** Everything a node agent might ask for. */
  const privilegedPod = (): PodSpec => ({
    hostNetwork: true,
    hostPID: true,
    volumes: [{ name: 'host', hostPath: { path: '/' } }],
    containers: [named('c', { privileged: true, runAsUser: 0 })],
  });

  it('a privileged pod under restricted: baseline problems first, then restricted ones, each once', () => {
    assert.equal(
      forbiddenDetails(
        evaluatePod(
          { level: 'restricted', version: 'latest' },
          { metadata: {}, spec: privilegedPod() },
          POD_SECURITY_CHECKS,
        ),
      ),
      'host namespaces (hostNetwork=true, hostPID=true), ' +
        'privileged (container "c" must not set securityContext.privileged=true), ' +
        'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), ' +
        'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), ' +
        'restricted volume types (volume "host" uses restricted volume type "hostPath"), ' +
        'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), ' +
        'runAsUser=0 (container "c" must not set runAsUser=0), ' +
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
    );
  });

  it('a privileged pod under baseline', () => {
    assert.equal(
      forbiddenDetails(
        evaluatePod(
          { level: 'baseline', version: 'latest' },
          { metadata: {}, spec: privilegedPod() },
          POD_SECURITY_CHECKS,
        ),
      ),
      'host namespaces (hostNetwork=true, hostPID=true), hostPath volumes (volume "host"), ' +
        'privileged (container "c" must not set securityContext.privileged=true)',
    );
  });

  it('the privileged level allows everything', () => {
    assert.deepEqual(
      evaluatePod(
        { level: 'privileged', version: 'latest' },
        { metadata: {}, spec: privilegedPod() },
        POD_SECURITY_CHECKS,
      ),
      [],
    );
  });

  it('a plain pod passes baseline but not restricted', () => {
    const plain: PodSpec = { containers: [named('app')] };
    assert.deepEqual(
      evaluatePod(
        { level: 'baseline', version: 'latest' },
        { metadata: {}, spec: plain },
        POD_SECURITY_CHECKS,
      ),
      [],
    );
    assert.deepEqual(
      evaluatePod(
        { level: 'restricted', version: 'latest' },
        { metadata: {}, spec: plain },
        POD_SECURITY_CHECKS,
      ).map((v) => v.reason),
      [
        'allowPrivilegeEscalation != false',
        'unrestricted capabilities',
        'runAsNonRoot != true',
        'seccompProfile',
      ],
    );
  });

  it('an old version runs the checks of its day: no capabilities_restricted before v1.22, so baseline capabilities apply', () => {
    const spec: PodSpec = {
      ...compliant(),
      containers: [named('c', { allowPrivilegeEscalation: false, capabilities: { add: ['NET_RAW'] } })],
    };
    assert.deepEqual(
      evaluatePod({ level: 'restricted', version: 'v1.21' }, { metadata: {}, spec }, POD_SECURITY_CHECKS).map(
        (v) => v.reason,
      ),
      ['non-default capabilities'],
    );
    assert.deepEqual(
      evaluatePod(
        { level: 'restricted', version: 'latest' },
        { metadata: {}, spec },
        POD_SECURITY_CHECKS,
      ).map((v) => v.reason),
      ['unrestricted capabilities'],
    );
  });
});
