// The in-process transport: the client's Transport interface served straight
// by the API server's handler chain, with no socket, TLS or HTTP parsing.
// Components that run inside `skiff server` (controllers, scheduler) use it;
// the same components on another machine use the HTTPS transport instead.
//
// Requests still go through everything a remote request does (routing,
// admission, validation, storage), acting as the given user. Bodies cross as
// JSON text both ways, so a caller can never hold (and mutate) an object that
// the watch cache also holds.

import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { deepCopy, type KubeObject } from '../api/meta.ts';
import { errorFromResponse } from '../client/http-transport.ts';
import type {
  Transport,
  TransportRequest,
  TransportResponse,
  WatchEvent,
  WatchHandle,
} from '../client/transport.ts';
import type { ApiServer, UserInfo } from './apiserver.ts';
import type { ApiRequest, ApiResponse } from './http.ts';

class InProcessRequest implements ApiRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly #body: string | undefined;
  readonly #onClose: (() => void)[] = [];

  constructor(method: string, url: string, headers: IncomingHttpHeaders, body: string | undefined) {
    this.method = method;
    this.url = url;
    this.headers = headers;
    this.#body = body;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer | string> {
    if (this.#body !== undefined) yield this.#body;
  }

  resume(): void {}

  on(_event: 'close', listener: () => void): this {
    this.#onClose.push(listener);
    return this;
  }

  /** The caller went away (a stopped watch): what a closed socket means to the server. */
  close(): void {
    for (const l of this.#onClose.splice(0)) l();
  }
}

class InProcessResponse implements ApiResponse {
  statusCode = 200;
  headersSent = false;
  readonly headers: Record<string, string | string[]> = {};
  #chunks: string[] = [];
  #ended = false;
  readonly #onClose: (() => void)[] = [];
  /** Set for watches: each write is handed on at once instead of buffered. */
  onWrite: ((chunk: string) => void) | undefined;
  /** Set for watches: events as objects, with no JSON in between (ApiResponse.writeEvent). */
  writeEvent: ((type: string, object: KubeObject) => void) | undefined;
  /** A JSON body as a value (ApiResponse.writeObject): the client's own copy of it. */
  object: unknown;
  hasObject = false;
  writeObject: ((body: unknown) => void) | undefined = (body) => {
    this.object = deepCopy(body);
    this.hasObject = true;
    this.end();
  };
  onEnd: ((body: string) => void) | undefined;

  writeHead(code: number, headers: OutgoingHttpHeaders = {}): this {
    this.statusCode = code;
    for (const [k, v] of Object.entries(headers)) if (v !== undefined) this.setHeader(k, v);
    this.headersSent = true;
    return this;
  }

  setHeader(name: string, value: number | string | readonly string[]): this {
    this.headers[name.toLowerCase()] =
      typeof value === 'number' ? String(value) : (value as string | string[]);
    return this;
  }

  write(chunk: string): boolean {
    this.headersSent = true;
    if (this.onWrite) this.onWrite(chunk);
    else this.#chunks.push(chunk);
    return true;
  }

  end(chunk?: string | Uint8Array): this {
    if (this.#ended) return this;
    if (chunk !== undefined)
      this.write(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    this.#ended = true;
    this.onEnd?.(this.#chunks.join(''));
    this.close();
    return this;
  }

  flushHeaders(): void {
    this.headersSent = true;
  }

  destroy(): this {
    return this.end();
  }

  on(_event: 'close', listener: () => void): this {
    this.#onClose.push(listener);
    return this;
  }

  close(): void {
    for (const l of this.#onClose.splice(0)) l();
  }
}

function url(path: string, query: Record<string, string | undefined> | undefined): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) params.set(k, v);
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

const parse = (text: string): unknown => {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return text;
  }
};

export function createInProcessTransport(api: ApiServer, user: UserInfo): Transport {
  return {
    async request(r: TransportRequest): Promise<TransportResponse> {
      const body =
        r.body === undefined ? undefined : typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
      const headers: IncomingHttpHeaders = { accept: 'application/json' };
      if (body !== undefined) headers['content-type'] = r.contentType ?? 'application/json';
      const req = new InProcessRequest(r.method, url(r.path, r.query), headers, body);
      const res = new InProcessResponse();
      const text = new Promise<string>((resolve) => {
        res.onEnd = resolve;
      });
      await api.handle(req, res, user);
      const answer = await text;
      const parsed = res.hasObject ? res.object : parse(answer);
      if (res.statusCode >= 300) throw errorFromResponse(res.statusCode, parsed);
      const warning = res.headers.warning;
      return {
        status: res.statusCode,
        body: parsed,
        warnings: warning ? (Array.isArray(warning) ? warning : [warning]) : [],
      };
    },

    watch(r, onEvent: (e: WatchEvent) => void, onClose: (err?: Error) => void): WatchHandle {
      const req = new InProcessRequest('GET', url(r.path, { ...r.query, watch: 'true' }), {}, undefined);
      const res = new InProcessResponse();
      let closed = false;
      // onClose is always asynchronous, as it is over HTTP: never inside
      // watch() itself, before the caller holds the handle.
      const finish = (err?: Error) => {
        if (closed) return;
        closed = true;
        setImmediate(() => onClose(err));
      };
      let buf = '';
      // Events arrive as the watch cache's shared objects: each watcher gets
      // its own copy (a walk of the object, ~2.5x cheaper than encoding it
      // to JSON and parsing that back, which is what this did per watcher).
      res.writeEvent = (type, object) => {
        if (closed) return;
        try {
          onEvent({ type, object: deepCopy(object) } as WatchEvent);
        } catch (err) {
          req.close();
          finish(err as Error);
        }
      };
      res.onWrite = (chunk) => {
        if (closed) return;
        if (res.statusCode >= 300) {
          buf += chunk;
          return;
        }
        buf += chunk;
        let nl = buf.indexOf('\n');
        while (nl >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line && !closed) {
            // The handler runs inside the server's event fan-out: a throwing
            // handler ends this watch, never the server's loop.
            try {
              onEvent(JSON.parse(line) as WatchEvent);
            } catch (err) {
              req.close();
              finish(err as Error);
              return;
            }
          }
          nl = buf.indexOf('\n');
        }
      };
      res.onEnd = () => {
        if (res.statusCode >= 300) finish(errorFromResponse(res.statusCode, parse(buf)));
        else finish();
      };
      void api.handle(req, res, user);
      return {
        stop() {
          req.close();
          finish();
        },
      };
    },
  };
}
