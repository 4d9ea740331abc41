// A Store that times every read and write it passes on, for the API
// server's etcd_request_duration_seconds (upstream times each call of its
// etcd3 store the same way: k8s.io/apiserver/pkg/storage/etcd3/store.go,
// metrics.RecordEtcdRequest). Failed calls are timed too, as upstream's.

import type { Store } from './store.ts';

/** Told of each call: the operation (get, list, count, create, update, delete), the key or prefix, and how long it took. */
export type StoreObserver = (operation: string, key: string, seconds: number) => void;

export function instrumentStore(store: Store, observe: StoreObserver): Store {
  const timed = <T>(operation: string, key: string, call: Promise<T>): Promise<T> => {
    const started = performance.now();
    const done = () => observe(operation, key, (performance.now() - started) / 1000);
    call.then(done, done);
    return call;
  };
  return {
    get: (key, opts) => timed('get', key, store.get(key, opts)),
    list: (prefix, opts) => timed('list', prefix, store.list(prefix, opts)),
    count: (prefix) => timed('count', prefix, store.count(prefix)),
    create: (key, value) => timed('create', key, store.create(key, value)),
    update: (key, value, rev) => timed('update', key, store.update(key, value, rev)),
    delete: (key, rev) => timed('delete', key, store.delete(key, rev)),
    watch: (prefix, opts) => store.watch(prefix, opts),
    currentRevision: () => store.currentRevision(),
    compactedRevision: () => store.compactedRevision(),
    compact: (revision) => store.compact(revision),
    close: () => store.close(),
  };
}
