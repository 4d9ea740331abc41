// NodeRestriction (upstream's plugin/pkg/admission/noderestriction): what
// the Node authorizer lets every kubelet do, narrowed to its own node.
// A node user (system:node:<name> in system:nodes) may
//   - create only mirror pods, bound to itself, using no ServiceAccount,
//     Secret, ConfigMap or claim, owned (if at all) by its own Node;
//   - update the status of, delete and evict only pods bound to itself;
//   - create and update only its own Node, without adding or changing
//     node-restriction.kubernetes.io/ labels, nor (on update) taints;
//   - write only its own Lease in kube-node-lease;
//   - ask only for ServiceAccount tokens bound to pods on itself.
// Everyone else passes untouched.

import { ApiError } from '../../api/errors.ts';
import type { Node, Pod } from '../../api/types/core-v1.ts';
import { nodeIdentity } from '../authz/node.ts';
import type { AdmissionAttributes, ValidatingPlugin } from './admission.ts';

const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';
const RESTRICTED_LABEL_PREFIX = 'node-restriction.kubernetes.io/';

export interface NodeRestrictionDeps {
  /** Reads a pod; undefined when it does not exist. */
  getPod(namespace: string, name: string): Promise<Pod | undefined>;
}

const forbidden = (attrs: AdmissionAttributes, why: string) => {
  const name = attrs.name || attrs.object?.metadata.name || '';
  const qualified = attrs.group ? `${attrs.resource}.${attrs.group}` : attrs.resource;
  return new ApiError(403, 'Forbidden', `${qualified} "${name}" is forbidden: ${why}`, {
    name,
    ...(attrs.group ? { group: attrs.group } : {}),
    kind: attrs.resource,
  });
};

const restrictedLabels = (labels: Record<string, string> | undefined) =>
  Object.keys(labels ?? {}).filter((k) => k.startsWith(RESTRICTED_LABEL_PREFIX));

export function nodeRestrictionPlugin(deps: NodeRestrictionDeps): ValidatingPlugin {
  const pod = async (attrs: AdmissionAttributes, node: string) => {
    const current = (attrs.oldObject as Pod | undefined) ?? (await deps.getPod(attrs.namespace, attrs.name));
    if (!current) return;
    if (current.spec?.nodeName !== node) {
      const what =
        attrs.subresource === 'status'
          ? 'update pod status'
          : attrs.subresource === 'eviction'
            ? 'evict pods'
            : 'delete pods';
      throw forbidden(attrs, `node "${node}" can only ${what} with spec.nodeName set to itself`);
    }
  };

  const mirrorPod = (attrs: AdmissionAttributes, node: string) => {
    const p = attrs.object as Pod;
    if (p.metadata.annotations?.[MIRROR_ANNOTATION] === undefined)
      throw forbidden(
        attrs,
        `pod does not have "${MIRROR_ANNOTATION}" annotation, node "${node}" can only create mirror pods`,
      );
    if (p.spec?.nodeName !== node)
      throw forbidden(attrs, `node "${node}" can only create pods with spec.nodeName set to itself`);
    const owners = p.metadata.ownerReferences ?? [];
    if (owners.length > 1 || (owners[0] && (owners[0].kind !== 'Node' || owners[0].name !== node)))
      throw forbidden(attrs, `node "${node}" can only create pods with an owner reference set to itself`);
    const spec = p.spec;
    const uses =
      spec.serviceAccountName ||
      (spec.volumes ?? []).some((v) => v.secret || v.configMap || v.persistentVolumeClaim || v.projected) ||
      [...(spec.containers ?? []), ...(spec.initContainers ?? [])].some(
        (c) =>
          (c.envFrom ?? []).some((e) => e.secretRef || e.configMapRef) ||
          (c.env ?? []).some((e) => e.valueFrom?.secretKeyRef || e.valueFrom?.configMapKeyRef),
      );
    if (uses)
      throw forbidden(
        attrs,
        `node "${node}" can not create pods that reference secrets, configmaps, service accounts or persistentvolumeclaims`,
      );
  };

  const nodeObject = (attrs: AdmissionAttributes, node: string) => {
    const name = attrs.object?.metadata.name || attrs.name;
    if (name !== node) throw forbidden(attrs, `node "${node}" is not allowed to modify node "${name}"`);
    const now = attrs.object as Node;
    const old = attrs.oldObject as Node | undefined;
    const changed = restrictedLabels(now.metadata.labels).filter(
      (k) => old?.metadata.labels?.[k] !== now.metadata.labels?.[k],
    );
    const removed = restrictedLabels(old?.metadata.labels).filter(
      (k) => now.metadata.labels?.[k] === undefined,
    );
    const labels = [...new Set([...changed, ...removed])].sort();
    if (labels.length > 0) throw forbidden(attrs, `is not allowed to modify labels: ${labels.join(', ')}`);
    if (
      old &&
      attrs.subresource === '' &&
      JSON.stringify(old.spec?.taints ?? []) !== JSON.stringify(now.spec?.taints ?? [])
    )
      throw forbidden(attrs, `node "${node}" is not allowed to modify taints`);
  };

  return {
    name: 'NodeRestriction',
    handles: (a) => nodeIdentity(a.user) !== undefined,
    async validate(attrs) {
      const node = nodeIdentity(attrs.user);
      if (!node) {
        if (node === '') throw forbidden(attrs, `could not determine node from user "${attrs.user.name}"`);
        return undefined;
      }
      const { group, resource, subresource, operation } = attrs;
      // pods/eviction comes with the Eviction kind's group (policy).
      if (resource === 'pods' && (group === '' || subresource === 'eviction')) {
        if (subresource === '' && operation === 'CREATE') mirrorPod(attrs, node);
        else if (subresource === '' && operation === 'DELETE') await pod(attrs, node);
        else if (subresource === 'status' && operation === 'UPDATE') await pod(attrs, node);
        else if (subresource === 'eviction' && operation === 'CREATE') await pod(attrs, node);
        else if (subresource === '' && operation === 'UPDATE')
          throw forbidden(attrs, `node "${node}" can only update pod status`);
      } else if (group === '' && resource === 'nodes' && (operation === 'CREATE' || operation === 'UPDATE')) {
        nodeObject(attrs, node);
      } else if (group === 'coordination.k8s.io' && resource === 'leases') {
        const name = attrs.object?.metadata.name || attrs.name;
        if (attrs.namespace !== 'kube-node-lease' || name !== node)
          throw forbidden(attrs, 'can only access node lease with the same name as the requesting node');
      } else if (resource === 'serviceaccounts' && subresource === 'token') {
        const ref = (attrs.object?.spec as { boundObjectRef?: { kind?: string; name?: string } } | undefined)
          ?.boundObjectRef;
        if (ref?.kind !== 'Pod') throw forbidden(attrs, 'node requested token not bound to a pod');
        const p = await deps.getPod(attrs.namespace, ref.name ?? '');
        if (!p || p.spec?.nodeName !== node)
          throw forbidden(attrs, 'node requested token bound to a pod scheduled on a different node');
      }
      return undefined;
    },
  };
}
