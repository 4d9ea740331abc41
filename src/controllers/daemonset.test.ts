import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rfc3339 } from '../api/meta.ts';
import type { DaemonSet, DaemonSetSpec } from '../api/types/apps-v1.ts';
import type { Pod, PodSpec, Taint } from '../api/types/core-v1.ts';
import { daemonSetController } from './daemonset.ts';
import { targetNodeName } from './daemonset-util.ts';
import { CONTROLLER_REVISION_HASH_LABEL_KEY } from './history.ts';
import { type ControllerTest, startControllerTest } from './testing.ts';

let t: ControllerTest;
before(async () => {
  t = await startControllerTest({ daemonset: daemonSetController });
});
after(() => t.close());

const NS = 'default';

// Every test has its own nodes, labelled with the test's name, and its
// DaemonSets select only those: the tests share one API server but not nodes.
async function makeNodes(
  group: string,
  names: string[],
  extra: { labels?: Record<string, string>; taints?: Taint[] } = {},
) {
  for (const name of names) {
    await t.clients.nodes.create(undefined, {
      metadata: { name, labels: { group, ...(extra.labels ?? {}) } },
      spec: { taints: extra.taints ?? [] },
      status: { conditions: [{ type: 'Ready', status: 'True' }] },
    });
  }
}

async function makeDaemonSet(
  name: string,
  group: string,
  opts: { pod?: PodSpec; spec?: Partial<DaemonSetSpec>; annotations?: Record<string, string> } = {},
): Promise<DaemonSet> {
  return t.clients.daemonSets.create(NS, {
    metadata: { name, ...(opts.annotations ? { annotations: opts.annotations } : {}) },
    spec: {
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          nodeSelector: { group },
          containers: [{ name: 'agent', image: 'agent:1' }],
          ...(opts.pod ?? {}),
        },
      },
      ...(opts.spec ?? {}),
    },
  });
}

/** The DaemonSet's live pods (not being deleted), by target node. */
async function podsByNode(name: string): Promise<Map<string, Pod[]>> {
  const list = await t.clients.pods.list(NS, { labelSelector: `app=${name}` });
  const m = new Map<string, Pod[]>();
  for (const p of list.items) {
    if (p.metadata.deletionTimestamp) continue;
    const node = targetNodeName(p) ?? '';
    m.set(node, [...(m.get(node) ?? []), p]);
  }
  return m;
}

const onNodes = async (name: string) => [...(await podsByNode(name)).keys()].sort();

const status = async (name: string) => (await t.clients.daemonSets.get(NS, name)).status ?? {};

/** Plays the kubelet: the pod runs and is Ready. */
const markReady = (pod: Pod) =>
  t.clients.pods.patch(
    NS,
    pod.metadata.name ?? '',
    'merge',
    {
      status: {
        phase: 'Running',
        conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: rfc3339(new Date()) }],
      },
    },
    { subresource: 'status' },
  );

async function markAllReady(name: string) {
  for (const pods of (await podsByNode(name)).values()) {
    for (const pod of pods) if (pod.status?.phase !== 'Running') await markReady(pod);
  }
}

const events = async (name: string, reason: string) =>
  (await t.clients.events.list(NS)).items.filter(
    (e) => e.involvedObject?.name === name && e.involvedObject.kind === 'DaemonSet' && e.reason === reason,
  );

const revisionsOf = async (name: string) =>
  (await t.clients.controllerRevisions.list(NS, { labelSelector: `app=${name}` })).items.sort(
    (a, b) => (a.revision ?? 0) - (b.revision ?? 0),
  );

const setImage = async (name: string, image: string) => {
  const ds = await t.clients.daemonSets.get(NS, name);
  await t.clients.daemonSets.patch(NS, name, 'strategic', {
    spec: { template: { spec: { containers: [{ name: 'agent', image }] } } },
    metadata: { resourceVersion: ds.metadata.resourceVersion },
  });
};

const imageOf = (pod: Pod) => pod.spec?.containers?.[0]?.image;

describe('daemonset controller: placement', () => {
  it('runs one pod on every node matching the nodeSelector, pinned by node affinity', async () => {
    await makeNodes('basic', ['basic-1', 'basic-2']);
    await makeNodes('other', ['basic-other']);
    await makeDaemonSet('basic', 'basic');
    await t.until(
      'a pod on each matching node',
      async () => (await onNodes('basic')).join() === 'basic-1,basic-2',
    );

    const pods = [...(await podsByNode('basic')).values()].flat();
    assert.equal(pods.length, 2);
    const [revision] = await revisionsOf('basic');
    assert.equal(revision?.revision, 1);
    const hash = revision?.metadata.labels?.[CONTROLLER_REVISION_HASH_LABEL_KEY];
    assert.ok(hash);
    for (const pod of pods) {
      // No scheduler binds it yet: the controller pins it with a field term.
      assert.equal(pod.spec?.nodeName, undefined);
      assert.deepEqual(pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution, {
        nodeSelectorTerms: [
          { matchFields: [{ key: 'metadata.name', operator: 'In', values: [targetNodeName(pod)] }] },
        ],
      });
      assert.equal(pod.metadata.labels?.[CONTROLLER_REVISION_HASH_LABEL_KEY], hash);
      assert.equal(pod.metadata.labels?.['pod-template-generation'], '1');
      assert.equal(pod.metadata.ownerReferences?.[0]?.kind, 'DaemonSet');
      assert.ok(pod.metadata.name?.startsWith('basic-'));
      const tolerations = pod.spec?.tolerations ?? [];
      for (const key of ['not-ready', 'unreachable']) {
        const tol = tolerations.find((x) => x.key === `node.kubernetes.io/${key}`);
        assert.deepEqual(tol, { key: `node.kubernetes.io/${key}`, operator: 'Exists', effect: 'NoExecute' });
      }
      for (const key of ['disk-pressure', 'memory-pressure', 'pid-pressure', 'unschedulable']) {
        assert.ok(
          tolerations.some((x) => x.key === `node.kubernetes.io/${key}` && x.effect === 'NoSchedule'),
        );
      }
    }

    const st = await t.until('status', async () => {
      const s = await status('basic');
      return s.observedGeneration === 1 && s.currentNumberScheduled === 2 ? s : undefined;
    });
    assert.deepEqual(
      {
        desired: st.desiredNumberScheduled,
        current: st.currentNumberScheduled,
        misscheduled: st.numberMisscheduled,
        ready: st.numberReady,
        available: st.numberAvailable ?? 0,
        unavailable: st.numberUnavailable,
        updated: st.updatedNumberScheduled,
      },
      { desired: 2, current: 2, misscheduled: 0, ready: 0, available: 0, unavailable: 2, updated: 2 },
    );
    await t.until(
      'SuccessfulCreate events',
      async () => (await events('basic', 'SuccessfulCreate')).length === 2,
    );

    // Ready pods count as ready and available.
    await markAllReady('basic');
    await t.until('ready and available', async () => {
      const s = await status('basic');
      return s.numberReady === 2 && s.numberAvailable === 2 && s.numberUnavailable === 0;
    });
  });

  it('counts a ready pod as available only after minReadySeconds', async () => {
    await makeNodes('minready', ['minready-1']);
    await makeDaemonSet('minready', 'minready', { spec: { minReadySeconds: 2 } });
    const pod = await t.until('a pod', async () => (await podsByNode('minready')).get('minready-1')?.[0]);
    await markReady(pod);
    await t.until('ready but not yet available', async () => {
      const s = await status('minready');
      return s.numberReady === 1 && (s.numberAvailable ?? 0) === 0 && s.numberUnavailable === 1;
    });
    // No event arrives when the time passes: the controller looks again by itself.
    await t.until('available', async () => (await status('minready')).numberAvailable === 1, 10_000);
  });

  it('counts a pod by spec.nodeName once the scheduler binds it', async () => {
    await makeNodes('bound', ['bound-1', 'bound-2']);
    await makeDaemonSet('bound', 'bound');
    await t.until('two pods', async () => (await onNodes('bound')).length === 2);
    // Play the scheduler: bind each pod to the node its affinity names.
    for (const [nodeName, [pod]] of await podsByNode('bound')) {
      await t.clients.transport.request({
        method: 'POST',
        path: t.clients.pods.path(NS, pod?.metadata.name, 'binding'),
        body: {
          apiVersion: 'v1',
          kind: 'Binding',
          metadata: { name: pod?.metadata.name },
          target: { kind: 'Node', name: nodeName },
        },
      });
    }
    await t.until('both bound', async () =>
      [...(await podsByNode('bound')).values()].flat().every((p) => p.spec?.nodeName),
    );
    await markAllReady('bound');
    await t.until('status', async () => {
      const s = await status('bound');
      return s.currentNumberScheduled === 2 && s.numberReady === 2 && s.desiredNumberScheduled === 2;
    });
    // Nothing was replaced or added.
    assert.equal([...(await podsByNode('bound')).values()].flat().length, 2);
    assert.equal((await events('bound', 'SuccessfulCreate')).length, 2);
  });

  it('follows node labels: a node that starts matching gets a pod, one that stops loses it', async () => {
    await makeNodes('labels', ['labels-1', 'labels-2']);
    await makeDaemonSet('labels', 'labels');
    await t.until('two pods', async () => (await onNodes('labels')).join() === 'labels-1,labels-2');

    await t.clients.nodes.create(undefined, { metadata: { name: 'labels-3' } });
    await t.clients.nodes.patch(undefined, 'labels-3', 'merge', {
      metadata: { labels: { group: 'labels' } },
    });
    await t.until(
      'a pod on the new node',
      async () => (await onNodes('labels')).join() === 'labels-1,labels-2,labels-3',
    );

    await t.clients.nodes.patch(undefined, 'labels-1', 'merge', { metadata: { labels: { group: null } } });
    await t.until(
      'the pod leaves labels-1',
      async () => (await onNodes('labels')).join() === 'labels-2,labels-3',
    );
    await t.until(
      'SuccessfulDelete event',
      async () => (await events('labels', 'SuccessfulDelete')).length === 1,
    );
    await t.until('status', async () => {
      const s = await status('labels');
      return s.desiredNumberScheduled === 2 && s.currentNumberScheduled === 2 && s.numberMisscheduled === 0;
    });

    // A deleted node's (unbound, pinned) pod goes too.
    await t.clients.nodes.delete(undefined, 'labels-3');
    await t.until(
      'the pod of the deleted node goes',
      async () => (await onNodes('labels')).join() === 'labels-2',
    );
  });

  it('honours required node affinity', async () => {
    await makeNodes('affinity', ['affinity-a'], { labels: { zone: 'a' } });
    await makeNodes('affinity', ['affinity-b'], { labels: { zone: 'b' } });
    await makeDaemonSet('affinity', 'affinity', {
      pod: {
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['b'] }] }],
            },
          },
        },
      },
    });
    await t.until(
      'a pod on the zone b node only',
      async () => (await onNodes('affinity')).join() === 'affinity-b',
    );
    const s = await t.until('status', async () => {
      const s = await status('affinity');
      return s.currentNumberScheduled === 1 ? s : undefined;
    });
    assert.equal(s.desiredNumberScheduled, 1);
  });

  it('keeps off untolerated taints; NoExecute evicts, NoSchedule only counts as misscheduled', async () => {
    await makeNodes('taints', ['taints-plain', 'taints-noexec', 'taints-nosched']);
    await makeNodes('taints', ['taints-blocked'], {
      taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }],
    });
    await makeNodes('taints', ['taints-notready'], {
      taints: [{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' }],
    });
    await makeNodes('taints', ['taints-gpu'], {
      taints: [{ key: 'gpu', value: 'true', effect: 'NoExecute' }],
    });
    await makeDaemonSet('taints', 'taints', { pod: { tolerations: [{ key: 'gpu', operator: 'Exists' }] } });
    const all = 'taints-gpu,taints-noexec,taints-nosched,taints-notready,taints-plain';
    await t.until(
      'pods everywhere but the blocked node',
      async () => (await onNodes('taints')).join() === all,
    );

    await t.clients.nodes.patch(undefined, 'taints-noexec', 'merge', {
      spec: { taints: [{ key: 'maintenance', value: 'now', effect: 'NoExecute' }] },
    });
    await t.clients.nodes.patch(undefined, 'taints-nosched', 'merge', {
      spec: { taints: [{ key: 'maintenance', value: 'soon', effect: 'NoSchedule' }] },
    });
    await t.until(
      'the NoExecute node loses its pod; the NoSchedule one keeps it',
      async () =>
        (await onNodes('taints')).join() === 'taints-gpu,taints-nosched,taints-notready,taints-plain',
    );
    await t.until('status', async () => {
      const s = await status('taints');
      return s.desiredNumberScheduled === 3 && s.currentNumberScheduled === 3 && s.numberMisscheduled === 1;
    });
  });

  it('adopts a matching orphan pod instead of creating a second one', async () => {
    await makeNodes('adopt', ['adopt-1']);
    const orphan = await t.clients.pods.create(NS, {
      metadata: { name: 'adopt-orphan', labels: { app: 'adopt' } },
      spec: {
        containers: [{ name: 'agent', image: 'agent:1' }],
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['adopt-1'] }] },
              ],
            },
          },
        },
      },
    });
    const ds = await makeDaemonSet('adopt', 'adopt', { spec: { updateStrategy: { type: 'OnDelete' } } });
    await t.until('adoption', async () => {
      const p = await t.clients.pods.get(NS, 'adopt-orphan');
      return p.metadata.ownerReferences?.[0]?.uid === ds.metadata.uid;
    });
    await t.until('status', async () => (await status('adopt')).currentNumberScheduled === 1);
    const pods = [...(await podsByNode('adopt')).values()].flat();
    assert.deepEqual(
      pods.map((p) => p.metadata.uid),
      [orphan.metadata.uid],
    );
  });

  it('deletes failed daemon pods and creates replacements, with backoff', async () => {
    await makeNodes('failed', ['failed-1']);
    await makeDaemonSet('failed', 'failed');
    const first = await t.until('a pod', async () => (await podsByNode('failed')).get('failed-1')?.[0]);
    await t.clients.pods.patch(
      NS,
      first.metadata.name ?? '',
      'merge',
      { status: { phase: 'Failed' } },
      { subresource: 'status' },
    );
    const second = await t.until('a replacement', async () => {
      const p = (await podsByNode('failed')).get('failed-1')?.[0];
      return p && p.metadata.uid !== first.metadata.uid ? p : undefined;
    });
    const [event] = await events('failed', 'FailedDaemonPod');
    assert.equal(event?.type, 'Warning');
    assert.match(
      event?.message ?? '',
      /Found failed daemon pod default\/failed-.* on node failed-1, will try to kill it/,
    );

    // The replacement fails at once too: it is replaced after the backoff (1 s), not in a hot loop.
    await t.clients.pods.patch(
      NS,
      second.metadata.name ?? '',
      'merge',
      { status: { phase: 'Failed' } },
      { subresource: 'status' },
    );
    const third = await t.until('a second replacement', async () => {
      const p = (await podsByNode('failed')).get('failed-1')?.[0];
      return p && p.metadata.uid !== second.metadata.uid && p.status?.phase !== 'Failed' ? p : undefined;
    });
    assert.ok(third);
  });
});

describe('daemonset controller: updates and history', () => {
  it('RollingUpdate replaces pods within maxUnavailable, recording revisions', async () => {
    await makeNodes('rolling', ['rolling-1', 'rolling-2', 'rolling-3']);
    await makeDaemonSet('rolling', 'rolling', {
      spec: { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } } },
    });
    await t.until('three pods', async () => (await onNodes('rolling')).length === 3);
    await markAllReady('rolling');
    await t.until('all available', async () => (await status('rolling')).numberAvailable === 3);

    await setImage('rolling', 'agent:2');
    // Only one old pod is taken down while the replacement is not available.
    await t.until('one pod replaced', async () => {
      const pods = [...(await podsByNode('rolling')).values()].flat();
      return pods.filter((p) => imageOf(p) === 'agent:2').length === 1;
    });
    const during = [...(await podsByNode('rolling')).values()].flat();
    assert.equal(during.filter((p) => imageOf(p) === 'agent:1').length, 2);

    // Playing the kubelet, make each new pod ready until the rollout is done.
    let fewestAvailable = 3;
    await t.until(
      'every pod updated',
      async () => {
        const byNode = await podsByNode('rolling');
        const pods = [...byNode.values()].flat();
        const old = pods.filter((p) => imageOf(p) === 'agent:1');
        // Never more than maxUnavailable (1) of the three nodes without an available pod.
        const nodesAvailable = [...byNode.values()].filter((ps) =>
          ps.some((p) => p.status?.phase === 'Running'),
        );
        fewestAvailable = Math.min(fewestAvailable, nodesAvailable.length);
        for (const p of pods) if (p.status?.phase !== 'Running') await markReady(p);
        return old.length === 0 && pods.length === 3;
      },
      20_000,
    );
    assert.ok(fewestAvailable >= 2, `${3 - fewestAvailable} nodes were unavailable at once`);
    await markAllReady('rolling');
    const s = await t.until('status', async () => {
      const s = await status('rolling');
      return s.updatedNumberScheduled === 3 && s.numberAvailable === 3 && s.observedGeneration === 2
        ? s
        : undefined;
    });
    assert.equal(s.desiredNumberScheduled, 3);

    const revisions = await revisionsOf('rolling');
    assert.deepEqual(
      revisions.map((r) => r.revision),
      [1, 2],
    );
    const newHash = revisions[1]?.metadata.labels?.[CONTROLLER_REVISION_HASH_LABEL_KEY];
    for (const pod of [...(await podsByNode('rolling')).values()].flat()) {
      assert.equal(pod.metadata.labels?.[CONTROLLER_REVISION_HASH_LABEL_KEY], newHash);
      assert.equal(pod.metadata.labels?.['pod-template-generation'], '2');
    }
    // The revision's data is the patch kubectl rollout undo applies.
    const data = revisions[1]?.data as { spec: { template: { $patch: string; spec: PodSpec } } };
    assert.equal(data.spec.template.$patch, 'replace');
    assert.equal(data.spec.template.spec.containers?.[0]?.image, 'agent:2');
  });

  it('RollingUpdate with maxSurge starts the new pod beside the old one, which goes once it is available', async () => {
    await makeNodes('surge', ['surge-1', 'surge-2']);
    await makeDaemonSet('surge', 'surge', {
      spec: { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } } },
    });
    await t.until('two pods', async () => (await onNodes('surge')).length === 2);
    await markAllReady('surge');
    await t.until('all available', async () => (await status('surge')).numberAvailable === 2);

    await setImage('surge', 'agent:2');
    const [surgedNode, pods] = await t.until('a node with two pods', async () =>
      [...(await podsByNode('surge')).entries()].find(([, pods]) => pods.length === 2),
    );
    // Only one node surges at a time, and the old pod stays while the new one is not ready.
    assert.equal([...(await podsByNode('surge')).values()].filter((p) => p.length === 2).length, 1);
    const fresh = pods.find((p) => imageOf(p) === 'agent:2')!;
    assert.ok(pods.some((p) => imageOf(p) === 'agent:1'));
    await markReady(fresh);
    await t.until('the old pod on the surged node goes', async () => {
      const now = (await podsByNode('surge')).get(surgedNode) ?? [];
      return now.length === 1 && imageOf(now[0]!) === 'agent:2';
    });
    await t.until(
      'the rollout finishes',
      async () => {
        const all = [...(await podsByNode('surge')).values()].flat();
        for (const p of all) if (p.status?.phase !== 'Running') await markReady(p);
        return all.length === 2 && all.every((p) => imageOf(p) === 'agent:2');
      },
      20_000,
    );
  });

  it('OnDelete replaces a pod only when the user deletes it', async () => {
    await makeNodes('ondelete', ['ondelete-1', 'ondelete-2']);
    await makeDaemonSet('ondelete', 'ondelete', { spec: { updateStrategy: { type: 'OnDelete' } } });
    await t.until('two pods', async () => (await onNodes('ondelete')).length === 2);
    await setImage('ondelete', 'agent:2');
    await t.until('new revision observed', async () => {
      const s = await status('ondelete');
      return s.observedGeneration === 2 && s.updatedNumberScheduled === 0;
    });
    // No pod replaced by the controller.
    assert.ok([...(await podsByNode('ondelete')).values()].flat().every((p) => imageOf(p) === 'agent:1'));

    const victim = (await podsByNode('ondelete')).get('ondelete-1')![0]!;
    await t.clients.pods.delete(NS, victim.metadata.name ?? '');
    await t.until('the replacement runs the new template', async () => {
      const p = (await podsByNode('ondelete')).get('ondelete-1')?.[0];
      return p && imageOf(p) === 'agent:2';
    });
    await t.until('status', async () => (await status('ondelete')).updatedNumberScheduled === 1);
    assert.equal(imageOf((await podsByNode('ondelete')).get('ondelete-2')![0]!), 'agent:1');
  });

  it('keeps revisionHistoryLimit old revisions and renumbers a revision rolled back to', async () => {
    // No matching node: no pods, so no revision is kept alive by a pod.
    await makeDaemonSet('history', 'history-none', {
      spec: { revisionHistoryLimit: 1 },
      annotations: { 'kubernetes.io/change-cause': 'first' },
    });
    await t.until('revision 1', async () => (await revisionsOf('history')).length === 1);
    for (const image of ['agent:2', 'agent:3']) {
      await setImage('history', image);
      await t.until(`a revision for ${image}`, async () =>
        (await revisionsOf('history')).some(
          (r) =>
            (r.data as { spec: { template: { spec: PodSpec } } }).spec.template.spec.containers?.[0]
              ?.image === image,
        ),
      );
    }
    const revs = await t.until('one old revision left', async () => {
      const r = await revisionsOf('history');
      return r.length === 2 ? r : undefined;
    });
    assert.deepEqual(
      revs.map((r) => r.revision),
      [2, 3],
    );
    assert.equal(revs[0]?.metadata.annotations?.['kubernetes.io/change-cause'], 'first');

    // Back to agent:2: its revision becomes the newest (4) rather than a new one.
    const agent2 = revs[0]!;
    await setImage('history', 'agent:2');
    await t.until('revision renumbered', async () => {
      const r = await revisionsOf('history');
      return r.length === 2 && r[1]?.metadata.uid === agent2.metadata.uid && r[1]?.revision === 4;
    });
  });
});
