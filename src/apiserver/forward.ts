// Forwards one HTTP request to a backend and streams the answer back: what
// nodes/proxy (to a kubelet) and pods/proxy, services/proxy (to a pod) do,
// as upstream's UpgradeAwareHandler without the upgrade.

import type { IncomingMessage } from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { StringDecoder } from 'node:string_decoder';
import { ApiError } from '../api/errors.ts';
import type { ApiRequest, ApiResponse } from './http.ts';

/** Hop-by-hop and credential headers never passed on (the user's credentials stay with us). */
const DROP_REQUEST = new Set([
  'host',
  'authorization',
  'connection',
  'keep-alive',
  'proxy-authorization',
  'upgrade',
]);
const DROP_RESPONSE = new Set(['connection', 'transfer-encoding', 'content-length', 'keep-alive']);

export interface ForwardOptions {
  /** TLS client options for an https backend (the kubelet client certificate). */
  tls?: RequestOptions;
  /** Rewrites a Location header the backend sent (redirects), e.g. into the proxy's own path. */
  rewriteLocation?: (location: string) => string;
}

/** Sends `req` to `target` (its method, headers and body) and writes the backend's response to `res`. */
export async function forward(
  req: ApiRequest,
  res: ApiResponse,
  target: URL,
  opts: ForwardOptions = {},
): Promise<void> {
  const upstream = await new Promise<IncomingMessage>((resolve, reject) => {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (v !== undefined && !DROP_REQUEST.has(k)) headers[k] = v;
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const r = send(target, { method: req.method ?? 'GET', headers, ...(opts.tls ?? {}) }, resolve);
    r.on('error', (err) =>
      reject(new ApiError(503, 'ServiceUnavailable', `error trying to reach service: ${err.message}`)),
    );
    res.on('close', () => r.destroy());
    (async () => {
      for await (const chunk of req) r.write(chunk);
      r.end();
    })().catch(() => r.destroy());
  });
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(upstream.headers)) {
    if (v === undefined || DROP_RESPONSE.has(k)) continue;
    headers[k] =
      k === 'location' && opts.rewriteLocation && typeof v === 'string' ? opts.rewriteLocation(v) : v;
  }
  res.writeHead(upstream.statusCode ?? 502, headers);
  res.on('close', () => upstream.destroy());
  await streamBody(upstream, res);
}

/** Copies a backend response to the client as it comes (followed logs must not wait for the end). */
export async function streamBody(upstream: IncomingMessage, res: ApiResponse): Promise<void> {
  // node's ServerResponse takes bytes; the in-process response takes text.
  const raw = res as unknown as {
    write(chunk: Uint8Array): boolean;
    once?(e: string, l: () => void): unknown;
  };
  const bytes = typeof (res as { socket?: unknown }).socket === 'object';
  const decoder = new StringDecoder('utf8');
  try {
    for await (const chunk of upstream as AsyncIterable<Buffer>) {
      if (!bytes) {
        res.write(decoder.write(chunk));
        continue;
      }
      if (!raw.write(chunk)) await new Promise<void>((r) => (raw.once ? raw.once('drain', r) : r()));
    }
  } catch {
    // The backend went away mid-stream: what was sent stands, as upstream.
  }
  if (!bytes) {
    const rest = decoder.end();
    if (rest) res.write(rest);
  }
  res.end();
}
