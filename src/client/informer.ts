// Informers, as client-go's reflector + indexer: list (every page at one
// resourceVersion), then watch from the list's resourceVersion with
// bookmarks; relist on 410 Gone/Expired; rewatch after a normal close;
// back off after errors. Handlers see adds, updates and deletes; readers use
// the indexer (a lister), never the API server.

import { isApiError } from '../api/errors.ts';
import type { KubeObject } from '../api/meta.ts';
import type { ResourceClient } from './client.ts';
import type { WatchHandle } from './transport.ts';

export type IndexFunc = (obj: KubeObject) => string[];

/** namespace/name, or name for cluster-scoped objects (client-go's MetaNamespaceKeyFunc). */
export const keyOf = (obj: KubeObject): string =>
  obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : (obj.metadata.name ?? '');

export const indexByNamespace: IndexFunc = (obj) => [obj.metadata.namespace ?? ''];
export const indexByControllerUID: IndexFunc = (obj) =>
  (obj.metadata.ownerReferences ?? []).filter((r) => r.controller).map((r) => r.uid);
export const indexByNodeName: IndexFunc = (obj) => {
  const node = (obj.spec as { nodeName?: string } | undefined)?.nodeName;
  return node ? [node] : [];
};

export class Indexer<T extends KubeObject = KubeObject> {
  readonly #items = new Map<string, T>();
  readonly #indexers: Record<string, IndexFunc>;
  readonly #indices = new Map<string, Map<string, Set<string>>>();

  constructor(indexers: Record<string, IndexFunc> = { namespace: indexByNamespace }) {
    this.#indexers = { ...indexers };
    for (const name of Object.keys(indexers)) this.#indices.set(name, new Map());
  }

  get(key: string): T | undefined {
    return this.#items.get(key);
  }

  /** Adds an index, indexing what is already stored. */
  addIndexer(name: string, fn: IndexFunc): void {
    if (this.#indexers[name]) {
      if (this.#indexers[name] !== fn) throw new Error(`indexer ${name} already exists`);
      return;
    }
    this.#indexers[name] = fn;
    const index = new Map<string, Set<string>>();
    this.#indices.set(name, index);
    for (const [key, obj] of this.#items) {
      for (const v of fn(obj)) {
        const set = index.get(v) ?? new Set<string>();
        index.set(v, set);
        set.add(key);
      }
    }
  }

  list(): T[] {
    return [...this.#items.values()];
  }

  keys(): string[] {
    return [...this.#items.keys()];
  }

  /** Objects whose index `name` yields `value`. */
  byIndex(name: string, value: string): T[] {
    const keys = this.#indices.get(name)?.get(value);
    if (!keys) return [];
    return [...keys].map((k) => this.#items.get(k)!).filter(Boolean);
  }

  set(obj: T): T | undefined {
    const key = keyOf(obj);
    const old = this.#items.get(key);
    if (old) this.#unindex(key, old);
    this.#items.set(key, obj);
    for (const [name, fn] of Object.entries(this.#indexers)) {
      const index = this.#indices.get(name)!;
      for (const v of fn(obj)) {
        let set = index.get(v);
        if (!set) {
          set = new Set();
          index.set(v, set);
        }
        set.add(key);
      }
    }
    return old;
  }

  delete(key: string): T | undefined {
    const old = this.#items.get(key);
    if (!old) return undefined;
    this.#unindex(key, old);
    this.#items.delete(key);
    return old;
  }

  #unindex(key: string, obj: T): void {
    for (const [name, fn] of Object.entries(this.#indexers)) {
      const index = this.#indices.get(name)!;
      for (const v of fn(obj)) {
        const set = index.get(v);
        set?.delete(key);
        if (set?.size === 0) index.delete(v);
      }
    }
  }
}

export interface InformerHandlers<T> {
  add?: (obj: T) => void;
  update?: (oldObj: T, newObj: T) => void;
  delete?: (obj: T) => void;
}

export interface InformerOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  indexers?: Record<string, IndexFunc>;
  /** Re-deliver every object as an update this often (0: never). */
  resyncMs?: number;
  /** Injected for tests: waits before retrying after an error. */
  delay?: (ms: number) => Promise<void>;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface Informer<T extends KubeObject> {
  readonly indexer: Indexer<T>;
  on(handlers: InformerHandlers<T>): void;
  /** Starts listing and watching; resolves once the first list is in the indexer. */
  start(): Promise<void>;
  stop(): void;
  hasSynced(): boolean;
  /** The resourceVersion the informer has seen up to. */
  readonly resourceVersion: string;
  /** How many times it listed (1 + relists after 410 or errors). */
  readonly lists: number;
}

export function createInformer<T extends KubeObject>(
  client: ResourceClient<T>,
  opts: InformerOptions = {},
): Informer<T> {
  const indexer = new Indexer<T>(opts.indexers);
  const handlers: InformerHandlers<T>[] = [];
  const delay = opts.delay ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let resourceVersion = '';
  let synced = false;
  let stopped = false;
  let lists = 0;
  let watch: WatchHandle | undefined;
  let resync: NodeJS.Timeout | undefined;
  let backoff = 0;
  let firstSync: (() => void) | undefined;

  const emit = {
    add: (o: T) => {
      for (const h of handlers) h.add?.(o);
    },
    update: (a: T, b: T) => {
      for (const h of handlers) h.update?.(a, b);
    },
    delete: (o: T) => {
      for (const h of handlers) h.delete?.(o);
    },
  };

  const list = async (): Promise<void> => {
    lists++;
    const items: T[] = [];
    let token: string | undefined;
    let rv = '';
    do {
      const page = await client.list(opts.namespace, {
        ...(opts.labelSelector ? { labelSelector: opts.labelSelector } : {}),
        ...(opts.fieldSelector ? { fieldSelector: opts.fieldSelector } : {}),
        limit: 500,
        ...(token ? { continue: token } : {}),
      });
      items.push(...page.items);
      rv ||= page.metadata.resourceVersion ?? '';
      token = page.metadata.continue;
    } while (token);
    // Replace the indexer's contents, telling handlers what changed.
    const seen = new Set<string>();
    for (const obj of items) {
      const key = keyOf(obj);
      seen.add(key);
      const old = indexer.set(obj);
      if (!old) emit.add(obj);
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) emit.update(old, obj);
    }
    for (const key of indexer.keys()) {
      if (!seen.has(key)) {
        const old = indexer.delete(key);
        if (old) emit.delete(old);
      }
    }
    resourceVersion = rv;
  };

  const run = async (relist: boolean): Promise<void> => {
    if (stopped) return;
    try {
      if (relist) await list();
      if (!synced) {
        synced = true;
        firstSync?.();
      }
    } catch (err) {
      // Keep retrying with backoff; start() resolves at the first success.
      opts.log?.('informer list failed', { resource: client.ref.plural, error: String(err) });
      await retryLater(true);
      return;
    }
    startWatch();
  };

  const retryLater = async (relist: boolean) => {
    backoff = Math.min(backoff ? backoff * 2 : 500, 30_000);
    await delay(backoff);
    await run(relist);
  };

  const startWatch = () => {
    if (stopped) return;
    let expired = false;
    let events = 0;
    const opened = Date.now();
    watch = client.watch(
      opts.namespace,
      {
        resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: 300 + Math.floor(Math.random() * 300),
        ...(opts.labelSelector ? { labelSelector: opts.labelSelector } : {}),
        ...(opts.fieldSelector ? { fieldSelector: opts.fieldSelector } : {}),
      },
      (event) => {
        backoff = 0;
        events++;
        if (event.type === 'ERROR') {
          const code = (event.object as { code?: number }).code;
          if (code === 410) expired = true;
          return;
        }
        const obj = event.object as T;
        if (obj.metadata?.resourceVersion) resourceVersion = obj.metadata.resourceVersion;
        if (event.type === 'BOOKMARK') return;
        const key = keyOf(obj);
        if (event.type === 'DELETED') {
          const old = indexer.delete(key);
          emit.delete(old ?? obj);
        } else {
          const old = indexer.set(obj);
          if (old) emit.update(old, obj);
          else emit.add(obj);
        }
      },
      (err) => {
        watch = undefined;
        if (stopped) return;
        if (expired || (err && (isApiError(err, 'Expired') || isApiError(err, 'Gone')))) {
          // The resourceVersion is history: start over from a fresh list.
          void run(true);
        } else if (err) {
          opts.log?.('informer watch failed', { resource: client.ref.plural, error: String(err) });
          void retryLater(false);
        } else if (events === 0 && Date.now() - opened < 1000) {
          // Closed at once with nothing said (a server going away): as
          // client-go's reflector does, treat it as an error and back off
          // rather than spin.
          void retryLater(false);
        } else {
          // A normal end (timeoutSeconds): carry on from where we were.
          startWatch();
        }
      },
    );
  };

  return {
    indexer,
    on(h) {
      handlers.push(h);
    },
    start() {
      const ready = new Promise<void>((resolve) => {
        firstSync = resolve;
      });
      void run(true);
      if (opts.resyncMs) {
        resync = setInterval(() => {
          for (const obj of indexer.list()) emit.update(obj, obj);
        }, opts.resyncMs);
        resync.unref();
      }
      return ready;
    },
    stop() {
      stopped = true;
      watch?.stop();
      if (resync) clearInterval(resync);
    },
    hasSynced: () => synced,
    get resourceVersion() {
      return resourceVersion;
    },
    get lists() {
      return lists;
    },
  };
}
