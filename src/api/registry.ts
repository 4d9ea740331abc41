// The resource registry: one declarative entry per kind. Discovery, OpenAPI,
// tables, field selectors, defaulting and validation all derive from it, and
// kinds can be added and removed at run time (CustomResourceDefinitions).

import type { KubeObject } from './meta.ts';

export type ColumnType = 'string' | 'integer' | 'number' | 'boolean' | 'date';

export interface PrinterColumn {
  name: string;
  type: ColumnType;
  format?: string;
  description?: string;
  /** 0: default output; 1: only with -o wide. */
  priority: number;
}

/** A field error as returned by validation (see validation.ts for builders). */
export interface FieldErrorLike {
  type: string;
  field: string;
  message: string;
}

/** Who makes a request, for kinds whose strategy records it (a CSR's spec.username). */
export interface RequestUser {
  name: string;
  groups: string[];
  uid?: string;
  extra?: Record<string, string[]>;
}

/**
 * A subresource that takes the whole object and writes part of it, with its
 * own rules (upstream's per-subresource RESTUpdateStrategy, as a CSR's
 * status and approval strategies).
 */
export interface SubresourceStrategy {
  /** The object to write: the stored one with what this endpoint may change taken from the request. */
  prepareForUpdate(next: KubeObject, current: KubeObject): KubeObject;
  validateUpdate(next: KubeObject, current: KubeObject): FieldErrorLike[];
  /** The fields a write through this endpoint does not own (upstream's GetResetFields). */
  resetFields: string[][];
}

export interface ScaleSubresource {
  specReplicasPath: string;
  statusReplicasPath: string;
  labelSelectorPath?: string;
}

export interface ResourceType {
  group: string;
  version: string;
  kind: string;
  /** Lower-case plural, the URL segment: `pods`. */
  plural: string;
  singular: string;
  listKind?: string;
  shortNames?: string[];
  categories?: string[];
  namespaced: boolean;
  /** Defaults to every verb. */
  verbs?: string[];
  /** The status subresource: writes to the main resource ignore status, and /status ignores the rest. */
  status?: boolean;
  scale?: ScaleSubresource;
  /** Other subresources served by dedicated handlers (binding, eviction, log, exec, ...). */
  subresources?: string[];
  /**
   * The storage key segment: objects live at /registry/<storage>/<ns>/<name>.
   * Two API versions of one resource share it (autoscaling v1 and v2).
   */
  storage?: string;
  /** Keeps metadata.generation: 1 on create, +1 whenever anything but metadata and status changes. */
  generation?: boolean;
  /** PUT may create the object when it does not exist (upstream AllowCreateOnUpdate). */
  createOnUpdate?: boolean;
  columns?: PrinterColumn[];
  /** The table has no NAME column (events: upstream shows the name only with -o wide). */
  namelessTable?: boolean;
  /** Table cells after NAME, in `columns` order (NAME is first unless namelessTable). */
  cells?: (obj: KubeObject, now: Date) => unknown[];
  /** Kind-specific field selector values (metadata.name and metadata.namespace are always there). */
  fields?: (obj: KubeObject) => Record<string, string>;
  /** Sets defaults in place, as upstream's defaulting functions do. */
  defaults?: (obj: KubeObject) => void;
  /** Returns every problem with obj (old is set for updates). */
  validate?: (obj: KubeObject, old?: KubeObject) => FieldErrorLike[];
  /** Runs on create before validation, after defaulting (e.g. clear status, assign IPs); user is the requester's. */
  prepareCreate?: (obj: KubeObject, user?: RequestUser) => void;
  /**
   * Subresources with their own update strategy, served as status is (GET,
   * PUT, PATCH of the whole object): a CSR's status and approval.
   */
  updateStrategies?: Record<string, SubresourceStrategy>;
  /** Runs on update of the main resource before validation. */
  prepareUpdate?: (obj: KubeObject, old: KubeObject) => void;
  /**
   * For a version that shares its storage with another (events.k8s.io/v1
   * events are stored as core/v1 Events, autoscaling/v1 HPAs as v2):
   * conversion to and from the stored form.
   */
  convert?: { toStorage: (obj: KubeObject) => KubeObject; fromStorage: (obj: KubeObject) => KubeObject };
  /** True for kinds added at run time (CRDs). */
  custom?: boolean;
  /**
   * The kind's OpenAPI v3 schema, for kinds the type model does not know
   * (a CRD version's structural schema): OpenAPI documents are built from it.
   */
  openAPISchema?: Record<string, unknown>;
  /**
   * Removes the fields the kind does not know from a request's object, in
   * place, and returns their paths (`spec.foo`): fieldValidation reports or
   * refuses them. Kinds of the type model are checked against it instead.
   */
  prune?: (obj: KubeObject) => string[];
  /** Creates are refused: the kind is going away (its CRD is being deleted). */
  terminating?: boolean;
  /** A Warning header for every request to this version (a deprecated CRD version). */
  warning?: string;
  /**
   * Runs when a delete starts, on the copy that gets deletionTimestamp: may
   * add finalizers and conditions (a CRD's CustomResourceCleanup).
   */
  prepareDelete?: (obj: KubeObject) => void;
}

export const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

export const groupVersion = (rt: { group: string; version: string }): string =>
  rt.group ? `${rt.group}/${rt.version}` : rt.version;

export const storageSegment = (rt: ResourceType): string =>
  rt.storage ?? (rt.custom ? `${rt.group}/${rt.plural}` : rt.plural);

export interface GroupVersions {
  group: string;
  versions: string[];
  preferredVersion: string;
}

type Listener = () => void;

export class Registry {
  readonly #types = new Map<string, ResourceType>();
  // The order groups and versions were first registered in: discovery lists
  // them that way, and kubectl uses the first version as the preferred one.
  readonly #groupOrder: string[] = [];
  readonly #versionOrder = new Map<string, string[]>();
  readonly #listeners = new Set<Listener>();

  static key(group: string, version: string, plural: string): string {
    return `${group}/${version}/${plural}`;
  }

  add(rt: ResourceType): void {
    this.#types.set(Registry.key(rt.group, rt.version, rt.plural), rt);
    if (!this.#groupOrder.includes(rt.group)) this.#groupOrder.push(rt.group);
    const versions = this.#versionOrder.get(rt.group) ?? [];
    if (!versions.includes(rt.version)) versions.push(rt.version);
    this.#versionOrder.set(rt.group, versions);
    this.#changed();
  }

  remove(group: string, version: string, plural: string): void {
    if (!this.#types.delete(Registry.key(group, version, plural))) return;
    const stillServed = (v: string) => this.all().some((t) => t.group === group && t.version === v);
    const versions = (this.#versionOrder.get(group) ?? []).filter(stillServed);
    if (versions.length === 0) {
      this.#versionOrder.delete(group);
      this.#groupOrder.splice(this.#groupOrder.indexOf(group), 1);
    } else this.#versionOrder.set(group, versions);
    this.#changed();
  }

  get(group: string, version: string, plural: string): ResourceType | undefined {
    return this.#types.get(Registry.key(group, version, plural));
  }

  all(): ResourceType[] {
    return [...this.#types.values()];
  }

  inGroupVersion(group: string, version: string): ResourceType[] {
    return this.all().filter((t) => t.group === group && t.version === version);
  }

  /** Every served group with its versions, core ('') first, in registration order. */
  groups(): GroupVersions[] {
    return this.#groupOrder.map((group) => {
      const versions = this.#versionOrder.get(group) ?? [];
      return { group, versions, preferredVersion: versions[0] ?? '' };
    });
  }

  /** The preferred-version entry for a group and kind. */
  byKind(group: string, kind: string): ResourceType | undefined {
    const versions = this.#versionOrder.get(group) ?? [];
    for (const v of versions) {
      const t = this.all().find((x) => x.group === group && x.version === v && x.kind === kind);
      if (t) return t;
    }
    return undefined;
  }

  /** Called after every add or remove (discovery and OpenAPI caches rebuild). */
  onChange(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(): void {
    for (const l of this.#listeners) l();
  }
}
