// The CRD controller of the API server: upstream's apiextensions-apiserver
// controllers in one place, run inside the server because what they change
// is the server's own registry.
//
// - naming (NamingConditionController): a CRD's names are accepted unless
//   another CRD of the group already has them; NamesAccepted says which.
// - establishing (EstablishingController): once the names are accepted the
//   kind is served (registry entries from custom-resource.ts), and only
//   then Established is True, so a client that waits for it finds the kind.
// - finalizing (CRDFinalizer): a CRD marked for deletion has its objects
//   deleted first, then its finalizer removed; the kind stops being served
//   when the CRD is gone.
//
// It reacts to the CRDs' watch, so a new CRD is served at once.

import type { KubeObject } from '../api/meta.ts';
import type { Registry, ResourceType } from '../api/registry.ts';
import type { ResourceStorage } from '../apiserver/rest.ts';
import { setCondition } from './crd-resource.ts';
import { type CustomResourceOptions, customResourceTypes } from './custom-resource.ts';
import {
  CLEANUP_FINALIZER,
  type CustomResourceDefinition,
  type CustomResourceDefinitionNames,
  conditionOf,
  GROUP,
} from './types.ts';

export interface CRDHost {
  registry: Registry;
  storage(group: string, version: string, plural: string): ResourceStorage | undefined;
  log: (msg: string, fields?: Record<string, unknown>) => void;
  now: () => Date;
}

export interface CRDControllerOptions extends CustomResourceOptions {
  /** How long to wait before looking again at objects that still hold a CRD's deletion (default 1 s). */
  cleanupRetryMs?: number;
}

interface Served {
  /** What the entries were built from: a change rebuilds them. */
  key: string;
  types: ResourceType[];
}

export class CRDController {
  readonly #host: CRDHost;
  readonly #opts: CRDControllerOptions;
  readonly #served = new Map<string, Served>();
  #queue: Promise<void> = Promise.resolve();
  #stopWatch: (() => void) | undefined;
  #stopped = false;
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(host: CRDHost, opts: CRDControllerOptions = {}) {
    this.#host = host;
    this.#opts = opts;
  }

  get #crds(): ResourceStorage {
    return this.#host.storage(GROUP, 'v1', 'customresourcedefinitions')!;
  }

  /** Serves every CRD there is, then follows their changes. */
  async start(): Promise<void> {
    await this.#watch();
    await this.#queue;
  }

  stop(): void {
    this.#stopped = true;
    this.#stopWatch?.();
    for (const t of this.#timers) clearTimeout(t);
  }

  async #watch(): Promise<void> {
    const w = await this.#crds.watch(
      undefined,
      { resourceVersion: '0' },
      (events) => {
        for (const e of events)
          this.#enqueue(e.type === 'DELETED' ? undefined : e.object, e.object.metadata.name!);
      },
      () => {
        // The watch ended (cache reset or stop): resume with a fresh replay.
        if (!this.#stopped)
          setImmediate(
            () => void this.#watch().catch((err) => this.#host.log('crd watch failed', { err: String(err) })),
          );
      },
    );
    this.#stopWatch = w.stop;
  }

  #enqueue(crd: KubeObject | undefined, name: string): void {
    this.#queue = this.#queue
      .then(() => this.#sync(crd as CustomResourceDefinition | undefined, name))
      .catch((err) => this.#host.log('crd sync failed', { crd: name, err: String(err) }));
  }

  /** Waits for the events seen so far to be handled (tests, start). */
  idle(): Promise<void> {
    return this.#queue;
  }

  async #sync(crd: CustomResourceDefinition | undefined, name: string): Promise<void> {
    if (this.#stopped) return;
    if (!crd) return this.#unserve(name);
    const conflict = this.#nameConflict(crd);
    if (!conflict) this.#serve(crd);
    // A CRD being deleted still serves its objects (to delete them) but takes no new ones.
    for (const t of this.#served.get(name)?.types ?? [])
      t.terminating = crd.metadata.deletionTimestamp !== undefined;
    await this.#writeStatus(crd, conflict);
    if (crd.metadata.deletionTimestamp && crd.metadata.finalizers?.includes(CLEANUP_FINALIZER)) {
      await this.#cleanup(crd);
    }
  }

  /** The first name of crd that another CRD of its group has accepted, as upstream's message says it. */
  #nameConflict(crd: CustomResourceDefinition): string | undefined {
    const names = crd.spec.names;
    const others = this.#crds.cache
      .list()
      .map((o) => o as CustomResourceDefinition)
      .filter((o) => o.metadata.name !== crd.metadata.name && o.spec.group === crd.spec.group);
    const taken = (pick: (n: CustomResourceDefinitionNames) => Array<string | undefined>) =>
      new Set(others.flatMap((o) => (o.status?.acceptedNames ? pick(o.status.acceptedNames) : [])));
    const all = (n: CustomResourceDefinitionNames) => [n.plural, n.singular, ...(n.shortNames ?? [])];
    const resourceNames = taken(all);
    const kinds = taken((n) => [n.kind, n.listKind]);
    if (resourceNames.has(names.plural)) return `"${names.plural}" is already in use`;
    if (names.singular && resourceNames.has(names.singular)) return `"${names.singular}" is already in use`;
    for (const s of names.shortNames ?? []) if (resourceNames.has(s)) return `"${s}" is already in use`;
    if (kinds.has(names.kind)) return `"${names.kind}" is already in use`;
    if (names.listKind && kinds.has(names.listKind)) return `"${names.listKind}" is already in use`;
    return undefined;
  }

  #serve(crd: CustomResourceDefinition): void {
    const name = crd.metadata.name!;
    const key = JSON.stringify([crd.spec, crd.status?.storedVersions ?? []]);
    const before = this.#served.get(name);
    if (before?.key === key) return;
    const types = customResourceTypes(crd, this.#opts);
    const kept = new Set(types.map((t) => `${t.group}/${t.version}/${t.plural}`));
    for (const t of before?.types ?? []) {
      if (!kept.has(`${t.group}/${t.version}/${t.plural}`))
        this.#host.registry.remove(t.group, t.version, t.plural);
    }
    for (const t of types) this.#host.registry.add(t);
    this.#served.set(name, { key, types });
  }

  #unserve(name: string): void {
    const served = this.#served.get(name);
    if (!served) return;
    for (const t of served.types) this.#host.registry.remove(t.group, t.version, t.plural);
    this.#served.delete(name);
  }

  async #writeStatus(crd: CustomResourceDefinition, conflict: string | undefined): Promise<void> {
    const now = this.#host.now();
    await this.#crds
      .guaranteedUpdate(
        undefined,
        crd.metadata.name!,
        (current) => {
          const next = current as CustomResourceDefinition;
          next.status ??= {};
          if (conflict) {
            setCondition(
              next,
              { type: 'NamesAccepted', status: 'False', reason: 'NameConflict', message: conflict },
              now,
            );
            if (conditionOf(next, 'Established')?.status !== 'True') {
              setCondition(
                next,
                {
                  type: 'Established',
                  status: 'False',
                  reason: 'NotAccepted',
                  message: 'not all names are accepted',
                },
                now,
              );
            }
          } else {
            next.status.acceptedNames = { ...next.spec.names };
            setCondition(
              next,
              { type: 'NamesAccepted', status: 'True', reason: 'NoConflicts', message: 'no conflicts found' },
              now,
            );
            setCondition(
              next,
              {
                type: 'Established',
                status: 'True',
                reason: 'InitialNamesAccepted',
                message: 'the initial names have been accepted',
              },
              now,
            );
          }
          return next;
        },
        { subresource: 'status' },
      )
      .catch((err) => {
        // A CRD deleted meanwhile has nothing left to report.
        if ((err as { code?: number }).code !== 404) throw err;
      });
  }

  /** Deletes the CRD's objects; once none is left, lets the CRD go. */
  async #cleanup(crd: CustomResourceDefinition): Promise<void> {
    const served = this.#served.get(crd.metadata.name!);
    const storageVersion = crd.spec.versions.find((v) => v.storage)?.name;
    const storage =
      served && storageVersion
        ? this.#host.storage(crd.spec.group, storageVersion, crd.spec.names.plural)
        : undefined;
    if (storage) {
      const list = await storage.list(undefined, {});
      for (const item of list.items) {
        await storage.delete(item.metadata.namespace, item.metadata.name!, {}).catch(() => undefined);
      }
      const left = (await storage.list(undefined, {})).items.length;
      if (left > 0) {
        await this.#setTerminating(
          crd,
          'InstanceDeletionInProgress',
          `CustomResource deletion is in progress`,
        );
        this.#retry(crd.metadata.name!);
        return;
      }
    }
    await this.#crds.guaranteedUpdate(
      undefined,
      crd.metadata.name!,
      (current) => {
        current.metadata.finalizers = (current.metadata.finalizers ?? []).filter(
          (f) => f !== CLEANUP_FINALIZER,
        );
        return current;
      },
      {},
    );
  }

  async #setTerminating(crd: CustomResourceDefinition, reason: string, message: string): Promise<void> {
    await this.#crds.guaranteedUpdate(
      undefined,
      crd.metadata.name!,
      (current) => {
        setCondition(
          current as CustomResourceDefinition,
          { type: 'Terminating', status: 'True', reason, message },
          this.#host.now(),
        );
        return current;
      },
      { subresource: 'status' },
    );
  }

  #retry(name: string): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      const crd = this.#crds.cache.list().find((o) => o.metadata.name === name);
      if (crd) this.#enqueue(crd, name);
    }, this.#opts.cleanupRetryMs ?? 1000);
    this.#timers.add(t);
  }
}
