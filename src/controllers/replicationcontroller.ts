// The ReplicationController controller (upstream's replication-controller,
// pkg/controller/replication): ReplicaSet's predecessor, driven by the very
// same code as upstream's is an adapter around the ReplicaSet controller.
// Only the owner differs: core/v1, and a selector that is a plain label map
// (defaulted by the API server to the template's labels).

import { nothing, selectorFromSet } from '../api/labels.ts';
import type { ReplicationController } from '../api/types/core-v1.ts';
import type { ControllerFactory } from './context.ts';
import { type ReplicaSetKind, replicaSetLikeController } from './replicaset.ts';

export const replicationControllerKind: ReplicaSetKind<ReplicationController> = {
  name: 'replicationcontroller',
  component: 'replication-controller',
  resource: 'replicationControllers',
  apiVersion: 'v1',
  kind: 'ReplicationController',
  // As upstream's conversion to a LabelSelector: no selector selects nothing,
  // an empty map everything (validation refuses both).
  selectorOf: (rc) => (rc.spec?.selector ? selectorFromSet(rc.spec.selector) : nothing()),
};

export const replicationControllerController: ControllerFactory = (ctx) =>
  replicaSetLikeController(ctx, replicationControllerKind);
