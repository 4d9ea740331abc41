// A client for one resource: the verbs, with paths built the way the API
// server routes them. Errors are ApiErrors carrying the server's Status.

import type { KubeList, KubeObject } from '../api/meta.ts';
import type { Transport, WatchEvent, WatchHandle } from './transport.ts';

export interface ResourceRef {
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: string;
}

export interface WatchOptions extends ListOptions {
  allowWatchBookmarks?: boolean;
  timeoutSeconds?: number;
}

export interface WriteOptions {
  dryRun?: boolean;
  fieldManager?: string;
}

export type PatchType = 'json' | 'merge' | 'strategic' | 'apply';

const patchContentType: Record<PatchType, string> = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
};

export interface DeleteOptions {
  propagationPolicy?: 'Orphan' | 'Background' | 'Foreground';
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
}

const str = (v: number | boolean | undefined) => (v === undefined ? undefined : String(v));

export class ResourceClient<T extends KubeObject = KubeObject> {
  readonly ref: ResourceRef;
  readonly #transport: Transport;

  constructor(transport: Transport, ref: ResourceRef) {
    this.#transport = transport;
    this.ref = ref;
  }

  /** The collection path: all namespaces when namespace is undefined. */
  path(namespace?: string, name?: string, subresource?: string): string {
    const base = this.ref.group ? `/apis/${this.ref.group}/${this.ref.version}` : `/api/${this.ref.version}`;
    const ns = this.ref.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
    const item = name ? `/${encodeURIComponent(name)}` : '';
    return `${base}${ns}/${this.ref.plural}${item}${subresource ? `/${subresource}` : ''}`;
  }

  #write(opts: WriteOptions | undefined) {
    return {
      ...(opts?.dryRun ? { dryRun: 'All' } : {}),
      ...(opts?.fieldManager ? { fieldManager: opts.fieldManager } : {}),
    };
  }

  async get(namespace: string | undefined, name: string): Promise<T> {
    return (await this.#transport.request({ method: 'GET', path: this.path(namespace, name) })).body as T;
  }

  async list(namespace?: string, opts: ListOptions = {}): Promise<KubeList<T>> {
    const query = { ...opts, limit: str(opts.limit) } as Record<string, string | undefined>;
    return (await this.#transport.request({ method: 'GET', path: this.path(namespace), query }))
      .body as KubeList<T>;
  }

  async create(namespace: string | undefined, obj: T, opts?: WriteOptions): Promise<T> {
    return (
      await this.#transport.request({
        method: 'POST',
        path: this.path(namespace),
        body: obj,
        query: this.#write(opts),
      })
    ).body as T;
  }

  /** POSTs to a subresource (serviceaccounts/<name>/token, pods/<name>/eviction, ...); returns its answer. */
  async createSubresource<R = unknown>(
    namespace: string | undefined,
    name: string,
    subresource: string,
    body: object,
  ): Promise<R> {
    return (
      await this.#transport.request({ method: 'POST', path: this.path(namespace, name, subresource), body })
    ).body as R;
  }

  async update(obj: T, opts?: WriteOptions): Promise<T> {
    const path = this.path(obj.metadata.namespace, obj.metadata.name);
    return (await this.#transport.request({ method: 'PUT', path, body: obj, query: this.#write(opts) }))
      .body as T;
  }

  /** Writes status through the status subresource (controllers' path). */
  async updateStatus(obj: T, opts?: WriteOptions): Promise<T> {
    return this.updateSubresource(obj, 'status', opts);
  }

  /** PUTs the whole object to a subresource that takes it (status, a CSR's approval). */
  async updateSubresource(obj: T, subresource: string, opts?: WriteOptions): Promise<T> {
    const path = this.path(obj.metadata.namespace, obj.metadata.name, subresource);
    return (await this.#transport.request({ method: 'PUT', path, body: obj, query: this.#write(opts) }))
      .body as T;
  }

  async patch(
    namespace: string | undefined,
    name: string,
    type: PatchType,
    patch: unknown,
    opts: WriteOptions & { subresource?: string; force?: boolean } = {},
  ): Promise<T> {
    const query = { ...this.#write(opts), ...(opts.force ? { force: 'true' } : {}) };
    const path = this.path(namespace, name, opts.subresource);
    return (
      await this.#transport.request({
        method: 'PATCH',
        path,
        body: patch,
        contentType: patchContentType[type],
        query,
      })
    ).body as T;
  }

  async delete(namespace: string | undefined, name: string, opts: DeleteOptions = {}): Promise<void> {
    const { dryRun, ...body } = opts;
    await this.#transport.request({
      method: 'DELETE',
      path: this.path(namespace, name),
      body: { kind: 'DeleteOptions', apiVersion: 'v1', ...body },
      query: dryRun ? { dryRun: 'All' } : {},
    });
  }

  watch(
    namespace: string | undefined,
    opts: WatchOptions,
    onEvent: (e: WatchEvent) => void,
    onClose: (err?: Error) => void,
  ): WatchHandle {
    const query = {
      ...opts,
      limit: str(opts.limit),
      allowWatchBookmarks: str(opts.allowWatchBookmarks),
      timeoutSeconds: str(opts.timeoutSeconds),
    } as Record<string, string | undefined>;
    return this.#transport.watch({ path: this.path(namespace), query }, onEvent, onClose);
  }
}
