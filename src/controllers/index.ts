// Every controller `skiff server` runs, by name (upstream's controller names
// where there is one). The manager builds them in this order.

import { serviceLBController } from '../proxy/servicelb.ts';
import { clusterRoleAggregationController } from './clusterrole-aggregation.ts';
import type { ControllerFactory } from './context.ts';
import { cronJobController } from './cronjob.ts';
import { csrApprovingController } from './csr-approving.ts';
import { csrCleanerController } from './csr-cleaner.ts';
import { csrSigningController } from './csr-signing.ts';
import { daemonSetController } from './daemonset.ts';
import { deploymentController } from './deployment.ts';
import { disruptionController } from './disruption.ts';
import { endpointsController } from './endpoints.ts';
import { endpointSliceController } from './endpointslice.ts';
import { ephemeralVolumeController } from './ephemeral-volume.ts';
import { garbageCollectorController } from './garbagecollector.ts';
import { horizontalPodAutoscalerController } from './horizontal.ts';
import { jobController } from './job.ts';
import { localPathProvisionerController } from './local-path-provisioner.ts';
import { namespaceController } from './namespace.ts';
import { nodeIpamController } from './nodeipam.ts';
import { nodeLifecycleController, taintEvictionController } from './nodelifecycle.ts';
import { nodePasswordController } from './nodepassword.ts';
import { persistentVolumeBinderController } from './persistentvolume.ts';
import { podGCController } from './podgc.ts';
import { pvProtectionController } from './pv-protection.ts';
import { pvcProtectionController } from './pvc-protection.ts';
import { replicaSetController } from './replicaset.ts';
import { replicationControllerController } from './replicationcontroller.ts';
import { resourceQuotaController } from './resourcequota.ts';
import { rootCAPublisherController } from './root-ca-publisher.ts';
import { serviceAccountController } from './serviceaccount.ts';
import { serviceAccountTokenController } from './serviceaccount-token.ts';
import { statefulSetController } from './statefulset.ts';
import { ttlAfterFinishedController } from './ttlafterfinished.ts';

export const allControllers: Record<string, ControllerFactory> = {
  endpoint: endpointsController,
  endpointslice: endpointSliceController,
  // k3s's name: LoadBalancer Services get the nodes' addresses (src/proxy/servicelb.ts).
  servicelb: serviceLBController,
  serviceaccount: serviceAccountController,
  'root-ca-cert-publisher': rootCAPublisherController,
  'serviceaccount-token': serviceAccountTokenController,
  deployment: deploymentController,
  replicaset: replicaSetController,
  replicationcontroller: replicationControllerController,
  statefulset: statefulSetController,
  disruption: disruptionController,
  daemonset: daemonSetController,
  job: jobController,
  cronjob: cronJobController,
  horizontalpodautoscaling: horizontalPodAutoscalerController,
  'ttl-after-finished': ttlAfterFinishedController,
  nodeipam: nodeIpamController,
  nodelifecycle: nodeLifecycleController,
  'taint-eviction-controller': taintEvictionController,
  nodepassword: nodePasswordController,
  podgc: podGCController,
  'persistentvolume-binder': persistentVolumeBinderController,
  'pvc-protection': pvcProtectionController,
  'pv-protection': pvProtectionController,
  'ephemeral-volume': ephemeralVolumeController,
  // k3s's built-in default storage (src/controllers/local-path-provisioner.ts).
  'local-path-provisioner': localPathProvisionerController,
  resourcequota: resourceQuotaController,
  namespace: namespaceController,
  garbagecollector: garbageCollectorController,
  'clusterrole-aggregation': clusterRoleAggregationController,
  csrsigning: csrSigningController,
  csrapproving: csrApprovingController,
  csrcleaner: csrCleanerController,
};
