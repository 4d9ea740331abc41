// VolumeBinding (pkg/scheduler/framework/plugins/volumebinding): a pod's
// PersistentVolumeClaims decide where it may run.
//
//   - a claim that does not exist, or an unbound claim of an Immediate class,
//     keeps the pod unschedulable until the PV controller binds it;
//   - a bound claim's volume must fit the node (its nodeAffinity: a
//     local-path volume pins the pod to the node its data is on);
//   - an unbound claim of a WaitForFirstConsumer class fits a node where a
//     matching Available volume can be used, or any node if the class has a
//     provisioner; PreBind then writes volume.kubernetes.io/selected-node on
//     the claim, and the provisioner makes the volume on that node.
//
// Unlike upstream, PreBind does not wait for the claim to be bound: the
// kubelet holds the pod in ContainerCreating until it is.

import {
  ANN_SELECTED_NODE,
  claimClass,
  claimNotForPod,
  findMatchingVolume,
  isClaimForPod,
  isWaitForFirstConsumer,
  volumeClaimName,
  volumeFitsNode,
} from '../../api/pv-util.ts';
import type { PersistentVolume, PersistentVolumeClaim } from '../../api/types/core-v1.ts';
import type { Clientset } from '../../client/clientset.ts';
import type { InformerFactory } from '../../client/informer-factory.ts';
import {
  type CycleState,
  type EnqueueExtensions,
  type FilterPlugin,
  type PreBindPlugin,
  type PreFilterPlugin,
  SKIP,
  type Status,
  SUCCESS,
  unresolvable,
} from '../framework.ts';

export const ERR_VOLUME_NODE_CONFLICT = 'node(s) had volume node affinity conflict';
export const ERR_VOLUME_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind";
export const ERR_UNBOUND_IMMEDIATE = 'pod has unbound immediate PersistentVolumeClaims';

const STATE_KEY = 'PreFilterVolumeBinding';

interface PodVolumes {
  bound: PersistentVolume[];
  /** WaitForFirstConsumer claims not bound yet, with whether their class can provision. */
  delayed: { pvc: PersistentVolumeClaim; provisions: boolean }[];
}

export function volumeBinding(
  clients: Clientset,
  informers: InformerFactory,
): PreFilterPlugin & FilterPlugin & PreBindPlugin & EnqueueExtensions {
  const claims = informers.informer('persistentVolumeClaims');
  const volumes = informers.informer('persistentVolumes');
  const classes = informers.informer('storageClasses');
  return {
    name: 'VolumeBinding',
    events: () => [
      { event: { resource: 'PersistentVolumeClaim', actions: ['Add', 'Update'] } },
      { event: { resource: 'PersistentVolume', actions: ['Add', 'Update'] } },
      { event: { resource: 'StorageClass', actions: ['Add', 'Update'] } },
      { event: { resource: 'Node', actions: ['Add', 'UpdateNodeLabel'] } },
    ],
    preFilter(state, pod) {
      const used = (pod.spec?.volumes ?? []).flatMap((v) => {
        const name = volumeClaimName(pod, v);
        return name ? [{ name, ephemeral: !v.persistentVolumeClaim }] : [];
      });
      if (used.length === 0) return { status: SKIP };
      const ns = pod.metadata.namespace ?? '';
      const podVolumes: PodVolumes = { bound: [], delayed: [] };
      for (const { name, ephemeral } of used) {
        const pvc = claims.indexer.get(`${ns}/${name}`);
        if (!pvc) {
          // Normal just after a pod with a generic ephemeral volume is made.
          const why = ephemeral
            ? `waiting for ephemeral volume controller to create the persistentvolumeclaim "${name}"`
            : `persistentvolumeclaim "${name}" not found`;
          return { status: unresolvable(why) };
        }
        if (pvc.metadata.deletionTimestamp)
          return { status: unresolvable(`persistentvolumeclaim "${name}" is being deleted`) };
        if (ephemeral && !isClaimForPod(pod, pvc)) return { status: unresolvable(claimNotForPod(pod, pvc)) };
        const volumeName = pvc.spec?.volumeName;
        if (volumeName) {
          const pv = volumes.indexer.get(volumeName);
          if (!pv) return { status: unresolvable(`persistentvolume "${volumeName}" not found`) };
          podVolumes.bound.push(pv);
          continue;
        }
        const sc = classes.indexer.get(claimClass(pvc));
        if (!isWaitForFirstConsumer(sc)) return { status: unresolvable(ERR_UNBOUND_IMMEDIATE) };
        const provisioner = sc?.provisioner ?? '';
        podVolumes.delayed.push({
          pvc,
          provisions: provisioner !== '' && provisioner !== 'kubernetes.io/no-provisioner',
        });
      }
      state.write(STATE_KEY, podVolumes);
      return { status: SUCCESS };
    },
    filter(state: CycleState, _pod, node): Status {
      const pv = state.read<PodVolumes>(STATE_KEY);
      if (!pv) return SUCCESS;
      for (const v of pv.bound)
        if (!volumeFitsNode(v, node.node)) return unresolvable(ERR_VOLUME_NODE_CONFLICT);
      const excluded = new Set<string>();
      for (const { pvc, provisions } of pv.delayed) {
        const match = findMatchingVolume(pvc, volumes.indexer.list(), { node: node.node, excluded });
        if (match) excluded.add(match.metadata.name ?? '');
        else if (!provisions) return unresolvable(ERR_VOLUME_BIND_CONFLICT);
      }
      return SUCCESS;
    },
    async preBind(state, _pod, nodeName) {
      const pv = state.read<PodVolumes>(STATE_KEY);
      for (const { pvc } of pv?.delayed ?? []) {
        if (pvc.metadata.annotations?.[ANN_SELECTED_NODE] === nodeName) continue;
        await clients.persistentVolumeClaims.patch(pvc.metadata.namespace, pvc.metadata.name ?? '', 'merge', {
          metadata: { annotations: { [ANN_SELECTED_NODE]: nodeName } },
        });
      }
      return SUCCESS;
    },
  };
}
