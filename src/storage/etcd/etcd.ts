// The etcd Store: the HA backend. The Store interface was modelled on etcd
// v3, so most methods are one etcd request; the work here is in the edges
// etcd leaves to clients: mapping its errors onto StorageError, namespacing
// keys, finding the compacted revision, failing over between members, and
// resuming watches without losing or repeating an event.
//
// We talk to etcd's raw KV and Watch gRPC APIs (client.kv, client.watchClient)
// rather than etcd3's builders, because the builders hide revisions, and
// etcd3's watch manager resumes from the response header revision, which can
// skip events when a catch-up is cut short by a reconnect.

import {
  Etcd3,
  type ICompare,
  type IKeyValue,
  type IOptions,
  type IRangeRequest,
  type IWatchResponse,
  isRecoverableError,
} from 'etcd3';
import {
  decodeContinue,
  encodeContinue,
  errCompacted,
  errConflict,
  errFutureRevision,
  errKeyExists,
  errNotFound,
  type GetOptions,
  type KeyValue,
  type ListOptions,
  type ListResult,
  StorageError,
  type Store,
  type Watch,
  type WatchEvent,
  type WatchOptions,
} from '../store.ts';

export interface EtcdStoreOptions {
  /** Client URLs of the etcd members, e.g. http://127.0.0.1:2379. */
  endpoints: string[];
  /**
   * Prepended to every key inside etcd, so several Skiff clusters (or other
   * users) can share one etcd. Keys and watch events never show it.
   */
  prefix?: string;
  /**
   * Deadline for one attempt at one member (default 5 s). A request a
   * member accepted just before its leader died waits for etcd's own
   * timeout (5 s + 2 election timeouts) unless we give up on it first and
   * retry elsewhere; lower it to fail over faster, at the price of more
   * ambiguous retries (see retryWhileUnavailable) when etcd is merely slow.
   */
  requestTimeoutMs?: number;
  /**
   * How long an operation keeps retrying across members while etcd is
   * unavailable (a member died, a leader election is running) before it
   * fails (default 15 s).
   */
  retryForMs?: number;
  /** TLS to etcd (https:// endpoints): the CA to verify members with, and a client certificate. */
  tls?: { ca: Buffer; cert?: Buffer; key?: Buffer };
}

// etcd reports these as plain gRPC errors; the message is the only stable
// part across versions (the gRPC code is OutOfRange for both).
const COMPACTED = 'required revision has been compacted';
const FUTURE = 'required revision is a future revision';
const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));
const isCompactedError = (err: unknown) => messageOf(err).includes(COMPACTED);
const isFutureError = (err: unknown) => messageOf(err).includes(FUTURE);

type Policy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

/** Raised by the host gate; retryable, it means "try another member". */
class MemberCoolingDown extends Error {
  constructor(host: string) {
    super(`etcd member ${host} failed recently; not retrying it yet`);
    this.name = 'MemberCoolingDown';
  }
}

// etcd3's fault handling is built on cockatiel policies. We supply our own
// two small ones instead of its defaults: the default circuit breaker stays
// open for 5 s once tripped, which with a single etcd turns a blip into 5 s
// of errors, and the default global retry gives up after three immediate
// attempts, which is shorter than a leader election.
function policy(execute: Policy['execute']): Policy {
  const noEvent = () => ({ dispose() {} });
  return { _altReturn: undefined as never, onSuccess: noEvent, onFailure: noEvent, execute };
}

/**
 * Per member: after a connection-level failure, skip the member for a
 * moment so the retries go to the others instead of waiting on a dead one.
 */
function memberGate(host: string, cooldownMs: number): Policy {
  let downUntil = 0;
  return policy(async (fn) => {
    if (Date.now() < downUntil) throw new MemberCoolingDown(host);
    try {
      return await fn({ signal: new AbortController().signal });
    } catch (err) {
      // Cancelled says nothing about the member's health (it is how a
      // watch stream ends), and etcd's own errors mean it answered.
      if (err instanceof Error && isRecoverableError(err) && err.name !== 'GRPCCancelledError') {
        downUntil = Date.now() + cooldownMs;
      }
      throw err;
    }
  });
}

/**
 * Retries an operation while etcd is unavailable. Each attempt goes to the
 * next member in etcd3's shuffled order, so a dead member costs one attempt.
 *
 * A retried write can be ambiguous: if the first attempt committed but its
 * answer was lost, the retry reports KeyExists (create) or Conflict carrying
 * our own write (update/delete). That is the usual etcd client trade-off;
 * giving up instead would be just as ambiguous, and less available.
 */
function retryWhileUnavailable(retryForMs: number): Policy {
  return policy(async (fn) => {
    const deadline = Date.now() + retryForMs;
    let delay = 10;
    for (;;) {
      try {
        return await fn({ signal: new AbortController().signal });
      } catch (err) {
        const transient =
          err instanceof MemberCoolingDown || (err instanceof Error && isRecoverableError(err));
        if (!transient || Date.now() + delay > deadline) throw err;
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 500);
      }
    }
  });
}

/** The smallest byte string greater than every key starting with `prefix`. */
function bytesPrefixEnd(prefix: Buffer): Buffer {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i]! < 0xff) {
      const end = Buffer.from(prefix.subarray(0, i + 1));
      end[i] = end[i]! + 1;
      return end;
    }
  }
  // etcd reads a range_end of "\0" as "no upper bound".
  return Buffer.from([0]);
}

/** Keys per range request when listing (keeps each gRPC response small). */
const LIST_CHUNK = 500;

export async function createEtcdStore(opts: EtcdStoreOptions): Promise<Store> {
  if (opts.endpoints.length === 0) throw new Error('createEtcdStore: no endpoints');
  const ns = opts.prefix ?? '';
  const nsBytes = Buffer.from(ns, 'utf8');
  const requestTimeoutMs = opts.requestTimeoutMs ?? 5_000;

  const client = new Etcd3({
    hosts: opts.endpoints,
    ...(opts.tls
      ? {
          credentials: {
            rootCertificate: opts.tls.ca,
            ...(opts.tls.key ? { privateKey: opts.tls.key } : {}),
            ...(opts.tls.cert ? { certChain: opts.tls.cert } : {}),
          },
        }
      : {}),
    // Without a deadline a request to a member that is alive but cut off
    // would hang forever instead of failing over. Streams (watches) are
    // long-lived by design, and a physical compaction of a big database may
    // legitimately take longer than a normal request.
    defaultCallOptions: (ctx) =>
      ctx.isStream || ctx.method === 'compact' ? {} : { deadline: Date.now() + requestTimeoutMs },
    faultHandling: {
      host: (host) => memberGate(host, 1000),
      global: retryWhileUnavailable(opts.retryForMs ?? 15_000),
    },
  });

  const keyBytes = (key: string) => Buffer.from(ns + key, 'utf8');
  const userKey = (raw: Buffer) => raw.toString('utf8').slice(ns.length);
  const toKv = (kv: IKeyValue): KeyValue => ({
    key: userKey(kv.key),
    value: kv.value.toString('utf8'),
    createRevision: Number(kv.create_revision),
    modRevision: Number(kv.mod_revision),
  });
  // etcd rejects an empty key, and with no prefix "" is where "everything"
  // starts; "\0" is the smallest non-empty key.
  const rangeStart = (b: Buffer) => (b.length === 0 ? Buffer.from([0]) : b);
  // The key for requests that only want a header revision, or to learn
  // whether a revision is still readable. Any key would do: they are
  // count_only, so they cost one index lookup whatever is stored there.
  const probeKey = Buffer.concat([nsBytes, Buffer.from([0])]);

  // A lower bound on etcd's compacted revision, raised by our own compactions
  // and by what watches and probes learn; compactedRevision() refines it.
  let knownCompacted = 0;
  let closed = false;
  const watches = new Set<EtcdWatch>();

  const currentRevision = async (): Promise<number> => {
    const res = await client.kv.range({ key: probeKey, count_only: true });
    return Number(res.header.revision);
  };

  /** Whether reads at `rev` still work, i.e. rev >= the compacted revision. */
  const readableAt = async (rev: number): Promise<boolean> => {
    try {
      await client.kv.range({ key: probeKey, count_only: true, revision: rev });
      return true;
    } catch (err) {
      if (isCompactedError(err)) return false;
      throw err;
    }
  };

  const compactedRevision = async (): Promise<number> => {
    // etcd does not report its compacted revision directly (the error
    // carries no number, and HashKV would scan the whole database), but
    // "a read at rev fails" is monotonic in rev, so a binary search over
    // reads finds it. In the common case this process did the last
    // compaction and the first probe confirms knownCompacted.
    const floor = Math.max(knownCompacted, 1);
    // Reads at 1 succeed both when nothing was compacted and when revision 1
    // was: the two are indistinguishable, and behave the same for every read
    // and watch, so report the lower bound.
    if (await readableAt(floor)) return knownCompacted;
    for (let attempt = 0; ; attempt++) {
      let lo = floor; // not readable
      let hi = await currentRevision(); // readable unless a compaction just overtook us
      if (!(await readableAt(hi))) {
        if (attempt < 5) continue;
        throw new Error(`etcd compaction keeps outrunning revision ${hi}`);
      }
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (await readableAt(mid)) hi = mid;
        else lo = mid;
      }
      knownCompacted = Math.max(knownCompacted, hi);
      return hi;
    }
  };

  /** Turns etcd's revision errors into StorageErrors with the numbers filled in. */
  const mapRevisionError = async (err: unknown, requested: number): Promise<unknown> => {
    if (isCompactedError(err)) return errCompacted(requested, await compactedRevision());
    if (isFutureError(err)) return errFutureRevision(requested, await currentRevision());
    return err;
  };

  const rangeAt = async (req: IRangeRequest, revision: number) => {
    try {
      return await client.kv.range(revision > 0 ? { ...req, revision } : req);
    } catch (err) {
      throw await mapRevisionError(err, revision);
    }
  };

  const exists = (key: Buffer): ICompare => ({
    key,
    target: 'Create',
    result: 'Greater',
    create_revision: 0,
  });

  class EtcdWatch implements Watch {
    readonly #prefix: string;
    readonly #opts: WatchOptions;
    #nextRevision = 0;
    #stream: Awaited<ReturnType<typeof client.watchClient.watch>> | undefined;
    #timer: NodeJS.Timeout | undefined;
    // Stopped: no more streams or retries. Silenced: no more callbacks.
    // They differ after a failure, when events already received still go
    // out ahead of the error.
    #stopped = false;
    #silenced = false;
    #retryDelay = 50;

    constructor(prefix: string, watchOpts: WatchOptions) {
      this.#prefix = prefix;
      this.#opts = watchOpts;
      watches.add(this);
      void this.#start();
    }

    cancel(): void {
      this.#silenced = true;
      this.#stop();
    }

    #stop(): void {
      if (this.#stopped) return;
      this.#stopped = true;
      watches.delete(this);
      clearTimeout(this.#timer);
      this.#closeStream();
    }

    async #start(): Promise<void> {
      let after = this.#opts.afterRevision;
      try {
        if (after === undefined) after = await currentRevision();
        // Check the start like a read would: etcd itself would accept a
        // future revision (and wait for it), and would accept a start one
        // below the compacted revision; the Store contract rejects both.
        else if (after > 0) await rangeAt({ key: probeKey, count_only: true }, after);
      } catch (err) {
        if (err instanceof StorageError) this.#fail(err);
        else this.#scheduleReconnect();
        return;
      }
      this.#nextRevision = after + 1;
      this.#connect();
    }

    #connect(): void {
      if (this.#stopped) return;
      client.watchClient.watch().then(
        (stream) => {
          if (this.#stopped) {
            stream.end();
            stream.cancel();
            return;
          }
          this.#stream = stream;
          let ended = false;
          const lost = () => {
            if (ended || this.#stream !== stream) return;
            ended = true;
            this.#stream = undefined;
            this.#scheduleReconnect();
          };
          stream.on('data', (res) => {
            // A stream we gave up on may still flush what it had buffered.
            if (this.#stream === stream) this.#onResponse(res);
          });
          stream.on('error', lost);
          stream.on('end', lost);
          stream.write({
            create_request: {
              key: rangeStart(keyBytes(this.#prefix)),
              range_end: bytesPrefixEnd(keyBytes(this.#prefix)),
              start_revision: this.#nextRevision,
              prev_kv: true,
            },
          });
        },
        () => this.#scheduleReconnect(),
      );
    }

    #onResponse(res: IWatchResponse): void {
      if (this.#stopped) return;
      if (res.canceled) {
        const compactedAt = Number(res.compact_revision);
        if (compactedAt > 0) {
          knownCompacted = Math.max(knownCompacted, compactedAt);
          this.#fail(errCompacted(this.#nextRevision - 1, compactedAt));
        } else if (res.cancel_reason.includes(FUTURE)) {
          this.#fail(errFutureRevision(this.#nextRevision - 1, Number(res.header.revision)));
        } else {
          // Any other cancel is not about the revision we asked for (etcd
          // reports those two above); treat it like a broken stream and
          // resume from where we are, on whichever member answers.
          this.#closeStream();
          this.#scheduleReconnect();
        }
        return;
      }
      if (res.created) this.#retryDelay = 50;
      if (res.events.length === 0) return;
      const batch: WatchEvent[] = [];
      for (const ev of res.events) {
        const revision = Number(ev.kv.mod_revision);
        if (ev.type === 'Delete') {
          // etcd's delete event carries only the key and the delete's
          // revision; the deleted version comes from prev_kv. prev_kv can
          // be missing only if history was compacted under a lagging watch.
          const prevKv = ev.prev_kv ? toKv(ev.prev_kv) : undefined;
          const kv: KeyValue = prevKv
            ? { ...prevKv, modRevision: revision }
            : { key: userKey(ev.kv.key), value: '', createRevision: 0, modRevision: revision };
          batch.push(prevKv ? { type: 'delete', kv, prevKv, revision } : { type: 'delete', kv, revision });
        } else {
          const kv = toKv(ev.kv);
          if (kv.createRevision === kv.modRevision) batch.push({ type: 'create', kv, revision });
          else if (ev.prev_kv) batch.push({ type: 'update', kv, prevKv: toKv(ev.prev_kv), revision });
          else batch.push({ type: 'update', kv, revision });
        }
      }
      // etcd never splits one revision across responses, so resuming just
      // past the last event delivered neither repeats nor skips anything.
      this.#nextRevision = batch.at(-1)!.revision + 1;
      // Delivered from a microtask, as the other backends do, so a callback
      // that throws surfaces as an uncaught error rather than being taken
      // for a broken stream by gRPC.
      queueMicrotask(() => {
        if (!this.#silenced) this.#opts.onEvents(batch);
      });
    }

    #fail(err: StorageError): void {
      if (this.#stopped) return;
      this.#stop();
      // Queued behind any events still on their way out, and silenced
      // after, so the error is the last callback and comes once.
      queueMicrotask(() => {
        if (this.#silenced) return;
        this.#silenced = true;
        this.#opts.onError(err);
      });
    }

    #scheduleReconnect(): void {
      if (this.#stopped || closed) return;
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => {
        if (this.#nextRevision === 0) void this.#start();
        else this.#connect();
      }, this.#retryDelay);
      this.#retryDelay = Math.min(this.#retryDelay * 2, 2000);
    }

    #closeStream(): void {
      const stream = this.#stream;
      this.#stream = undefined;
      if (!stream) return;
      // Half-close first: etcd3 treats an error on a still-writable stream
      // as a failed member, and our own cancel surfaces as such an error.
      stream.end();
      stream.cancel();
    }
  }

  try {
    // Fail at open, not at first use, when no member is reachable.
    await currentRevision();
  } catch (err) {
    client.close();
    throw err;
  }

  const store: Store = {
    async get(key: string, getOpts: GetOptions = {}) {
      const res = await rangeAt({ key: keyBytes(key) }, getOpts.revision ?? 0);
      const kv = res.kvs[0];
      return kv ? toKv(kv) : undefined;
    },

    async list(prefix: string, listOpts: ListOptions = {}): Promise<ListResult> {
      let revision = listOpts.revision ?? 0;
      let start = rangeStart(keyBytes(prefix));
      if (listOpts.continue) {
        const token = decodeContinue(listOpts.continue);
        revision = token.rev;
        // Strictly after the last key returned: the smallest larger key is
        // that key followed by a zero byte.
        const after = Buffer.concat([keyBytes(token.after), Buffer.from([0])]);
        if (Buffer.compare(after, start) > 0) start = after;
      }
      const limit = listOpts.limit && listOpts.limit > 0 ? listOpts.limit : 0;
      const end = bytesPrefixEnd(keyBytes(prefix));
      // Read in chunks: one range of 30,000 objects would exceed gRPC's
      // message size limit. Every chunk reads at the first chunk's revision,
      // so together they are one snapshot.
      const items: KeyValue[] = [];
      let readAt = revision;
      let remaining = 0;
      let from = start;
      for (;;) {
        const want = limit > 0 ? Math.min(limit - items.length, LIST_CHUNK) : LIST_CHUNK;
        const res = await rangeAt({ key: from, range_end: end, limit: want }, readAt);
        // The header revision is the store's current one even for a read at
        // an older revision, so only use it when we read the latest.
        if (readAt === 0) readAt = Number(res.header.revision);
        const got = res.kvs.map(toKv);
        items.push(...got);
        // count is every key from `from` to the end at that revision, ignoring limit.
        remaining = Math.max(0, Number(res.count) - got.length);
        if (remaining === 0 || got.length === 0 || (limit > 0 && items.length >= limit)) break;
        from = Buffer.concat([keyBytes(got.at(-1)!.key), Buffer.from([0])]);
      }
      const result: ListResult = { items, revision: readAt, remaining };
      if (remaining > 0 && items.length > 0) result.continue = encodeContinue(readAt, items.at(-1)!.key);
      return result;
    },

    async count(prefix: string) {
      const res = await client.kv.range({
        key: rangeStart(keyBytes(prefix)),
        range_end: bytesPrefixEnd(keyBytes(prefix)),
        count_only: true,
      });
      return Number(res.count);
    },

    async create(key: string, value: string) {
      const k = keyBytes(key);
      const res = await client.kv.txn({
        compare: [{ key: k, target: 'Create', result: 'Equal', create_revision: 0 }],
        success: [{ request_put: { key: k, value: Buffer.from(value, 'utf8') } }],
        failure: [],
      });
      if (!res.succeeded) throw errKeyExists(key);
      const rev = Number(res.header.revision);
      return { key, value, createRevision: rev, modRevision: rev };
    },

    async update(key: string, value: string, expectedModRevision: number) {
      const k = keyBytes(key);
      const res = await client.kv.txn({
        // A missing key has mod_revision 0, so the mod compare alone would
        // let update(key, v, 0) create it; update never creates.
        compare: [exists(k), { key: k, target: 'Mod', result: 'Equal', mod_revision: expectedModRevision }],
        success: [{ request_put: { key: k, value: Buffer.from(value, 'utf8'), prev_kv: true } }],
        failure: [{ request_range: { key: k } }],
      });
      if (!res.succeeded) {
        const current = res.responses[0]?.response_range?.kvs[0];
        if (!current) throw errNotFound(key);
        throw errConflict(key, toKv(current));
      }
      const prev = res.responses[0]?.response_put?.prev_kv;
      const rev = Number(res.header.revision);
      return { key, value, createRevision: prev ? Number(prev.create_revision) : rev, modRevision: rev };
    },

    async delete(key: string, expectedModRevision?: number) {
      const k = keyBytes(key);
      const compare = [exists(k)];
      if (expectedModRevision !== undefined) {
        compare.push({ key: k, target: 'Mod', result: 'Equal', mod_revision: expectedModRevision });
      }
      const res = await client.kv.txn({
        compare,
        success: [{ request_delete_range: { key: k, prev_kv: true } }],
        failure: [{ request_range: { key: k } }],
      });
      if (!res.succeeded) {
        const current = res.responses[0]?.response_range?.kvs[0];
        if (!current) throw errNotFound(key);
        throw errConflict(key, toKv(current));
      }
      const prev = res.responses[0]?.response_delete_range?.prev_kvs[0];
      // Cannot happen: the compare proved the key exists, in the same txn.
      if (!prev) throw new Error(`etcd deleted ${key} but returned no previous value`);
      return { prevKv: toKv(prev), revision: Number(res.header.revision) };
    },

    watch(prefix: string, watchOpts: WatchOptions): Watch {
      return new EtcdWatch(prefix, watchOpts);
    },

    currentRevision,
    compactedRevision,

    async compact(revision: number) {
      if (revision <= knownCompacted) return;
      try {
        await client.kv.compact({ revision, physical: true });
      } catch (err) {
        // Already compacted at or past this revision: nothing to do, as in
        // the other backends.
        if (!isCompactedError(err)) throw await mapRevisionError(err, revision);
      }
      knownCompacted = Math.max(knownCompacted, revision);
    },

    async close() {
      if (closed) return;
      closed = true;
      for (const w of [...watches]) w.cancel();
      client.close();
    },
  };
  return store;
}
