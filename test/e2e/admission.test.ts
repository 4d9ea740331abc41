// The admission chain with the real kubectl: PodSecurity's namespace labels
// (refusals and Warning headers as kubectl prints them) and LimitRange
// defaults and bounds.

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

const privilegedPod = (name: string) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
spec:
  containers:
  - name: c
    image: busybox
    securityContext:
      privileged: true
`;

describe('PodSecurity with kubectl', () => {
  it('enforce=restricted refuses a privileged pod with upstream message', async () => {
    await ok(skiff, ['create', 'namespace', 'locked']);
    await ok(skiff, ['label', 'namespace', 'locked', 'pod-security.kubernetes.io/enforce=restricted']);
    const r = await skiff.kubectl(['apply', '-n', 'locked', '-f', '-'], { input: privilegedPod('root') });
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /Error from server \(Forbidden\): error when creating "STDIN": pods "root" is forbidden: violates PodSecurity "restricted:latest": privileged \(container "c" must not set securityContext\.privileged=true\), allowPrivilegeEscalation != false/,
    );
    const get = await skiff.kubectl(['get', 'pod', 'root', '-n', 'locked']);
    assert.notEqual(get.code, 0);
  });

  it('warn=baseline prints the warning and creates the pod', async () => {
    await ok(skiff, ['create', 'namespace', 'warned']);
    await ok(skiff, ['label', 'namespace', 'warned', 'pod-security.kubernetes.io/warn=baseline']);
    const r = await skiff.kubectl(['apply', '-n', 'warned', '-f', '-'], { input: privilegedPod('root') });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /^Warning: would violate PodSecurity "baseline:latest": privileged \(container "c" must not set securityContext\.privileged=true\)$/m,
    );
    assert.match(r.stdout, /pod\/root created/);
  });

  it('an unlabelled namespace is privileged', async () => {
    const r = await skiff.kubectl(['apply', '-n', 'default', '-f', '-'], { input: privilegedPod('root') });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /Warning/);
  });

  it('labelling a namespace whose pods would be refused warns about them', async () => {
    const r = await skiff.kubectl([
      'label',
      'namespace',
      'warned',
      'pod-security.kubernetes.io/enforce=baseline',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /Warning: existing pods in namespace "warned" violate the new PodSecurity enforce level "baseline:latest"/,
    );
    assert.match(r.stderr, /Warning: root: privileged/);
  });
});

describe('LimitRanger with kubectl', () => {
  it('defaults from a LimitRange show in kubectl get pod -o yaml', async () => {
    await ok(skiff, ['create', 'namespace', 'limited']);
    await ok(skiff, ['apply', '-n', 'limited', '-f', '-'], {
      input: `apiVersion: v1
kind: LimitRange
metadata:
  name: defaults
spec:
  limits:
  - type: Container
    default:
      cpu: 500m
      memory: 128Mi
    defaultRequest:
      cpu: 100m
    max:
      cpu: "1"
`,
    });
    const described = await ok(skiff, ['describe', 'limitrange', 'defaults', '-n', 'limited']);
    assert.match(described, /Container\s+cpu\s+-\s+1\s+100m\s+500m\s+-/);
    await ok(skiff, ['run', 'web', '--image=busybox', '-n', 'limited', '--', 'sleep', '3600']);
    const yaml = await ok(skiff, ['get', 'pod', 'web', '-n', 'limited', '-o', 'yaml']);
    assert.match(
      yaml,
      /kubernetes\.io\/limit-ranger: 'LimitRanger plugin set: cpu, memory request for container\s+web; cpu, memory limit for container web'/,
    );
    assert.match(
      yaml,
      /resources:\n\s+limits:\n\s+cpu: 500m\n\s+memory: 128Mi\n\s+requests:\n\s+cpu: 100m\n\s+memory: 128Mi\n/,
    );
    assert.match(yaml, /qosClass: Burstable/);
  });

  it('a container over the max is refused with upstream message', async () => {
    const r = await skiff.kubectl([
      'run',
      'big',
      '--image=busybox',
      '-n',
      'limited',
      '--overrides={"spec":{"containers":[{"name":"big","image":"busybox","resources":{"limits":{"cpu":"2"}}}]}}',
    ]);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /Error from server \(Forbidden\): pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2/,
    );
  });
});
