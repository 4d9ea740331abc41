// HTTP plumbing: reading bodies with a size limit, decoding JSON or YAML,
// and writing JSON and Status responses.

import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { parse as parseYaml } from 'yaml';
import {
  ApiError,
  badRequest,
  internalError,
  type Status,
  tooLarge,
  unsupportedMediaType,
} from '../api/errors.ts';
import type { KubeObject } from '../api/meta.ts';
import { decodeKubernetesProtobuf, ProtobufDecodeError } from '../api/protobuf/decode.ts';

/**
 * What the handler chain needs of a request: node:http's IncomingMessage has
 * it, and so does the in-process transport's request, which never touches a
 * socket.
 */
export interface ApiRequest extends AsyncIterable<Buffer | string> {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: IncomingHttpHeaders;
  resume(): unknown;
  on(event: 'close', listener: () => void): unknown;
}

/** What the handler chain needs of a response (node:http's ServerResponse, or the in-process one). */
export interface ApiResponse {
  statusCode: number;
  readonly headersSent: boolean;
  writeHead(code: number, headers?: OutgoingHttpHeaders): unknown;
  setHeader(name: string, value: number | string | readonly string[]): unknown;
  write(chunk: string): unknown;
  end(chunk?: string | Uint8Array): unknown;
  flushHeaders(): void;
  destroy(): unknown;
  on(event: 'close', listener: () => void): unknown;
  /**
   * A watch event handed on as the object itself, for a response that is
   * not bytes on a socket (the in-process transport): the watch writes its
   * events here instead of JSON lines when it is set. The object is the
   * watch cache's, shared and never to be mutated.
   */
  writeEvent?: (type: string, object: KubeObject) => void;
  /**
   * A JSON body handed on as the value itself, for the same kind of
   * response (after writeHead; it ends the response). The value may be
   * shared (a cached object): the receiver copies it.
   */
  writeObject?: (body: unknown) => void;
}

/** Upstream's limit for a request body (3 MiB). */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

export async function readBody(req: ApiRequest, limit = MAX_BODY_BYTES): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) {
    req.resume();
    throw tooLarge(limit);
  }
  if (req instanceof Readable) return readStream(req, limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += Buffer.byteLength(chunk);
    if (size > limit) {
      req.resume();
      throw tooLarge(limit);
    }
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * readBody for a socket's request, by its events: what `for await` does,
 * without an async iterator and a promise per chunk on every request.
 * Over the limit, the rest is drained and the stream destroyed, as the
 * loop's early exit does; a stream that closes before its end is an error.
 */
function readStream(req: Readable, limit: number): Promise<Buffer> {
  const prematureClose = () =>
    Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
  // Already read to its end (or gone): no event will come.
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  if (req.destroyed) return Promise.reject(prematureClose());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer | string) => {
      size += Buffer.byteLength(chunk);
      if (size > limit) {
        cleanup();
        req.resume();
        req.destroy();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onClose = () => {
      cleanup();
      reject(prematureClose());
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

export const mediaType = (contentType: string | undefined): string =>
  (contentType ?? '').split(';')[0]!.trim().toLowerCase();

/** Decodes a JSON or YAML body into a value; 400 on malformed input, 415 on other types. */
export function decodeBody(body: Buffer, contentType: string | undefined, allowed: string[]): unknown {
  const type = mediaType(contentType) || 'application/json';
  if (!allowed.includes(type)) throw unsupportedMediaType(type);
  if (type === 'application/vnd.kubernetes.protobuf') {
    // kubectl 1.32+ sends typed creates as protobuf; decode to the JSON the
    // client would have sent, and carry on as for JSON.
    try {
      return decodeKubernetesProtobuf(body);
    } catch (err) {
      if (err instanceof ProtobufDecodeError) {
        if (err.reason === 'UnknownType' || err.reason === 'Unsupported') {
          throw new ApiError(
            415,
            'UnsupportedMediaType',
            `cannot decode protobuf body: ${err.message}; send application/json`,
          );
        }
        throw badRequest(`cannot decode protobuf body: ${err.message}`);
      }
      throw err;
    }
  }
  const text = body.toString('utf8');
  if (text.trim() === '') throw badRequest('the body of the request was empty');
  if (type.endsWith('yaml')) {
    try {
      return parseYaml(text, { maxAliasCount: 100 });
    } catch (err) {
      throw badRequest(`error converting YAML to JSON: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`couldn't get version/kind; json parse error: ${(err as Error).message}`);
  }
}

const indentedResponses = new WeakSet<ApiResponse>();

/** From now on, JSON written to res is indented (upstream's ?pretty=true). */
export function indentJSON(res: ApiResponse): void {
  indentedResponses.add(res);
}

/** `encoded`, when given, is JSON.stringify(body) already made (used unless the response is indented). */
export function writeJSON(
  res: ApiResponse,
  code: number,
  body: unknown,
  contentType = 'application/json',
  encoded?: string,
): void {
  const indented = indentedResponses.has(res);
  if (res.writeObject && !indented && contentType === 'application/json') {
    res.writeHead(code, { 'Content-Type': contentType, 'Cache-Control': 'no-cache, private' });
    res.writeObject(body);
    return;
  }
  const text = indented ? JSON.stringify(body, null, 2) : (encoded ?? JSON.stringify(body));
  res.writeHead(code, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-cache, private',
  });
  res.end(text);
}

export function writeStatus(res: ApiResponse, status: Status): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  writeJSON(res, status.code, status);
}

/** Any thrown value → a Status. Unknown errors become 500s and are logged by the caller. */
export function toStatus(err: unknown): Status {
  if (err instanceof ApiError) return err.status;
  return internalError(err instanceof Error ? err.message : String(err)).status;
}

/**
 * A response's warnings: each text becomes a `Warning: 299 - "<text>"`
 * header (kubectl prints each), once per distinct text as upstream's
 * warning recorder does.
 */
export function warningRecorder(res: ApiResponse): (text: string) => void {
  const warnings: string[] = [];
  // Header values must be printable ASCII: escape everything else.
  const printable = (t: string) =>
    t.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return (text) => {
    if (warnings.includes(text)) return;
    warnings.push(text);
    res.setHeader(
      'Warning',
      warnings.map((w) => `299 - ${JSON.stringify(printable(w))}`),
    );
  };
}
