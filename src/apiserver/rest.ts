// Generic REST storage for one resource: upstream's generic registry Store
// (k8s.io/apiserver/pkg/registry/generic/registry/store.go) in one place.
//
// Every kind gets the same verbs with the same rules: generateName, uid and
// creationTimestamp on create; resourceVersion preconditions and
// compare-and-swap on update; generation bumps on spec changes; status
// subresource isolation; deletionTimestamp with finalizers and graceful pod
// deletion; dry runs that do everything but write.

import {
  ApiError,
  alreadyExists,
  badRequest,
  conflict,
  expired,
  forbidden,
  type GroupResource,
  invalid,
  notFound,
  optimisticLockConflict,
  timeout,
} from '../api/errors.ts';
import { parseFieldSelector } from '../api/fields.ts';
import { parseSelector } from '../api/labels.ts';
import {
  deepCopy,
  isObject,
  jsonEqual,
  type KubeList,
  type KubeObject,
  newUID,
  randomSuffix,
  rfc3339,
} from '../api/meta.ts';
import {
  type FieldErrorLike,
  groupVersion,
  type RequestUser,
  type ResourceType,
  storageSegment,
} from '../api/registry.ts';
import { immutableField } from '../api/resources/checks.ts';
import { encodeContinue, isStorageError, type Store } from '../storage/store.ts';
import { TooOldResourceVersionError, WatchCache } from './watch-cache.ts';

export interface ListQuery {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: string;
}

export interface WriteOptions {
  dryRun?: boolean;
  /** For update: 'status' writes only status; undefined writes everything else. */
  subresource?: string;
  /**
   * Records field ownership (metadata.managedFields) on the object about to
   * be written, after defaulting, so defaulted fields belong to the writer
   * as upstream's field manager does it.
   */
  trackFields?: (live: KubeObject | undefined, next: KubeObject) => void;
  /** A subresource's own update rules, in place of the kind's (pods/ephemeralcontainers). */
  strategy?: UpdateStrategy;
  /** Who makes the request: a kind's prepareCreate may record it (a CSR's spec.username). */
  user?: RequestUser;
  /**
   * Create only: receives the JSON of the returned object, when the store's
   * encoding of it could be reused for that (one JSON.stringify of the
   * object instead of two). The text is of the object as returned; a caller
   * that changes the object must not use it.
   */
  encoded?: (json: string) => void;
  /**
   * Create only: the body is the caller's own (decoded for this request
   * alone, as the HTTP handlers' are) and may be changed in place instead
   * of copied first.
   */
  owned?: boolean;
  /** The admission chain this write passes through (see AdmissionHooks). */
  admission?: AdmissionHooks;
}

export type AdmissionOperation = 'CREATE' | 'UPDATE' | 'DELETE';

/**
 * The admission chain as the registry calls it, at upstream's points
 * (k8s.io/apiserver endpoints/handlers create.go, update.go, patch.go,
 * delete.go and registry/generic/registry/store.go):
 *
 *   create: defaults → field manager → admit (mutating) → PrepareForCreate
 *           → strategy validation → namespace lifecycle → validate → store
 *   update: defaults → admit (mutating) → PrepareForUpdate (status
 *           isolation, generation) → field manager → strategy validation
 *           → validate → store; run again on every compare-and-swap retry
 *   delete: admit then validate with the stored object as the old object,
 *           after the preconditions are checked
 *
 * Either call refuses by throwing an ApiError (a Status for the client).
 */
export interface AdmissionHooks {
  admit(
    operation: AdmissionOperation,
    object: KubeObject | undefined,
    old: KubeObject | undefined,
  ): Promise<void>;
  validate(
    operation: AdmissionOperation,
    object: KubeObject | undefined,
    old: KubeObject | undefined,
  ): Promise<void>;
}

/**
 * Upstream's per-subresource update strategy (a RESTUpdateStrategy such as
 * podEphemeralContainersStrategy): which part of the request's object is
 * kept, and how the result is validated.
 */
export interface UpdateStrategy {
  /** The object to write: the stored one with what this endpoint may change taken from the request. */
  prepareForUpdate(next: KubeObject, current: KubeObject): KubeObject;
  validateUpdate(next: KubeObject, current: KubeObject): FieldErrorLike[];
}

export interface DeleteOptions {
  dryRun?: boolean;
  gracePeriodSeconds?: number;
  propagationPolicy?: 'Orphan' | 'Background' | 'Foreground';
  orphanDependents?: boolean;
  preconditions?: { uid?: string; resourceVersion?: string };
  /** The admission chain a delete passes through, once the object is read. */
  admission?: AdmissionHooks;
}

/** The object (when a deletion is pending) or the last state (when it completed). */
export interface DeleteResult {
  object: KubeObject;
  /** True when the object is gone; false when it waits for finalizers or a grace period. */
  deleted: boolean;
}

/** A matcher for objects, built from label and field selectors. */
export interface ObjectFilter {
  (obj: KubeObject): boolean;
  /** True when nothing is filtered (remainingItemCount can be reported). */
  readonly everything: boolean;
}

/** Answers "does this namespace accept new objects?" for namespaced creates. */
export type NamespaceCheck = (namespace: string) => Promise<void>;

export interface ResourceStorageOptions {
  now?: () => Date;
  namespaceCheck?: NamespaceCheck;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

const CONTINUE_VERSION = 'meta.k8s.io/v1';

export class ResourceStorage {
  readonly rt: ResourceType;
  readonly cache: WatchCache;
  readonly gr: GroupResource;
  readonly #store: Store;
  readonly #prefix: string;
  readonly #now: () => Date;
  readonly #namespaceCheck: NamespaceCheck | undefined;

  constructor(rt: ResourceType, store: Store, opts: ResourceStorageOptions = {}) {
    this.rt = rt;
    this.gr = { group: rt.group, resource: rt.plural };
    this.#store = store;
    this.#prefix = `/registry/${storageSegment(rt)}/`;
    this.#now = opts.now ?? (() => new Date());
    this.#namespaceCheck = opts.namespaceCheck;
    this.cache = new WatchCache(store, this.#prefix, {
      decode: (value, rev) => this.decode(value, rev),
      ...(opts.log ? { log: opts.log } : {}),
    });
  }

  get prefix(): string {
    return this.#prefix;
  }

  key(namespace: string | undefined, name: string): string {
    return this.rt.namespaced ? `${this.#prefix}${namespace}/${name}` : `${this.#prefix}${name}`;
  }

  /** The key prefix of one namespace, or of everything. */
  scopePrefix(namespace: string | undefined): string {
    return this.rt.namespaced && namespace ? `${this.#prefix}${namespace}/` : this.#prefix;
  }

  /** Stored JSON → object, with the resourceVersion the store assigned. */
  decode(value: string, modRevision: number): KubeObject {
    let obj = JSON.parse(value) as KubeObject;
    if (this.rt.convert) obj = this.rt.convert.fromStorage(obj);
    obj.apiVersion = groupVersion(this.rt);
    obj.kind = this.rt.kind;
    obj.metadata.resourceVersion = String(modRevision);
    return obj;
  }

  // The resourceVersion is the store's mod revision, never part of the value.
  // (encodeParts below must give the same text.)
  #encode(obj: KubeObject): string {
    const stored = this.rt.convert ? this.rt.convert.toStorage(obj) : obj;
    const { resourceVersion: _rv, ...metadata } = stored.metadata;
    return JSON.stringify({ ...stored, metadata });
  }

  // ---- reads ------------------------------------------------------------

  async get(namespace: string | undefined, name: string, resourceVersion?: string): Promise<KubeObject> {
    const key = this.key(namespace, name);
    const rv = parseResourceVersion(resourceVersion);
    let obj: KubeObject | undefined;
    if (rv === 0 && resourceVersion === '0') {
      // "0" means any version is fine: serve from the cache.
      await this.cache.start();
      obj = this.cache.get(key);
    } else {
      const kv = await this.#read(() => this.#store.get(key, rv ? { revision: rv } : {}));
      obj = kv ? this.decode(kv.value, kv.modRevision) : undefined;
    }
    if (!obj) throw notFound(this.gr, name);
    return obj;
  }

  async #read<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isStorageError(err, 'Compacted'))
        throw expired(`The resourceVersion for the provided list is too old.`);
      if (isStorageError(err, 'FutureRevision')) {
        throw new ApiError(504, 'Timeout', `Too large resource version: ${err.message}`, {
          causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }],
          retryAfterSeconds: 1,
        });
      }
      throw err;
    }
  }

  /** Builds the filter for label and field selectors (400 on bad syntax or unsupported fields). */
  filter(
    query: Pick<ListQuery, 'labelSelector' | 'fieldSelector'>,
    { cachedObjects = false }: { cachedObjects?: boolean } = {},
  ): ObjectFilter {
    let labels: ReturnType<typeof parseSelector> | undefined;
    let fields: ReturnType<typeof parseFieldSelector> | undefined;
    try {
      if (query.labelSelector) labels = parseSelector(query.labelSelector);
    } catch (err) {
      throw badRequest((err as Error).message);
    }
    try {
      if (query.fieldSelector) fields = parseFieldSelector(query.fieldSelector);
    } catch (err) {
      throw badRequest((err as Error).message);
    }
    if (fields) {
      const allowed = new Set([
        'metadata.name',
        'metadata.namespace',
        ...Object.keys(this.rt.fields?.(sample()) ?? {}),
      ]);
      const bad = fields.unsupportedFields(allowed);
      if (bad.length > 0) {
        throw badRequest(`field label not supported: ${bad[0]}`);
      }
    }
    const labelSel = labels && !labels.empty() ? labels : undefined;
    const fieldSel = fields && fields.requirements.length > 0 ? fields : undefined;
    const fn = (obj: KubeObject) =>
      (!labelSel || labelSel.matches(obj.metadata.labels ?? {})) &&
      (!fieldSel || fieldSel.matches(cachedObjects ? this.#cachedFieldsOf(obj) : this.fieldsOf(obj)));
    return Object.assign(fn, { everything: !labelSel && !fieldSel });
  }

  // The watch cache's objects are shared and never mutated, so their
  // selectable fields are worked out once, not once per watcher per event:
  // every kubelet watches pods with a field selector (spec.nodeName).
  readonly #fieldsOfCached = new WeakMap<KubeObject, Record<string, string>>();

  #cachedFieldsOf(obj: KubeObject): Record<string, string> {
    let fields = this.#fieldsOfCached.get(obj);
    if (!fields) {
      fields = this.fieldsOf(obj);
      this.#fieldsOfCached.set(obj, fields);
    }
    return fields;
  }

  fieldsOf(obj: KubeObject): Record<string, string> {
    return {
      'metadata.name': obj.metadata.name ?? '',
      ...(this.rt.namespaced ? { 'metadata.namespace': obj.metadata.namespace ?? '' } : {}),
      ...(this.rt.fields?.(obj) ?? {}),
    };
  }

  async list(namespace: string | undefined, query: ListQuery): Promise<KubeList> {
    const filter = this.filter(query);
    const limit = query.limit && query.limit > 0 ? query.limit : 0;
    const rv = parseResourceVersion(query.resourceVersion);
    const match = query.resourceVersionMatch;
    if (match && !['Exact', 'NotOlderThan'].includes(match)) {
      throw badRequest(
        `resourceVersionMatch: Unsupported value: "${match}": supported values: "Exact", "NotOlderThan"`,
      );
    }
    if (match && !query.resourceVersion) {
      throw badRequest('resourceVersionMatch is forbidden unless resourceVersion is provided');
    }
    if (query.continue) {
      if (query.resourceVersion && query.resourceVersion !== '0') {
        throw badRequest('specifying resource version is not allowed when using continue');
      }
      const token = decodeApiContinue(query.continue);
      return this.#listFromStore(namespace, filter, limit, token.rv, token.start);
    }
    if (match === 'Exact') {
      if (rv === 0) throw badRequest('resourceVersionMatch "Exact" is forbidden for resourceVersion "0"');
      return this.#listFromStore(namespace, filter, limit, rv, undefined);
    }
    // Unset: the newest state (a consistent read). "0" or NotOlderThan: the
    // cache as it is, after catching up to rv if one was given.
    await this.cache.start();
    if (query.resourceVersion === undefined || query.resourceVersion === '') {
      if (!this.cache.canSync) return this.#listFromStore(namespace, filter, limit, 0, undefined);
      await this.cache.sync();
    } else if (rv > this.cache.revision) {
      try {
        await this.cache.waitFor(rv);
      } catch {
        throw timeout(`Too large resource version: ${rv}, current: ${this.cache.revision}`);
      }
    }
    return this.#listFromCache(namespace, filter, limit);
  }

  #listFromCache(namespace: string | undefined, filter: ObjectFilter, limit: number): KubeList {
    const revision = this.cache.revision;
    const list = this.#emptyList(revision);
    const items: KubeObject[] = [];
    let more = false;
    let total = 0;
    for (const obj of this.cache.objects(this.scopePrefix(namespace))) {
      if (!filter(obj)) continue;
      total++;
      if (limit === 0 || items.length < limit) items.push(obj);
      else {
        more = true;
        // Without a selector the remaining count is cheap to finish; with
        // one, upstream does not report it, so stop at the first extra.
        if (!filter.everything) break;
      }
    }
    list.items = items;
    if (!more) return list;
    // More than one page: this page comes from the cache; the rest from the
    // store at the same revision, so the pages form one snapshot.
    const last = items.at(-1)!;
    list.metadata.continue = encodeApiContinue(
      revision,
      this.key(last.metadata.namespace, last.metadata.name!),
    );
    if (filter.everything) list.metadata.remainingItemCount = total - limit;
    return list;
  }

  async #listFromStore(
    namespace: string | undefined,
    filter: ObjectFilter,
    limit: number,
    revision: number,
    startAfter: string | undefined,
  ): Promise<KubeList> {
    const prefix = this.scopePrefix(namespace);
    const items: KubeObject[] = [];
    let rev = revision;
    let token = startAfter !== undefined ? encodeContinue(revision, startAfter) : undefined;
    let remaining = 0;
    let lastKey: string | undefined;
    // Keep reading pages until `limit` objects passed the filter, as
    // upstream's etcd3 store does for selective lists.
    for (;;) {
      const want = limit === 0 ? 0 : Math.max(limit - items.length, filter.everything ? 0 : 100);
      const page = await this.#read(() =>
        this.#store.list(prefix, {
          ...(want ? { limit: want } : {}),
          ...(token ? { continue: token } : rev ? { revision: rev } : {}),
        }),
      );
      rev = page.revision;
      for (const kv of page.items) {
        lastKey = kv.key;
        const obj = this.decode(kv.value, kv.modRevision);
        if (!filter(obj)) continue;
        items.push(obj);
        if (limit && items.length === limit) break;
      }
      remaining = page.remaining;
      token = page.continue;
      if (!token || (limit && items.length >= limit)) {
        // Items after lastKey in the page we stopped in also remain.
        if (limit && items.length >= limit) {
          const lastItem = items.at(-1)!;
          lastKey = this.key(lastItem.metadata.namespace, lastItem.metadata.name!);
          const idx = page.items.findIndex((kv) => kv.key === lastKey);
          remaining += page.items.length - idx - 1;
        }
        break;
      }
    }
    const list = this.#emptyList(rev);
    list.items = items;
    if (limit && remaining > 0 && lastKey !== undefined) {
      list.metadata.continue = encodeApiContinue(rev, lastKey);
      if (filter.everything) list.metadata.remainingItemCount = remaining;
    }
    return list;
  }

  #emptyList(revision: number): KubeList {
    return {
      apiVersion: groupVersion(this.rt),
      kind: this.rt.listKind ?? `${this.rt.kind}List`,
      metadata: { resourceVersion: String(revision) },
      items: [],
    };
  }

  /**
   * Subscribes to changes after resourceVersion (see watch.ts for the HTTP
   * side). Unset or "0" first replays the current state as ADDED events.
   */
  async watch(
    namespace: string | undefined,
    query: ListQuery,
    send: (events: Array<{ type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: KubeObject }>) => void,
    close: (reason: string) => void,
  ): Promise<{ stop: () => void; revision: () => number }> {
    const filter = this.filter(query, { cachedObjects: true });
    const scope = this.scopePrefix(namespace);
    await this.cache.start();
    let from: number;
    const initial: Array<{ type: 'ADDED'; object: KubeObject }> = [];
    if (!query.resourceVersion || query.resourceVersion === '0') {
      if (!query.resourceVersion && this.cache.canSync) await this.cache.sync();
      from = this.cache.revision;
      for (const object of this.cache.list(scope))
        if (filter(object)) initial.push({ type: 'ADDED', object });
    } else {
      from = parseResourceVersion(query.resourceVersion);
      if (from > this.cache.revision) {
        try {
          await this.cache.waitFor(from);
        } catch {
          throw timeout(`Too large resource version: ${from}, current: ${this.cache.revision}`);
        }
      }
    }
    let lastRevision = from;
    const deliver = (events: import('./watch-cache.ts').CacheEvent[]) => {
      const out: Array<{ type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: KubeObject }> = [];
      for (const e of events) {
        if (!e.key.startsWith(scope)) continue;
        lastRevision = e.revision;
        const now = filter(e.object);
        if (e.type === 'MODIFIED') {
          // Selector transitions: an object that starts or stops matching
          // appears as ADDED or DELETED to this watcher, as upstream does.
          const before = e.prevObject ? filter(e.prevObject) : false;
          if (now && before) out.push({ type: 'MODIFIED', object: e.object });
          else if (now) out.push({ type: 'ADDED', object: e.object });
          else if (before) out.push({ type: 'DELETED', object: e.object });
        } else if (now) out.push({ type: e.type, object: e.object });
      }
      if (out.length > 0) send(out);
    };
    let registration: { backlog: import('./watch-cache.ts').CacheEvent[]; stop: () => void };
    try {
      registration = this.cache.watch(from, { send: deliver, close });
    } catch (err) {
      if (err instanceof TooOldResourceVersionError) throw expired(err.message);
      throw err;
    }
    if (initial.length > 0) send(initial);
    deliver(registration.backlog);
    return { stop: registration.stop, revision: () => Math.max(lastRevision, this.cache.revision) };
  }

  // ---- writes -----------------------------------------------------------

  async create(
    namespace: string | undefined,
    body: KubeObject,
    opts: WriteOptions = {},
  ): Promise<KubeObject> {
    const obj = opts.owned ? body : deepCopy(body);
    const meta = obj.metadata;
    if (this.rt.namespaced) {
      if (meta.namespace && namespace && meta.namespace !== namespace) {
        throw badRequest(
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      }
      if (namespace) meta.namespace = namespace;
    } else delete meta.namespace;
    if (meta.resourceVersion) throw badRequest('resourceVersion should not be set on objects to be created');
    // As upstream's SimpleNameGenerator: the base is cut to 58 characters so
    // base + 5 random characters stays a valid 63-character name.
    if (!meta.name && meta.generateName) meta.name = `${meta.generateName.slice(0, 58)}${randomSuffix()}`;
    meta.uid = newUID();
    meta.creationTimestamp = rfc3339(this.#now());
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    delete meta.selfLink;
    if (this.rt.generation) meta.generation = 1;
    else delete meta.generation;
    obj.apiVersion = groupVersion(this.rt);
    obj.kind = this.rt.kind;
    this.rt.defaults?.(obj);
    opts.trackFields?.(undefined, obj);
    await opts.admission?.admit('CREATE', obj, undefined);
    this.rt.prepareCreate?.(obj, opts.user);
    this.#validate(obj);
    // Namespace lifecycle is the first validating admission plugin upstream.
    if (this.rt.namespaced && this.#namespaceCheck) await this.#namespaceCheck(obj.metadata.namespace!);
    await opts.admission?.validate('CREATE', obj, undefined);
    if (opts.dryRun) {
      if (await this.#store.get(this.key(obj.metadata.namespace, obj.metadata.name!)))
        throw alreadyExists(this.gr, obj.metadata.name!);
      return obj;
    }
    const key = this.key(obj.metadata.namespace, obj.metadata.name!);
    const encoded = opts.encoded && !this.rt.convert ? encodeParts(obj) : undefined;
    const value = encoded ? encoded.stored : this.#encode(obj);
    try {
      const kv = await this.#store.create(key, value);
      // obj is this request's own copy and already what a read would decode.
      obj.metadata.resourceVersion = String(kv.modRevision);
      if (encoded) opts.encoded!(encoded.withResourceVersion(obj.metadata.resourceVersion));
      return obj;
    } catch (err) {
      if (isStorageError(err, 'KeyExists')) throw alreadyExists(this.gr, obj.metadata.name!);
      throw err;
    }
  }

  #validate(obj: KubeObject, old?: KubeObject, strategy?: UpdateStrategy): void {
    const errs = (old && strategy ? strategy.validateUpdate(obj, old) : this.rt.validate?.(obj, old)) ?? [];
    if (errs.length > 0) throw invalid(this.rt.group, this.rt.kind, obj.metadata.name ?? '', errs);
  }

  /** PUT: replaces the object (or its status), with a resourceVersion precondition when the body has one. */
  async update(
    namespace: string | undefined,
    name: string,
    body: KubeObject,
    opts: WriteOptions = {},
  ): Promise<{ object: KubeObject; created: boolean }> {
    if (!isObject(body.metadata)) throw badRequest('metadata is required');
    if (body.metadata.name !== undefined && body.metadata.name !== name) {
      throw badRequest(
        `the name of the object (${body.metadata.name}) does not match the name on the URL (${name})`,
      );
    }
    if (this.rt.namespaced && body.metadata.namespace && namespace && body.metadata.namespace !== namespace) {
      throw badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    const precondition = body.metadata.resourceVersion as string | undefined;
    return this.guaranteedUpdate(
      namespace,
      name,
      () => deepCopy(body),
      { ...opts, ...(precondition ? { resourceVersion: precondition } : {}) },
      this.rt.createOnUpdate && !opts.subresource
        ? () => ({ ...deepCopy(body), metadata: { ...body.metadata, name } })
        : undefined,
    );
  }

  /**
   * Reads the current object, computes the new one with `mutate`, and writes
   * it with compare-and-swap. Without a resourceVersion precondition a lost
   * race is retried against the fresh object (that is what makes PATCH safe
   * without a read-modify-write on the client).
   */
  async guaranteedUpdate(
    namespace: string | undefined,
    name: string,
    mutate: (current: KubeObject) => KubeObject | Promise<KubeObject>,
    opts: WriteOptions & { resourceVersion?: string; markDeleted?: boolean },
    createIfMissing?: () => KubeObject,
  ): Promise<{ object: KubeObject; created: boolean }> {
    const key = this.key(namespace, name);
    // As upstream's cacher (GuaranteedUpdate with cachedExistingObject): the
    // first attempt starts from the watch cache's copy instead of reading
    // the store. That copy may be a little behind. Every decision taken on
    // it is checked before it stands: the write itself is a compare-and-swap
    // on the copy's revision, and a stale copy that fails a precondition,
    // looks like a no-op, or makes the update fail is dropped, and the
    // update runs again on the store's current object. A dry run, which
    // writes nothing for the swap to check, always reads the store.
    let fromCache = !opts.dryRun && this.cache.synced;
    for (let attempt = 0; ; attempt++) {
      const cached = fromCache ? this.cache.get(key) : undefined;
      fromCache = false;
      const kv = cached ? undefined : await this.#store.get(key);
      if (!cached && !kv) {
        if (createIfMissing) {
          const obj = createIfMissing();
          delete obj.metadata.resourceVersion;
          return { object: await this.create(namespace, obj, opts), created: true };
        }
        throw notFound(this.gr, name);
      }
      const stale = cached !== undefined;
      // The cache's objects are shared: this request works on its own copy.
      const current = cached ? deepCopy(cached) : this.decode(kv!.value, kv!.modRevision);
      const modRevision = cached ? Number(cached.metadata.resourceVersion) : kv!.modRevision;
      let outcome: { object: KubeObject; created: boolean } | 'retry';
      try {
        outcome = await this.#tryUpdate(key, name, current, modRevision, stale, attempt, mutate, opts);
      } catch (err) {
        if (stale) continue;
        throw err;
      }
      if (outcome !== 'retry') return outcome;
    }
  }

  /**
   * One attempt of guaranteedUpdate from `current` (at `modRevision`):
   * 'retry' when the attempt must run again on a fresh read.
   */
  async #tryUpdate(
    key: string,
    name: string,
    current: KubeObject,
    modRevision: number,
    stale: boolean,
    attempt: number,
    mutate: (current: KubeObject) => KubeObject | Promise<KubeObject>,
    opts: WriteOptions & { resourceVersion?: string; markDeleted?: boolean },
  ): Promise<{ object: KubeObject; created: boolean } | 'retry'> {
    if (opts.resourceVersion && opts.resourceVersion !== current.metadata.resourceVersion) {
      if (stale) return 'retry';
      throw optimisticLockConflict(this.gr, name);
    }
    const mutated = await mutate(deepCopy(current));
    const requested = this.#updateMeta(mutated, current);
    await opts.admission?.admit('UPDATE', requested, current);
    const next = this.#prepareUpdate(
      opts.strategy ? opts.strategy.prepareForUpdate(requested, current) : requested,
      current,
      opts.subresource,
      opts.strategy !== undefined,
    );
    opts.trackFields?.(current, next);
    if (opts.markDeleted && !current.metadata.deletionTimestamp) {
      next.metadata.deletionTimestamp = rfc3339(this.#now());
      next.metadata.deletionGracePeriodSeconds = 0;
    }
    if (jsonEqual(withoutVolatile(next), withoutVolatile(current))) {
      if (stale) return 'retry';
      return { object: current, created: false };
    }
    this.#validate(next, current, opts.strategy);
    await opts.admission?.validate('UPDATE', next, current);
    // A lost compare-and-swap is retried on the fresh object when the copy
    // was the cache's, or when the request has no precondition.
    const retryConflict = (err: unknown) =>
      isStorageError(err, 'Conflict') && (stale || (!opts.resourceVersion && attempt < 10));
    // Removing the last finalizer of an object marked for deletion deletes it.
    if (next.metadata.deletionTimestamp && pendingFinalizers(next) === 0 && !this.#graceful(next)) {
      if (opts.dryRun) return { object: next, created: false };
      try {
        await this.#store.delete(key, modRevision);
        return { object: next, created: false };
      } catch (err) {
        if (retryConflict(err)) return 'retry';
        throw this.#writeError(err, name);
      }
    }
    if (opts.dryRun) return { object: next, created: false };
    const value = this.#encode(next);
    try {
      const written = await this.#store.update(key, value, modRevision);
      next.metadata.resourceVersion = String(written.modRevision);
      return { object: next, created: false };
    } catch (err) {
      if (retryConflict(err)) return 'retry';
      throw this.#writeError(err, name);
    }
  }

  #writeError(err: unknown, name: string): unknown {
    if (isStorageError(err, 'Conflict')) return optimisticLockConflict(this.gr, name);
    if (isStorageError(err, 'NotFound')) return notFound(this.gr, name);
    return err;
  }

  // A pod with a pending grace period waits for its kubelet, not for finalizers.
  #graceful(obj: KubeObject): boolean {
    return (obj.metadata.deletionGracePeriodSeconds ?? 0) > 0;
  }

  /**
   * What the request may not change, taken from the stored object, and the
   * kind's defaults: the object admission sees (upstream decodes with
   * defaulting, and fills the system fields, before admitting an update).
   */
  #updateMeta(next: KubeObject, current: KubeObject): KubeObject {
    if (!isObject(next.metadata)) throw badRequest('metadata is required');
    const meta = next.metadata;
    const cur = current.metadata;
    next.apiVersion = current.apiVersion;
    next.kind = current.kind;
    // Fields the client cannot change.
    meta.name = cur.name;
    if (this.rt.namespaced) meta.namespace = cur.namespace;
    // A uid the client names must be the object's (ValidateObjectMetaUpdate):
    // controllers put it in adoption patches so that a patch never lands on
    // a replacement object of the same name.
    if (meta.uid && meta.uid !== cur.uid) {
      throw invalid(this.rt.group, this.rt.kind, cur.name ?? '', [
        immutableField(meta.uid, cur.uid, 'metadata.uid')[0]!,
      ]);
    }
    meta.uid = cur.uid;
    meta.creationTimestamp = cur.creationTimestamp;
    meta.resourceVersion = cur.resourceVersion;
    if (cur.deletionTimestamp) {
      meta.deletionTimestamp = cur.deletionTimestamp;
      meta.deletionGracePeriodSeconds = cur.deletionGracePeriodSeconds;
    } else {
      delete meta.deletionTimestamp;
      delete meta.deletionGracePeriodSeconds;
    }
    if (cur.generation !== undefined) meta.generation = cur.generation;
    else delete meta.generation;
    this.rt.defaults?.(next);
    return next;
  }

  /** Upstream's PrepareForUpdate: what this endpoint may write (status isolation), then generation. */
  #prepareUpdate(
    next: KubeObject,
    current: KubeObject,
    subresource: string | undefined,
    ownStrategy = false,
  ): KubeObject {
    if (!isObject(next.metadata)) throw badRequest('metadata is required');
    const meta = next.metadata;
    const cur = current.metadata;
    if (subresource === 'status') {
      // Only status (and metadata other than labels) may change through /status.
      const out: KubeObject = { ...current, metadata: { ...meta, labels: cur.labels } };
      if (next.status === undefined) delete out.status;
      else out.status = next.status;
      if (cur.labels === undefined) delete out.metadata.labels;
      // Defaulting applies to what a status write brings too (pod podIPs).
      this.rt.defaults?.(out);
      return out;
    }
    // The main resource cannot write status; subresources that own both
    // (pods/binding), or decide with their own strategy what of it they
    // write (certificatesigningrequests/approval), can.
    if (this.rt.status && subresource !== 'binding' && !ownStrategy) {
      if (current.status === undefined) delete next.status;
      else next.status = current.status;
    }
    this.rt.prepareUpdate?.(next, current);
    if (this.rt.generation && !jsonEqual(specOf(next), specOf(current))) {
      meta.generation = (cur.generation ?? 0) + 1;
    }
    return next;
  }

  async delete(namespace: string | undefined, name: string, opts: DeleteOptions = {}): Promise<DeleteResult> {
    const key = this.key(namespace, name);
    for (let attempt = 0; ; attempt++) {
      const kv = await this.#store.get(key);
      if (!kv) throw notFound(this.gr, name);
      const current = this.decode(kv.value, kv.modRevision);
      const pre = opts.preconditions;
      if (pre?.uid && pre.uid !== current.metadata.uid) {
        throw conflict(
          this.gr,
          name,
          `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata.uid}`,
        );
      }
      if (pre?.resourceVersion && pre.resourceVersion !== current.metadata.resourceVersion) {
        throw conflict(
          this.gr,
          name,
          `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`,
        );
      }
      if (opts.admission) {
        await opts.admission.admit('DELETE', undefined, current);
        await opts.admission.validate('DELETE', undefined, current);
      }
      const next = this.#markForDeletion(current, opts);
      try {
        if (!next) {
          if (opts.dryRun) return { object: current, deleted: true };
          const { prevKv, revision } = await this.#store.delete(key, kv.modRevision);
          const object = this.decode(prevKv.value, revision);
          return { object, deleted: true };
        }
        if (opts.dryRun || jsonEqual(next, current)) return { object: next, deleted: false };
        const written = await this.#store.update(key, this.#encode(next), kv.modRevision);
        return { object: this.decode(written.value, written.modRevision), deleted: false };
      } catch (err) {
        if (isStorageError(err, 'Conflict') && attempt < 10) continue;
        throw this.#writeError(err, name);
      }
    }
  }

  /**
   * Decides how a delete proceeds. Returns undefined to delete right away, or
   * the object to write back with deletionTimestamp set (finalizers pending,
   * or a pod's grace period for its kubelet).
   */
  #markForDeletion(current: KubeObject, opts: DeleteOptions): KubeObject | undefined {
    const next = deepCopy(current);
    const meta = next.metadata;
    if (!meta.deletionTimestamp) this.rt.prepareDelete?.(next);
    const finalizers = new Set(meta.finalizers ?? []);
    // An explicit policy overrides the garbage-collection finalizers already
    // there (upstream's deletionFinalizersForGarbageCollection): Background
    // removes both, so a pending orphan or foreground deletion can be
    // turned into an immediate one.
    const policy =
      opts.propagationPolicy ??
      (opts.orphanDependents === undefined ? undefined : opts.orphanDependents ? 'Orphan' : 'Background');
    if (policy === 'Orphan') {
      finalizers.add('orphan');
      finalizers.delete('foregroundDeletion');
    } else if (policy === 'Foreground') {
      finalizers.add('foregroundDeletion');
      finalizers.delete('orphan');
    } else if (policy === 'Background') {
      finalizers.delete('orphan');
      finalizers.delete('foregroundDeletion');
    }
    // Graceful deletion applies to pods a kubelet is running.
    let grace = 0;
    if (this.rt.kind === 'Pod' && this.rt.group === '') {
      const spec = (next.spec ?? {}) as { nodeName?: string; terminationGracePeriodSeconds?: number };
      const phase = (next.status as { phase?: string } | undefined)?.phase;
      const terminal = phase === 'Succeeded' || phase === 'Failed';
      grace = opts.gracePeriodSeconds ?? spec.terminationGracePeriodSeconds ?? 30;
      if (!spec.nodeName || terminal) grace = 0;
      if (meta.deletionGracePeriodSeconds !== undefined)
        grace = Math.min(grace, meta.deletionGracePeriodSeconds);
    }
    if (finalizers.size === 0 && grace === 0) return undefined;
    if (finalizers.size > 0) meta.finalizers = [...finalizers];
    if (!meta.deletionTimestamp || grace < (meta.deletionGracePeriodSeconds ?? Number.POSITIVE_INFINITY)) {
      meta.deletionTimestamp = rfc3339(new Date(this.#now().getTime() + grace * 1000));
      meta.deletionGracePeriodSeconds = grace;
    }
    if (grace === 0 && finalizers.size === 0) return undefined;
    // A pod whose grace is over but which still has finalizers waits for them.
    return next;
  }

  async deleteCollection(
    namespace: string | undefined,
    query: ListQuery,
    opts: DeleteOptions,
  ): Promise<KubeList> {
    const list = await this.list(namespace, { ...query, limit: 0 });
    const deleted: KubeObject[] = [];
    for (const item of list.items) {
      try {
        const r = await this.delete(item.metadata.namespace, item.metadata.name!, opts);
        deleted.push(r.object);
      } catch (err) {
        if (err instanceof ApiError && err.code === 404) continue;
        throw err;
      }
    }
    list.items = deleted;
    return list;
  }

  /** For handlers that must refuse writes in a terminating namespace. */
  static terminating(namespace: string): ApiError {
    return forbidden(`unable to create new content in namespace ${namespace} because it is being terminated`);
  }
}

/**
 * Finalizers that still hold an object marked for deletion: metadata's, and
 * for namespaces also spec.finalizers (removed through /finalize by the
 * namespace controller once the namespace is empty).
 */
function pendingFinalizers(obj: KubeObject): number {
  const spec = obj.kind === 'Namespace' ? ((obj.spec ?? {}) as { finalizers?: string[] }) : {};
  return (obj.metadata.finalizers ?? []).length + (spec.finalizers ?? []).length;
}

/** Everything but metadata and status: what a spec change means for generation. */
function specOf(obj: KubeObject): Record<string, unknown> {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = obj;
  return rest;
}

function withoutVolatile(obj: KubeObject): KubeObject {
  const managed = obj.metadata.managedFields?.map(({ time: _t, ...rest }) => rest);
  return { ...obj, metadata: { ...obj.metadata, managedFields: managed } };
}

function sample(): KubeObject {
  return { metadata: {}, spec: {}, status: {} };
}

export function parseResourceVersion(rv: string | undefined): number {
  if (rv === undefined || rv === '') return 0;
  if (!/^\d+$/.test(rv)) throw badRequest(`invalid resource version: ${JSON.stringify(rv)}`);
  return Number(rv);
}

function encodeApiContinue(rv: number, startAfter: string): string {
  return Buffer.from(JSON.stringify({ v: CONTINUE_VERSION, rv, start: startAfter })).toString('base64url');
}

function decodeApiContinue(token: string): { rv: number; start: string } {
  try {
    const t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as {
      v?: string;
      rv?: number;
      start?: string;
    };
    if (t.v !== CONTINUE_VERSION || typeof t.rv !== 'number' || typeof t.start !== 'string')
      throw new Error();
    return { rv: t.rv, start: t.start };
  } catch {
    throw badRequest(
      'continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)',
    );
  }
}

/**
 * A new object's stored value (what #encode writes), and its JSON once the
 * store has given it a resourceVersion, from one encoding: the object's
 * fields are written one by one as JSON.stringify would write them (own
 * keys in order, undefined values left out), so that the metadata's text
 * can be reused with the resourceVersion appended, where JSON.stringify
 * puts a key that was added last. Undefined when metadata already has a
 * resourceVersion key (it would not be last).
 */
function encodeParts(
  obj: KubeObject,
): { stored: string; withResourceVersion: (rv: string) => string } | undefined {
  if (Object.hasOwn(obj.metadata, 'resourceVersion')) return undefined;
  const before: string[] = [];
  const after: string[] = [];
  let metadata: string | undefined;
  for (const k of Object.keys(obj)) {
    const v = (obj as Record<string, unknown>)[k];
    if (k === 'metadata') {
      metadata = JSON.stringify(v);
      continue;
    }
    const text = JSON.stringify(v);
    if (text === undefined) continue;
    (metadata === undefined ? before : after).push(`${JSON.stringify(k)}:${text}`);
  }
  if (metadata === undefined) return undefined;
  const join = (meta: string) => `{${[...before, `"metadata":${meta}`, ...after].join(',')}}`;
  return {
    stored: join(metadata),
    withResourceVersion: (rv) =>
      join(`${metadata.slice(0, -1)}${metadata === '{}' ? '' : ','}"resourceVersion":${JSON.stringify(rv)}}`),
  };
}
