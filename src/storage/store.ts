// The revisioned key-value store every Skiff resource lives in.
//
// The interface mirrors etcd v3 (and kine's nine-method shim): one global
// revision that rises with every write, compare-and-swap updates on a key's
// mod revision, watches that resume from any revision not yet compacted.
// The apiserver maps Kubernetes' resourceVersion straight onto it:
// resourceVersion == modRevision, list resourceVersion == store revision.
//
// Three backends implement it: memory/ (unit tests), sqlite/ (embedded
// default) and etcd/ (HA). One contract suite (store.case.ts) runs against
// all of them, so they cannot drift apart.

/** One version of one key. */
export interface KeyValue {
  key: string;
  value: string;
  /** Revision of the write that created this incarnation of the key. */
  createRevision: number;
  /** Revision of the write that produced this version (the resourceVersion). */
  modRevision: number;
}

export interface GetOptions {
  /** Read as of this revision; defaults to the current one. */
  revision?: number;
}

export interface ListOptions {
  /** At most this many items; 0 or unset means all. */
  limit?: number;
  /**
   * An opaque token from a previous ListResult. The next page is read at
   * the same revision as the first, so all pages form one snapshot.
   */
  continue?: string;
  /** Read as of this revision; defaults to the current one. Ignored with `continue`. */
  revision?: number;
}

export interface ListResult {
  items: KeyValue[];
  /** The revision this list was read at. */
  revision: number;
  /** Set when more items remain; pass it back as ListOptions.continue. */
  continue?: string;
  /** How many items remain after this page (0 when none). */
  remaining: number;
}

export type WatchEventType = 'create' | 'update' | 'delete';

export interface WatchEvent {
  type: WatchEventType;
  /** The new version; for a delete, the deleted key with the delete's revision as modRevision. */
  kv: KeyValue;
  /** The version before this event (undefined for a create). */
  prevKv?: KeyValue;
  /** The revision of this event (== kv.modRevision). */
  revision: number;
}

export interface WatchOptions {
  /** Deliver every event with revision > afterRevision. Defaults to the current revision. */
  afterRevision?: number;
  /** Called with events in revision order, each event exactly once. */
  onEvents: (events: WatchEvent[]) => void;
  /**
   * Called once when the watch can no longer continue (for example
   * Compacted when afterRevision is too old). No events follow it.
   */
  onError: (err: StorageError) => void;
  /**
   * Called after requestProgress(): every event up to `revision` has been
   * passed to onEvents. etcd calls this a progress notification.
   */
  onProgress?: (revision: number) => void;
}

export interface Watch {
  /** Stops delivery. Safe to call more than once. */
  cancel(): void;
  /**
   * Asks for an onProgress call once every event up to the store's current
   * revision has been delivered. Optional: a backend without it makes the
   * apiserver read lists from the store instead of its watch cache.
   */
  requestProgress?(): void;
}

export interface Store {
  get(key: string, opts?: GetOptions): Promise<KeyValue | undefined>;
  /** Keys starting with prefix, in key order. */
  list(prefix: string, opts?: ListOptions): Promise<ListResult>;
  /** How many keys start with prefix, at the current revision. */
  count(prefix: string): Promise<number>;
  /** Fails with KeyExists when the key exists. */
  create(key: string, value: string): Promise<KeyValue>;
  /**
   * Compare-and-swap: succeeds only when the key's modRevision equals
   * expectedModRevision. Fails with NotFound or Conflict (carrying the
   * current value, so callers can retry without another read).
   */
  update(key: string, value: string, expectedModRevision: number): Promise<KeyValue>;
  /**
   * Deletes the key, compare-and-swap when expectedModRevision is given.
   * Returns the deleted version, with modRevision set to the delete's revision.
   */
  delete(key: string, expectedModRevision?: number): Promise<{ prevKv: KeyValue; revision: number }>;
  watch(prefix: string, opts: WatchOptions): Watch;
  currentRevision(): Promise<number>;
  /** The oldest revision reads and watches can still start from, minus one. */
  compactedRevision(): Promise<number>;
  /** Discards history at and below revision; the latest version of every key stays. */
  compact(revision: number): Promise<void>;
  close(): Promise<void>;
}

export type StorageErrorCode = 'KeyExists' | 'Conflict' | 'NotFound' | 'Compacted' | 'FutureRevision';

/** A typed store error. Codes are etcd's, so every backend reports the same. */
export class StorageError extends Error {
  readonly code: StorageErrorCode;
  readonly key: string | undefined;
  /** For Conflict: the current version of the key. */
  readonly current: KeyValue | undefined;
  /** For Compacted: the compacted revision. For FutureRevision: the current one. */
  readonly revision: number | undefined;

  constructor(
    code: StorageErrorCode,
    message: string,
    extra: { key?: string; current?: KeyValue; revision?: number } = {},
  ) {
    super(message);
    this.name = 'StorageError';
    this.code = code;
    this.key = extra.key;
    this.current = extra.current;
    this.revision = extra.revision;
  }
}

export const isStorageError = (err: unknown, code?: StorageErrorCode): err is StorageError =>
  err instanceof StorageError && (code === undefined || err.code === code);

export const errKeyExists = (key: string) =>
  new StorageError('KeyExists', `key already exists: ${key}`, { key });
export const errNotFound = (key: string) => new StorageError('NotFound', `key not found: ${key}`, { key });
export const errConflict = (key: string, current: KeyValue) =>
  new StorageError(
    'Conflict',
    `key ${key} was modified (expected an older modRevision, current is ${current.modRevision})`,
    {
      key,
      current,
    },
  );
export const errCompacted = (requested: number, compacted: number) =>
  new StorageError(
    'Compacted',
    `revision ${requested} has been compacted (oldest available is ${compacted + 1})`,
    {
      revision: compacted,
    },
  );
export const errFutureRevision = (requested: number, current: number) =>
  new StorageError('FutureRevision', `revision ${requested} is newer than the current revision ${current}`, {
    revision: current,
  });

// Continue tokens carry the snapshot revision and the last key returned, so
// the next page starts just after it at the same revision. The format is
// opaque to callers (base64url JSON), like the apiserver's own tokens.
interface ContinueToken {
  rev: number;
  after: string;
}

export function encodeContinue(revision: number, lastKey: string): string {
  return Buffer.from(JSON.stringify({ rev: revision, after: lastKey } satisfies ContinueToken)).toString(
    'base64url',
  );
}

export function decodeContinue(token: string): ContinueToken {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidContinueError(token);
  }
  const t = parsed as Partial<ContinueToken> | null;
  if (!t || typeof t.rev !== 'number' || typeof t.after !== 'string' || t.rev < 0) {
    throw new InvalidContinueError(token);
  }
  return { rev: t.rev, after: t.after };
}

export class InvalidContinueError extends Error {
  constructor(token: string) {
    super(`invalid continue token ${JSON.stringify(token.slice(0, 40))}`);
    this.name = 'InvalidContinueError';
  }
}

/** The smallest key greater than every key with this prefix (etcd's range_end). */
export function prefixEnd(prefix: string): string {
  // Keys are ASCII paths in practice; bumping the last code unit is exact for
  // UTF-16 ordering, which is how JS compares and how we store keys.
  if (prefix === '') return '\uffff';
  const last = prefix.charCodeAt(prefix.length - 1);
  return prefix.slice(0, -1) + String.fromCharCode(last + 1);
}
