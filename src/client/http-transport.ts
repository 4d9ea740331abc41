// The HTTP(S) transport: a kubeconfig-style connection (server URL, CA,
// client certificate) over keep-alive connections. Watches are streaming
// GETs read line by line.

import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { ApiError, type Status } from '../api/errors.ts';
import type { Transport, TransportRequest, TransportResponse, WatchEvent, WatchHandle } from './transport.ts';

export interface HttpTransportOptions {
  server: string;
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  userAgent?: string;
}

function buildPath(path: string, query: Record<string, string | undefined> | undefined): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) params.set(k, v);
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

/** A non-2xx answer as an ApiError carrying the server's Status (or a synthesized one). */
export function errorFromResponse(status: number, body: unknown): ApiError {
  const s = body as Partial<Status> | undefined;
  if (s && typeof s === 'object' && s.kind === 'Status') {
    return new ApiError(status, s.reason || 'InternalError', s.message ?? `HTTP ${status}`, s.details);
  }
  return new ApiError(
    status,
    status >= 500 ? 'InternalError' : 'BadRequest',
    `HTTP ${status}: ${String(body).slice(0, 200)}`,
  );
}

export interface HttpTransport extends Transport {
  close(): void;
  /**
   * A renewed client certificate: new connections use it; connections
   * already open (watches) carry on with the old one until they end.
   */
  setClientCertificate(cert: string | Buffer, key: string | Buffer): void;
}

export function createHttpTransport(opts: HttpTransportOptions): HttpTransport {
  const url = new URL(opts.server);
  const secure = url.protocol === 'https:';
  const makeAgent = (cert = opts.cert, key = opts.key) =>
    secure
      ? new HttpsAgent({
          keepAlive: true,
          maxSockets: 100,
          ...(opts.ca ? { ca: opts.ca } : {}),
          ...(cert ? { cert } : {}),
          ...(key ? { key } : {}),
        })
      : new HttpAgent({ keepAlive: true, maxSockets: 100 });
  let agent = makeAgent();
  const retired: (HttpAgent | HttpsAgent)[] = [];
  const send = secure ? httpsRequest : httpRequest;
  const base = { host: url.hostname, port: url.port || (secure ? 443 : 80), agent };
  const userAgent = opts.userAgent ?? 'skiff-client/v0';

  const open = (
    method: string,
    path: string,
    headers: Record<string, string>,
    body: string | undefined,
    onResponse: (res: IncomingMessage) => void,
    onError: (err: Error) => void,
  ) => {
    const req = send(
      { ...base, method, path, headers: { 'user-agent': userAgent, accept: 'application/json', ...headers } },
      onResponse,
    );
    req.on('error', onError);
    req.end(body);
    return req;
  };

  return {
    request(r: TransportRequest): Promise<TransportResponse> {
      const body =
        r.body === undefined ? undefined : typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
      const headers: Record<string, string> = {};
      if (body !== undefined) {
        headers['content-type'] = r.contentType ?? 'application/json';
        headers['content-length'] = String(Buffer.byteLength(body));
      }
      return new Promise((resolve, reject) => {
        open(
          r.method,
          buildPath(r.path, r.query),
          headers,
          body,
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('error', reject);
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              let parsed: unknown = text;
              try {
                parsed = text ? JSON.parse(text) : undefined;
              } catch {}
              const status = res.statusCode ?? 0;
              if (status >= 300) {
                reject(errorFromResponse(status, parsed));
                return;
              }
              const warning = res.headers.warning;
              resolve({
                status,
                body: parsed,
                warnings: warning ? (Array.isArray(warning) ? warning : [warning]) : [],
              });
            });
          },
          reject,
        );
      });
    },

    watch(r, onEvent: (e: WatchEvent) => void, onClose: (err?: Error) => void): WatchHandle {
      let closed = false;
      const finish = (err?: Error) => {
        if (closed) return;
        closed = true;
        onClose(err);
      };
      const req = open(
        'GET',
        buildPath(r.path, { ...r.query, watch: 'true' }),
        {},
        undefined,
        (res) => {
          const status = res.statusCode ?? 0;
          let buf = '';
          res.setEncoding('utf8');
          if (status >= 300) {
            res.on('data', (d: string) => (buf += d));
            res.on('end', () => {
              let parsed: unknown = buf;
              try {
                parsed = JSON.parse(buf);
              } catch {}
              finish(errorFromResponse(status, parsed));
            });
            return;
          }
          res.on('data', (d: string) => {
            buf += d;
            let nl = buf.indexOf('\n');
            while (nl >= 0) {
              const line = buf.slice(0, nl).trim();
              buf = buf.slice(nl + 1);
              if (line && !closed) {
                try {
                  onEvent(JSON.parse(line) as WatchEvent);
                } catch (err) {
                  req.destroy();
                  finish(err as Error);
                  return;
                }
              }
              nl = buf.indexOf('\n');
            }
          });
          res.on('end', () => finish());
          res.on('error', (err) => finish(err));
        },
        (err) => finish(err),
      );
      return {
        stop() {
          req.destroy();
          finish();
        },
      };
    },

    setClientCertificate(cert, key) {
      retired.push(agent);
      agent = makeAgent(cert, key);
      base.agent = agent;
      // The old agent's idle sockets go; its open ones (watches) finish on their own.
      for (const sockets of Object.values((retired.at(-1) as HttpsAgent).freeSockets ?? {}))
        for (const s of sockets ?? []) s.destroy();
    },
    close() {
      agent.destroy();
      for (const a of retired) a.destroy();
    },
  };
}
