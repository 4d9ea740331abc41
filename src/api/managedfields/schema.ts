// The types server-side apply walks objects with, derived from Skiff's type
// model (src/api/schema) and strategic-merge-patch metadata (src/api/patch),
// corrected where upstream's schema says otherwise.
//
// Upstream builds its schema from the OpenAPI extensions x-kubernetes-list-type,
// -list-map-keys, -map-type and the structType/mapType markers of k8s.io/api.
// Without those, the rules are (kube-openapi's schemaconv does the same for
// lists that only carry patch metadata):
// - a message is a struct whose fields are each tracked ("granular");
// - a map field is granular: every key is its own field;
// - a repeated message with a patch merge key is an associative list keyed by
//   it; a repeated scalar with patch strategy "merge" is a set; any other list
//   is atomic (replaced and owned as a whole);
// - the special messages (Time, Quantity, IntOrString, RawExtension...) are
//   leaves.
// The tables below carry the upstream facts those rules miss: atomic structs
// and maps, lists whose keys differ from the merge key, lists whose type
// differs from their patch strategy, key field defaults, and which struct
// fields Go always serializes (non-pointer structs).

import type { PatchSchema } from '../patch/index.ts';
import { type ModelField, SPECIAL_MESSAGES, type TypeModel } from '../schema/index.ts';

export type ListRelationship = 'atomic' | 'set' | 'map';

export type TypeRef =
  /** A leaf: scalars, special messages, and values of unexpected shape. */
  | { readonly kind: 'scalar' }
  /**
   * No schema: objects are maps with every key its own field, lists and
   * scalars are leaves (upstream's "deduced" type). `root` marks the top of a
   * schemaless object, whose metadata is still ObjectMeta.
   */
  | { readonly kind: 'untyped'; readonly root?: boolean }
  /** A message. `path` is its field path for patch-metadata look-ups (list items transparent). */
  | {
      readonly kind: 'struct';
      readonly message: string;
      readonly atomic: boolean;
      readonly path: readonly string[];
      readonly root?: boolean;
    }
  | {
      readonly kind: 'map';
      readonly atomic: boolean;
      readonly value: { type: string; message?: string };
      readonly path: readonly string[];
    }
  | {
      readonly kind: 'list';
      readonly relationship: ListRelationship;
      readonly keys: readonly string[];
      readonly item: { type: string; message?: string };
      readonly path: readonly string[];
    };

export type StructType = Extract<TypeRef, { kind: 'struct' }>;
export type MapType = Extract<TypeRef, { kind: 'map' }>;
export type ListType = Extract<TypeRef, { kind: 'list' }>;

const core = (name: string): string => `k8s.io.api.core.v1.${name}`;
const meta = (name: string): string => `k8s.io.apimachinery.pkg.apis.meta.v1.${name}`;
const OBJECT_META = meta('ObjectMeta');

/** Messages upstream marks +structType=atomic: set and owned as a whole. */
const ATOMIC_STRUCTS = new Set([
  meta('LabelSelector'),
  meta('OwnerReference'),
  core('LocalObjectReference'),
  core('TypedLocalObjectReference'),
  core('ObjectReference'),
  core('ObjectFieldSelector'),
  core('ResourceFieldSelector'),
  core('ConfigMapKeySelector'),
  core('SecretKeySelector'),
  core('FileKeySelector'),
  core('SecretReference'),
  core('NodeSelector'),
  core('NodeSelectorTerm'),
  core('TopologySelectorTerm'),
  core('EndpointAddress'),
  core('EndpointPort'),
  'k8s.io.api.discovery.v1.EndpointPort',
  'k8s.io.api.rbac.v1.RoleRef',
  'k8s.io.api.rbac.v1.Subject',
  'k8s.io.api.networking.v1.ServiceBackendPort',
  'k8s.io.api.autoscaling.v1.CrossVersionObjectReference',
  'k8s.io.api.admissionregistration.v1.MatchResources',
  'k8s.io.api.admissionregistration.v1.NamedRuleWithOperations',
  'k8s.io.api.admissionregistration.v1.ParamKind',
  'k8s.io.api.admissionregistration.v1.ParamRef',
  'k8s.io.api.admissionregistration.v1.Variable',
]);

/** Field-level overrides keyed "message.field". */
type FieldOverride = { atomic: boolean } | { list: ListRelationship; keys?: readonly string[] };

const FIELD_OVERRIDES: Record<string, FieldOverride> = {
  // +mapType=atomic maps.
  [`${core('PodSpec')}.nodeSelector`]: { atomic: true },
  [`${core('ServiceSpec')}.selector`]: { atomic: true },
  [`${core('ReplicationControllerSpec')}.selector`]: { atomic: true },
  'k8s.io.api.node.v1.Scheduling.nodeSelector': { atomic: true },
  // A PersistentVolume's claimRef is granular although ObjectReference is atomic.
  [`${core('PersistentVolumeSpec')}.claimRef`]: { atomic: false },
  // list-map-keys that differ from the patch merge key.
  [`${core('Container')}.ports`]: { list: 'map', keys: ['containerPort', 'protocol'] },
  [`${core('EphemeralContainer')}.ports`]: { list: 'map', keys: ['containerPort', 'protocol'] },
  [`${core('ServiceSpec')}.ports`]: { list: 'map', keys: ['port', 'protocol'] },
  [`${core('PodSpec')}.topologySpreadConstraints`]: {
    list: 'map',
    keys: ['topologyKey', 'whenUnsatisfiable'],
  },
  // Lists whose list type has no patch metadata to infer it from.
  [`${core('ResourceRequirements')}.claims`]: { list: 'map', keys: ['name'] },
  [`${core('ContainerStatus')}.allocatedResourcesStatus`]: { list: 'map', keys: ['name'] },
  [`${core('ContainerStatus')}.volumeMounts`]: { list: 'map', keys: ['mountPath'] },
  [`${core('ResourceStatus')}.resources`]: { list: 'map', keys: ['resourceID'] },
  [`${core('PodStatus')}.volumeHealth`]: { list: 'map', keys: ['name'] },
  [`${core('PodVolumeHealth')}.healthConditions`]: { list: 'map', keys: ['status', 'reason'] },
  [`${core('VolumeHealthStatus')}.healthConditions`]: { list: 'map', keys: ['status', 'reason'] },
  [`${core('ComponentStatus')}.conditions`]: { list: 'map', keys: ['type'] },
  [`${core('ContainerRestartRuleOnExitCodes')}.values`]: { list: 'set' },
  [`${core('NodeAllocatableResourceClaimStatus')}.containers`]: { list: 'set' },
  [`${core('NodePodPreemptionPolicy')}.disableResizePreemption`]: { list: 'set' },
  'k8s.io.api.discovery.v1.Endpoint.addresses': { list: 'set' },
  'k8s.io.api.batch.v1.UncountedTerminatedPods.failed': { list: 'set' },
  'k8s.io.api.batch.v1.UncountedTerminatedPods.succeeded': { list: 'set' },
  'k8s.io.api.batch.v1.PodFailurePolicyOnExitCodesRequirement.values': { list: 'set' },
  'k8s.io.api.storage.v1.CSINodeSpec.drivers': { list: 'map', keys: ['name'] },
  'k8s.io.api.admissionregistration.v1.ValidatingWebhookConfiguration.webhooks': {
    list: 'map',
    keys: ['name'],
  },
  'k8s.io.api.admissionregistration.v1.MutatingWebhookConfiguration.webhooks': {
    list: 'map',
    keys: ['name'],
  },
  'k8s.io.api.admissionregistration.v1.ValidatingWebhook.matchConditions': { list: 'map', keys: ['name'] },
  'k8s.io.api.admissionregistration.v1.MutatingWebhook.matchConditions': { list: 'map', keys: ['name'] },
  'k8s.io.api.admissionregistration.v1.ValidatingAdmissionPolicySpec.matchConditions': {
    list: 'map',
    keys: ['name'],
  },
  'k8s.io.api.admissionregistration.v1.ValidatingAdmissionPolicySpec.variables': {
    list: 'map',
    keys: ['name'],
  },
  'k8s.io.api.admissionregistration.v1.ValidatingAdmissionPolicyBindingSpec.validationActions': {
    list: 'set',
  },
  // Lists the patch schema merges but upstream's list type makes atomic.
  [`${core('PodStatus')}.hostIPs`]: { list: 'atomic' },
  'k8s.io.api.batch.v1.JobStatus.conditions': { list: 'atomic' },
  [`${core('ServiceAccount')}.imagePullSecrets`]: { list: 'atomic' },
};

/** Defaults upstream fills in for key fields an item omits (from the schema's field defaults). */
const KEY_DEFAULTS: Record<string, unknown> = {
  [`${core('ContainerPort')}.protocol`]: 'TCP',
  [`${core('ServicePort')}.protocol`]: 'TCP',
};

/**
 * Non-pointer struct fields: Go serializes them even when empty, so an empty
 * object of the kind (what upstream compares against on create) has them as
 * {}. Every kind's metadata, spec and status are such fields too.
 */
const ALWAYS_PRESENT: Record<string, readonly string[]> = {
  [core('PodTemplateSpec')]: ['metadata', 'spec'],
  [core('PodTemplate')]: ['template'],
  [core('PersistentVolumeClaimSpec')]: ['resources'],
  [core('ServiceStatus')]: ['loadBalancer'],
  [core('NodeStatus')]: ['daemonEndpoints', 'nodeInfo'],
  [core('NodeDaemonEndpoints')]: ['kubeletEndpoint'],
  [core('Event')]: ['involvedObject', 'source'],
  'k8s.io.api.events.v1.Event': ['regarding', 'deprecatedSource'],
  'k8s.io.api.apps.v1.DeploymentSpec': ['strategy', 'template'],
  'k8s.io.api.apps.v1.StatefulSetSpec': ['template', 'updateStrategy'],
  'k8s.io.api.apps.v1.DaemonSetSpec': ['template', 'updateStrategy'],
  'k8s.io.api.apps.v1.ReplicaSetSpec': ['template'],
  'k8s.io.api.batch.v1.JobSpec': ['template'],
  'k8s.io.api.batch.v1.JobTemplateSpec': ['metadata', 'spec'],
  'k8s.io.api.batch.v1.CronJobSpec': ['jobTemplate'],
  'k8s.io.api.networking.v1.NetworkPolicySpec': ['podSelector'],
  'k8s.io.api.networking.v1.IngressStatus': ['loadBalancer'],
  'k8s.io.api.rbac.v1.RoleBinding': ['roleRef'],
  'k8s.io.api.rbac.v1.ClusterRoleBinding': ['roleRef'],
  'k8s.io.api.autoscaling.v1.HorizontalPodAutoscalerSpec': ['scaleTargetRef'],
  'k8s.io.api.autoscaling.v2.HorizontalPodAutoscalerSpec': ['scaleTargetRef'],
};

/**
 * Lists and maps Go writes as null when unset (no omitempty), present in an
 * empty object like the fields above. Only granular ones matter: an update
 * that fills them does not own the field itself, only its items.
 */
const ALWAYS_NULL: Record<string, readonly string[]> = {
  [core('PodSpec')]: ['containers'],
};

const SCALAR: TypeRef = { kind: 'scalar' };
const UNTYPED: TypeRef = { kind: 'untyped' };

/** Resolves the types of an object's fields, items and map values. */
export class TypeResolver {
  readonly model: TypeModel;
  readonly patchSchema: PatchSchema;

  constructor(model: TypeModel, patchSchema: PatchSchema) {
    this.model = model;
    this.patchSchema = patchSchema;
  }

  /** The type of a whole object: its kind's message, or untyped when there is none (custom resources). */
  root(message: string | undefined): TypeRef {
    const key = message ?? '';
    let type = this.roots.get(key);
    if (!type) {
      type =
        message === undefined || !this.model.message(message)
          ? { kind: 'untyped', root: true }
          : { kind: 'struct', message, atomic: false, path: [], root: true };
      this.roots.set(key, type);
    }
    return type;
  }

  /**
   * The type of a field of an object-valued type, and whether it is a
   * declared struct field (upstream tracks undeclared keys, i.e. map entries,
   * as fields of their own; declared fields are only tracked through their
   * leaves).
   */
  field(parent: TypeRef, name: string): { type: TypeRef; declared: boolean } {
    // Types are resolved once per parent type object: walks ask for the same
    // fields over and over, and patch-metadata look-ups are not free.
    let cache = this.fieldResults.get(parent);
    if (!cache) {
      cache = new Map();
      this.fieldResults.set(parent, cache);
    }
    let result = cache.get(name);
    if (!result) {
      result = this.resolveField(parent, name);
      cache.set(name, result);
    }
    return result;
  }

  private readonly fieldResults = new WeakMap<TypeRef, Map<string, { type: TypeRef; declared: boolean }>>();
  private readonly itemResults = new WeakMap<ListType, TypeRef>();
  private readonly roots = new Map<string, TypeRef>();

  private resolveField(parent: TypeRef, name: string): { type: TypeRef; declared: boolean } {
    switch (parent.kind) {
      case 'struct': {
        if (parent.root && (name === 'apiVersion' || name === 'kind'))
          return { type: SCALAR, declared: true };
        const f = this.fieldsOf(parent.message).get(name);
        // Upstream rejects unknown fields; Skiff validates elsewhere and
        // tracks them like schemaless data.
        if (!f) return { type: UNTYPED, declared: false };
        return { type: this.fieldType(parent, f), declared: true };
      }
      case 'map':
        return { type: this.valueType(parent.value, [...parent.path, name]), declared: false };
      case 'untyped':
        if (parent.root && (name === 'apiVersion' || name === 'kind'))
          return { type: SCALAR, declared: true };
        if (parent.root && name === 'metadata') {
          return {
            type: { kind: 'struct', message: OBJECT_META, atomic: false, path: ['metadata'] },
            declared: true,
          };
        }
        return { type: UNTYPED, declared: false };
      default:
        return { type: SCALAR, declared: false };
    }
  }

  /** The type of a list's items. */
  item(list: ListType): TypeRef {
    let type = this.itemResults.get(list);
    if (!type) {
      type = this.valueType(list.item, list.path);
      this.itemResults.set(list, type);
    }
    return type;
  }

  /** The default of a key field an associative list item omits, if upstream's schema has one. */
  keyDefault(list: ListType, field: string): unknown {
    return list.item.message ? KEY_DEFAULTS[`${list.item.message}.${field}`] : undefined;
  }

  /** The non-pointer struct fields of a message (see ALWAYS_PRESENT). */
  alwaysPresent(type: TypeRef): readonly string[] {
    if (type.kind !== 'struct') return [];
    const fields = ALWAYS_PRESENT[type.message] ?? [];
    if (!type.root) return fields;
    const own = this.model.message(type.message)?.fields ?? [];
    const top = ['metadata', 'spec', 'status'].filter((n) =>
      own.some((f) => f.name === n && f.type === 'message' && !f.repeated && !f.map),
    );
    return [...top, ...fields];
  }

  /** The fields of a message Go writes as null when unset (see ALWAYS_NULL). */
  alwaysNull(type: TypeRef): readonly string[] {
    return type.kind === 'struct' ? (ALWAYS_NULL[type.message] ?? []) : [];
  }

  private readonly fieldCache = new Map<string, Map<string, ModelField>>();

  private fieldsOf(message: string): Map<string, ModelField> {
    let fields = this.fieldCache.get(message);
    if (!fields) {
      fields = new Map((this.model.message(message)?.fields ?? []).map((f) => [f.name, f]));
      this.fieldCache.set(message, fields);
    }
    return fields;
  }

  private fieldType(parent: StructType, f: ModelField): TypeRef {
    const path = [...parent.path, f.name];
    const override = FIELD_OVERRIDES[`${parent.message}.${f.name}`];
    if (f.map) {
      const atomic = override && 'atomic' in override ? override.atomic : false;
      return { kind: 'map', atomic, value: f.map, path };
    }
    const item = { type: f.type, ...(f.message ? { message: f.message } : {}) };
    if (f.repeated) {
      if (override && 'list' in override) {
        return { kind: 'list', relationship: override.list, keys: override.keys ?? [], item, path };
      }
      const meta = this.patchSchema.fieldMeta(path);
      const merges = meta?.strategy?.split(',').includes('merge') ?? false;
      if (merges && f.type === 'message' && meta?.mergeKey) {
        return { kind: 'list', relationship: 'map', keys: [meta.mergeKey], item, path };
      }
      if (merges && f.type !== 'message') return { kind: 'list', relationship: 'set', keys: [], item, path };
      return { kind: 'list', relationship: 'atomic', keys: [], item, path };
    }
    const type = this.valueType(item, path);
    if (type.kind === 'struct' && override && 'atomic' in override)
      return { ...type, atomic: override.atomic };
    return type;
  }

  private valueType(t: { type: string; message?: string }, path: readonly string[]): TypeRef {
    if (t.type !== 'message' || !t.message) return SCALAR;
    if (SPECIAL_MESSAGES[t.message]) return SCALAR;
    if (!this.model.message(t.message)) return UNTYPED;
    return { kind: 'struct', message: t.message, atomic: ATOMIC_STRUCTS.has(t.message), path };
  }
}
