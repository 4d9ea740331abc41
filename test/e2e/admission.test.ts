// The admission chain with the real kubectl: PodSecurity's namespace labels
// (refusals and Warning headers as kubectl prints them), LimitRange
// defaults and bounds, ResourceQuota refusals with the quota controller's
// used/hard in `kubectl describe quota`, and DefaultStorageClass.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, ok, type Skiff, startSkiff } from './harness.ts';

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

describe('ResourceQuota with kubectl', () => {
  it('refuses the pod over quota with upstream message; describe quota shows used and hard', async () => {
    await ok(skiff, ['create', 'namespace', 'quoted']);
    await ok(skiff, [
      'create',
      'quota',
      'small',
      '-n',
      'quoted',
      '--hard=pods=2,requests.cpu=1,count/configmaps=10',
    ]);
    // The controller fills in status before the quota limits anything.
    await eventually('quota status', async () => {
      const q = JSON.parse(await ok(skiff, ['get', 'quota', 'small', '-n', 'quoted', '-o', 'json']));
      return q.status?.used?.pods === '0';
    });
    await ok(skiff, ['create', 'configmap', 'settings', '-n', 'quoted', '--from-literal=a=1']);
    const bare = await skiff.kubectl(['run', 'bare', '--image=busybox', '-n', 'quoted']);
    assert.notEqual(bare.code, 0);
    assert.match(
      bare.stderr,
      /Error from server \(Forbidden\): pods "bare" is forbidden: failed quota: small: must specify requests\.cpu for: bare/,
    );
    for (const name of ['one', 'two']) {
      await ok(skiff, [
        'run',
        name,
        '--image=busybox',
        '-n',
        'quoted',
        '--overrides={"spec":{"containers":[{"name":"c","image":"busybox","resources":{"requests":{"cpu":"300m"}}}]}}',
      ]);
    }
    const three = await skiff.kubectl([
      'run',
      'three',
      '--image=busybox',
      '-n',
      'quoted',
      '--overrides={"spec":{"containers":[{"name":"c","image":"busybox","resources":{"requests":{"cpu":"300m"}}}]}}',
    ]);
    assert.notEqual(three.code, 0);
    assert.match(
      three.stderr,
      /Error from server \(Forbidden\): pods "three" is forbidden: exceeded quota: small, requested: pods=1, used: pods=2, limited: pods=2/,
    );
    const described = await eventually('describe quota used', async () => {
      const out = await ok(skiff, ['describe', 'quota', 'small', '-n', 'quoted']);
      return /pods\s+2\s+2\n/.test(out) ? out : undefined;
    });
    assert.match(described, /Resource\s+Used\s+Hard\n/);
    // The test's ConfigMap and kube-root-ca.crt, which the root CA publisher puts in every namespace.
    assert.match(described, /count\/configmaps\s+2\s+10\n/);
    assert.match(described, /requests\.cpu\s+600m\s+1\n/);
    // Deleting a pod gives its share back.
    await ok(skiff, ['delete', 'pod', 'one', '-n', 'quoted', '--wait=false']);
    await eventually('usage after delete', async () => {
      const out = await ok(skiff, ['describe', 'quota', 'small', '-n', 'quoted']);
      return /pods\s+1\s+2\n/.test(out) && /requests\.cpu\s+300m\s+1\n/.test(out);
    });
    const get = await ok(skiff, ['get', 'quota', '-n', 'quoted']);
    assert.match(get, /small\s+\S+\s+count\/configmaps: 2\/10, pods: 1\/2, requests\.cpu: 300m\/1/);
  });
  it('a Deployment stops at the quota; its ReplicaSet reports the refusal as upstream', async () => {
    await ok(skiff, ['create', 'namespace', 'capped']);
    await ok(skiff, ['create', 'quota', 'pods', '-n', 'capped', '--hard=pods=2']);
    await eventually('quota status', async () => {
      const q = JSON.parse(await ok(skiff, ['get', 'quota', 'pods', '-n', 'capped', '-o', 'json']));
      return q.status?.used?.pods === '0';
    });
    await ok(skiff, ['create', 'deployment', 'web', '--image=busybox', '--replicas=3', '-n', 'capped']);
    const rs = await eventually('the refusal on the ReplicaSet', async () => {
      const out = await ok(skiff, ['describe', 'rs', '-n', 'capped']);
      return /ReplicaFailure\s+True\s+FailedCreate/.test(out) ? out : undefined;
    });
    assert.match(
      rs,
      /Warning\s+FailedCreate\s+.*Error creating: pods "web-[a-z0-9]+-[a-z0-9]{5}" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=2, limited: pods=2/,
    );
    const pods = await ok(skiff, ['get', 'pods', '-n', 'capped', '-o', 'name']);
    assert.equal(pods.trim().split('\n').length, 2);
  });
});

describe('DefaultStorageClass with kubectl', () => {
  const claim = (name: string, storageClassName?: string) => `apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: ${name}
spec:
${storageClassName === undefined ? '' : `  storageClassName: "${storageClassName}"\n`}  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
`;

  it('a claim without a class gets the default one; storageClassName "" stays ""', async () => {
    await ok(skiff, ['apply', '-f', '-'], {
      input: `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: example.com/none
`,
    });
    await ok(skiff, ['apply', '-n', 'default', '-f', '-'], { input: claim('data') });
    await ok(skiff, ['apply', '-n', 'default', '-f', '-'], { input: claim('classless', '') });
    const data = JSON.parse(await ok(skiff, ['get', 'pvc', 'data', '-n', 'default', '-o', 'json']));
    assert.equal(data.spec.storageClassName, 'standard');
    const classless = JSON.parse(await ok(skiff, ['get', 'pvc', 'classless', '-n', 'default', '-o', 'json']));
    assert.equal(classless.spec.storageClassName, '');
    const table = await ok(skiff, ['get', 'pvc', '-n', 'default']);
    assert.match(table, /^data\s+Pending\s+standard\s/m);
  });
});

describe('skiff server --disable-admission-plugins', () => {
  it('turns a default-on plugin off', async () => {
    const other = await startSkiff(['--disable-admission-plugins', 'PodSecurity']);
    try {
      await ok(other, ['create', 'namespace', 'locked']);
      await ok(other, ['label', 'namespace', 'locked', 'pod-security.kubernetes.io/enforce=restricted']);
      const r = await other.kubectl(['apply', '-n', 'locked', '-f', '-'], { input: privilegedPod('root') });
      assert.equal(r.code, 0, r.stderr);
    } finally {
      await other.stop();
    }
  });
});
