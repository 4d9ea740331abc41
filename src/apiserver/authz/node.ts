// The Node authorizer (upstream's plugin/pkg/auth/authorizer/node): a
// kubelet (user system:node:<name> in group system:nodes) may read only the
// Secrets, ConfigMaps, PersistentVolumeClaims, PersistentVolumes and
// ServiceAccount tokens of pods bound to its node, its own Node and Lease,
// and pods by spec.nodeName. Everything else is the system:node role's rules,
// unrestricted. What it may write (its own Node, mirror pods, pods' status
// of its node) is narrowed further by NodeRestriction admission.
//
// NodeGraph keeps the "pod bound to node N uses object O" edges, updated from
// a pod (and PVC) informer, so a check is a map lookup.

import type { FieldRequirement } from '../../api/fields.ts';
import type { PersistentVolume, PersistentVolumeClaim, Pod, PodSpec } from '../../api/types/core-v1.ts';
import type { PolicyRule } from '../../api/types/rbac-v1.ts';
import type { UserInfo } from '../authn/user.ts';
import type { Attributes, Authorization, Authorizer } from './authorizer.ts';
import { ruleAllows } from './rbac.ts';
import type { RuleList, RuleResolver } from './reviews.ts';

export const NODES_GROUP = 'system:nodes';
const NODE_USER_PREFIX = 'system:node:';
const NODE_LEASE_NAMESPACE = 'kube-node-lease';

/** upstream's NodeIdentity: the node's name, '' for a node user without one, undefined for anyone else. */
export function nodeIdentity(user: UserInfo): string | undefined {
  if (!user.name.startsWith(NODE_USER_PREFIX) || !user.groups.includes(NODES_GROUP)) return undefined;
  return user.name.slice(NODE_USER_PREFIX.length);
}

export type VertexType = 'pod' | 'secret' | 'configmap' | 'pvc' | 'pv' | 'serviceaccount';

interface PodReferences {
  secrets: Set<string>;
  configmaps: Set<string>;
  pvcs: Set<string>;
}

/** The Secrets, ConfigMaps and PVCs a pod's spec names (upstream's VisitPodSecretNames and friends). */
export function podReferences(pod: Pod): PodReferences {
  const spec: PodSpec = pod.spec ?? { containers: [] };
  const refs: PodReferences = { secrets: new Set(), configmaps: new Set(), pvcs: new Set() };
  const add = (set: Set<string>, name: string | undefined) => {
    if (name) set.add(name);
  };
  for (const s of spec.imagePullSecrets ?? []) add(refs.secrets, s.name);
  const containers = [
    ...(spec.initContainers ?? []),
    ...(spec.containers ?? []),
    ...(spec.ephemeralContainers ?? []),
  ];
  for (const c of containers) {
    for (const e of c.env ?? []) {
      add(refs.secrets, e.valueFrom?.secretKeyRef?.name);
      add(refs.configmaps, e.valueFrom?.configMapKeyRef?.name);
    }
    for (const e of c.envFrom ?? []) {
      add(refs.secrets, e.secretRef?.name);
      add(refs.configmaps, e.configMapRef?.name);
    }
  }
  for (const v of spec.volumes ?? []) {
    add(refs.secrets, v.secret?.secretName);
    add(refs.configmaps, v.configMap?.name);
    for (const p of v.projected?.sources ?? []) {
      add(refs.secrets, p.secret?.name);
      add(refs.configmaps, p.configMap?.name);
    }
    add(refs.secrets, v.csi?.nodePublishSecretRef?.name);
    add(refs.secrets, v.azureFile?.secretName);
    for (const ref of [v.cephfs, v.cinder, v.flexVolume, v.iscsi, v.rbd, v.scaleIO, v.storageos])
      add(refs.secrets, (ref as { secretRef?: { name?: string } } | undefined)?.secretRef?.name);
    add(refs.pvcs, v.persistentVolumeClaim?.claimName);
    // A generic ephemeral volume's claim is named <pod>-<volume>.
    if (v.ephemeral) add(refs.pvcs, `${pod.metadata.name}-${v.name}`);
  }
  return refs;
}

const key = (type: VertexType, namespace: string, name: string) => `${type}/${namespace}/${name}`;

/** Which nodes each object is reachable from through the pods bound to them. */
export class NodeGraph {
  /** object key → node → how many pods there use it */
  readonly #edges = new Map<string, Map<string, number>>();
  /** pod uid-less key → the object keys and node it was recorded with */
  readonly #pods = new Map<string, { node: string; objects: string[] }>();
  /** pvc key → pv name */
  readonly #volumes = new Map<string, string>();
  /** Every PersistentVolume's name → the node its nodeAffinity pins it to ('' for none). */
  readonly #pvNodes = new Map<string, string>();

  #link(object: string, node: string, delta: 1 | -1) {
    let nodes = this.#edges.get(object);
    if (!nodes) {
      nodes = new Map();
      this.#edges.set(object, nodes);
    }
    const n = (nodes.get(node) ?? 0) + delta;
    if (n > 0) nodes.set(node, n);
    else nodes.delete(node);
    if (nodes.size === 0) this.#edges.delete(object);
  }

  /** Records (or re-records) a pod; unbound pods link nothing. */
  setPod(pod: Pod): void {
    this.deletePod(pod);
    const node = pod.spec?.nodeName;
    const ns = pod.metadata.namespace ?? '';
    if (!node) return;
    const refs = podReferences(pod);
    const objects = [
      key('pod', ns, pod.metadata.name ?? ''),
      ...[...refs.secrets].map((n) => key('secret', ns, n)),
      ...[...refs.configmaps].map((n) => key('configmap', ns, n)),
      ...[...refs.pvcs].map((n) => key('pvc', ns, n)),
      key('serviceaccount', ns, pod.spec?.serviceAccountName || 'default'),
    ];
    for (const o of objects) this.#link(o, node, 1);
    this.#pods.set(key('pod', ns, pod.metadata.name ?? ''), { node, objects });
  }

  deletePod(pod: Pod): void {
    const k = key('pod', pod.metadata.namespace ?? '', pod.metadata.name ?? '');
    const old = this.#pods.get(k);
    if (!old) return;
    for (const o of old.objects) this.#link(o, old.node, -1);
    this.#pods.delete(k);
  }

  /** Records which PersistentVolume a claim is bound to (pvc → pv edge). */
  setPVC(pvc: PersistentVolumeClaim): void {
    const k = key('pvc', pvc.metadata.namespace ?? '', pvc.metadata.name ?? '');
    const pv = pvc.spec?.volumeName;
    if (pv) this.#volumes.set(k, pv);
    else this.#volumes.delete(k);
  }

  deletePVC(pvc: PersistentVolumeClaim): void {
    this.#volumes.delete(key('pvc', pvc.metadata.namespace ?? '', pvc.metadata.name ?? ''));
  }

  /**
   * Records a PersistentVolume: one whose required nodeAffinity names a
   * single node by kubernetes.io/hostname (a local-path or local volume)
   * lives on that node's disk, so that node may read it.
   */
  setPV(pv: PersistentVolume): void {
    let node = '';
    const terms = pv.spec?.nodeAffinity?.required?.nodeSelectorTerms ?? [];
    const exprs = terms.length === 1 ? (terms[0]?.matchExpressions ?? []) : [];
    const host = exprs.find((e) => e.key === 'kubernetes.io/hostname' && e.operator === 'In');
    if (exprs.length === 1 && host?.values?.length === 1) node = host.values[0] ?? '';
    this.#pvNodes.set(pv.metadata.name ?? '', node);
  }

  deletePV(pv: PersistentVolume): void {
    this.#pvNodes.delete(pv.metadata.name ?? '');
  }

  /** Whether a PersistentVolume of this name exists, as far as the graph has seen. */
  hasPV(name: string): boolean {
    return this.#pvNodes.has(name);
  }

  /** Whether a pod bound to `node` uses the object (upstream's hasPathFrom). */
  hasPath(node: string, type: VertexType, namespace: string, name: string): boolean {
    if (type === 'pv') {
      if (this.#pvNodes.get(name) === node && node !== '') return true;
      for (const [pvc, pv] of this.#volumes) if (pv === name && this.#edges.get(pvc)?.has(node)) return true;
      return false;
    }
    return this.#edges.get(key(type, namespace, name))?.has(node) ?? false;
  }
}

const noOpinion = (reason: string): Authorization => ({ decision: 'noOpinion', reason });
const ALLOW: Authorization = { decision: 'allow', reason: '' };

export interface NodeAttributes extends Attributes {
  /** The request's field selector terms, for list and watch scoped to one node's pods. */
  fieldSelector?: readonly FieldRequirement[];
}

export class NodeAuthorizer implements Authorizer, RuleResolver {
  readonly #graph: NodeGraph;
  readonly #nodeRules: PolicyRule[];

  /** `nodeRules`: the system:node role's rules, for everything not subdivided here. */
  constructor(graph: NodeGraph, nodeRules: PolicyRule[]) {
    this.#graph = graph;
    this.#nodeRules = nodeRules;
  }

  /** A node's permissions depend on its pods: they cannot be listed (upstream says the same). */
  rulesFor(user: UserInfo): RuleList {
    const none = { resourceRules: [], nonResourceRules: [] };
    if (nodeIdentity(user) === undefined) return { ...none, incomplete: false, errors: [] };
    return { ...none, incomplete: true, errors: ['node authorizer does not support user rule resolution'] };
  }

  authorize(attrs: NodeAttributes): Authorization {
    const node = nodeIdentity(attrs.user);
    if (node === undefined) return noOpinion('');
    if (node === '') return noOpinion(`unknown node for user ${JSON.stringify(attrs.user.name)}`);
    if (attrs.isResourceRequest) {
      const r = this.#subdivided(node, attrs);
      if (r) return r;
    }
    return this.#nodeRules.some((rule) => ruleAllows(attrs, rule)) ? ALLOW : noOpinion('');
  }

  /** The resources whose access depends on the node; undefined for the rest. */
  #subdivided(node: string, attrs: NodeAttributes): Authorization | undefined {
    const group = attrs.apiGroup;
    const r = attrs.resource;
    if (group === '' && r === 'secrets') return this.#readNamespaced(node, 'secret', attrs);
    if (group === '' && r === 'configmaps') return this.#readNamespaced(node, 'configmap', attrs);
    if (group === '' && r === 'persistentvolumeclaims') {
      if (attrs.subresource === 'status') return this.#statusUpdate(node, 'pvc', attrs);
      return this.#get(node, 'pvc', attrs);
    }
    if (group === '' && r === 'persistentvolumes') {
      // Skiff's addition: a node may ask for a volume that does not exist (its
      // answer is a 404), so the node's local-path cleaner can tell a deleted
      // volume's directory from one still in use (kubelet/volumes/local-path-cleaner.ts).
      if (attrs.verb === 'get' && !attrs.subresource && attrs.name && !this.#graph.hasPV(attrs.name))
        return ALLOW;
      return this.#get(node, 'pv', attrs);
    }
    if (group === '' && r === 'serviceaccounts') return this.#createToken(node, attrs);
    if (group === 'coordination.k8s.io' && r === 'leases') return this.#lease(node, attrs);
    if (group === '' && r === 'nodes') return this.#node(node, attrs);
    if (group === '' && r === 'pods') return this.#pod(node, attrs);
    return undefined;
  }

  #related(node: string, type: VertexType, attrs: Attributes): Authorization {
    if (!attrs.name) return noOpinion('No Object name found');
    return this.#graph.hasPath(node, type, attrs.namespace, attrs.name)
      ? ALLOW
      : noOpinion(`no relationship found between node '${node}' and this object`);
  }

  #get(node: string, type: VertexType, attrs: Attributes): Authorization {
    if (attrs.verb !== 'get') return noOpinion('can only get individual resources of this type');
    if (attrs.subresource) return noOpinion('cannot get subresource');
    return this.#related(node, type, attrs);
  }

  #readNamespaced(node: string, type: VertexType, attrs: Attributes): Authorization {
    if (!['get', 'list', 'watch'].includes(attrs.verb))
      return noOpinion('can only read resources of this type');
    if (attrs.subresource) return noOpinion('cannot read subresource');
    if (!attrs.namespace) return noOpinion('can only read namespaced object of this type');
    return this.#related(node, type, attrs);
  }

  #statusUpdate(node: string, type: VertexType, attrs: Attributes): Authorization {
    if (attrs.verb !== 'update' && attrs.verb !== 'patch')
      return noOpinion('can only get/update/patch this type');
    return this.#related(node, type, attrs);
  }

  #createToken(node: string, attrs: Attributes): Authorization {
    if (attrs.verb !== 'create' || !attrs.name)
      return noOpinion('can only create tokens for individual service accounts');
    if (attrs.subresource !== 'token')
      return noOpinion('can only create token subresource of serviceaccount');
    return this.#related(node, 'serviceaccount', attrs);
  }

  #lease(node: string, attrs: Attributes): Authorization {
    if (!['get', 'create', 'update', 'patch', 'delete'].includes(attrs.verb))
      return noOpinion('can only get, create, update, patch, or delete a node lease');
    if (attrs.namespace !== NODE_LEASE_NAMESPACE)
      return noOpinion(`can only access leases in the "${NODE_LEASE_NAMESPACE}" system namespace`);
    // The name is unknown on create; NodeRestriction checks it there.
    if (attrs.verb !== 'create' && attrs.name !== node)
      return noOpinion('can only access node lease with the same name as the requesting node');
    return ALLOW;
  }

  #node(node: string, attrs: Attributes): Authorization {
    if (attrs.subresource === '') {
      // Writes: NodeRestriction limits a node to its own Node object.
      if (['create', 'update', 'patch'].includes(attrs.verb)) return ALLOW;
      if (['get', 'list', 'watch'].includes(attrs.verb)) {
        if (attrs.name === node) return ALLOW;
        return noOpinion(
          attrs.name === ''
            ? `node '${node}' cannot read all nodes, only its own Node object`
            : `node '${node}' cannot read '${attrs.name}', only its own Node object`,
        );
      }
    }
    if (attrs.subresource === 'status' && (attrs.verb === 'update' || attrs.verb === 'patch')) return ALLOW;
    return noOpinion('');
  }

  #pod(node: string, attrs: NodeAttributes): Authorization {
    const verb = attrs.verb;
    if (attrs.subresource === '') {
      if (verb === 'get') return this.#get(node, 'pod', attrs);
      if (verb === 'list' || verb === 'watch') {
        if (
          (attrs.fieldSelector ?? []).some(
            (r) => r.field === 'spec.nodeName' && r.op === '=' && r.value === node,
          )
        )
          return ALLOW;
        if (attrs.name) return this.#related(node, 'pod', attrs);
        return noOpinion('can only list/watch pods with spec.nodeName field selector');
      }
      // Mirror pods; NodeRestriction limits them to this node.
      if (verb === 'create' || verb === 'delete') return ALLOW;
    }
    if (attrs.subresource === 'status' && (verb === 'update' || verb === 'patch')) return ALLOW;
    if (attrs.subresource === 'eviction' && verb === 'create') return ALLOW;
    return noOpinion('');
  }
}
