// The ?timeout= query parameter, as upstream's WithRequestDeadline filter:
// a Go duration ("30s", "1m0s", "500ms", what client-go's Duration.String()
// sends), 400 BadRequest when it does not parse, and a bound on the request:
// one that has not answered in time gets 504 Timeout. As upstream, the work
// itself is not undone -- a write may still land after the 504 -- only its
// answer is dropped. Long-running requests (watch, logs, exec, proxy) are
// not bounded.

import { parseGoDuration } from '../api/duration.ts';
import { ApiError, badRequest } from '../api/errors.ts';
import type { ApiResponse } from './http.ts';
import type { RequestInfo } from './request-info.ts';

/** Upstream's --request-timeout default: no request is given longer. */
export const REQUEST_TIMEOUT_MAXIMUM_MS = 60_000;

const LONG_RUNNING_SUBRESOURCES = new Set(['log', 'exec', 'attach', 'portforward', 'proxy']);

/** watch, proxy and the streaming subresources: upstream's long-running requests. */
export function isLongRunning(info: RequestInfo): boolean {
  return info.verb === 'watch' || LONG_RUNNING_SUBRESOURCES.has(info.subresource.split('/')[0] ?? '');
}

/**
 * The deadline ?timeout= asks for in milliseconds (undefined when absent),
 * capped at the maximum; zero or negative means the maximum, as upstream.
 */
export function requestTimeoutMs(query: URLSearchParams): number | undefined {
  const value = query.get('timeout');
  if (!value) return undefined;
  const parsed = parseGoDuration(value);
  if ('error' in parsed) {
    throw badRequest(`invalid timeout specified in the request URL - ${parsed.error}`);
  }
  return parsed.ms > 0 ? Math.min(parsed.ms, REQUEST_TIMEOUT_MAXIMUM_MS) : REQUEST_TIMEOUT_MAXIMUM_MS;
}

/**
 * Serves a request within ms: after that it throws 504 Timeout (for the
 * caller to write), and whatever the handler writes later is dropped.
 */
export async function serveWithin(
  res: ApiResponse,
  ms: number,
  serve: (res: ApiResponse) => Promise<void>,
): Promise<void> {
  const gate = gatedResponse(res);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'expired'>((resolve) => {
    timer = setTimeout(() => resolve('expired'), ms);
  });
  const served = serve(gate.response);
  try {
    if ((await Promise.race([served, expired])) === 'expired') {
      gate.close();
      // The handler runs on, as upstream's handler goroutine does; its
      // answer (or error) goes nowhere.
      served.catch(() => {});
      throw new ApiError(
        504,
        'Timeout',
        'Timeout: request did not complete within requested timeout - context deadline exceeded',
        {},
      );
    }
  } finally {
    clearTimeout(timer);
  }
}

/** A response that forwards to res until closed, and then takes nothing. */
function gatedResponse(res: ApiResponse): { response: ApiResponse; close: () => void } {
  let open = true;
  const response: ApiResponse = {
    get statusCode() {
      return res.statusCode;
    },
    set statusCode(code: number) {
      if (open) res.statusCode = code;
    },
    get headersSent() {
      return res.headersSent || !open;
    },
    writeHead: (code, headers) => (open ? res.writeHead(code, headers) : undefined),
    setHeader: (name, value) => (open ? res.setHeader(name, value) : undefined),
    write: (chunk) => (open ? res.write(chunk) : false),
    end: (chunk) => (open ? res.end(chunk) : undefined),
    flushHeaders: () => {
      if (open) res.flushHeaders();
    },
    destroy: () => (open ? res.destroy() : undefined),
    on: (event, listener) => res.on(event, listener),
    ...(res.writeObject
      ? {
          writeObject: (body: unknown) => {
            if (open) res.writeObject!(body);
          },
        }
      : {}),
  };
  return {
    response,
    close: () => {
      open = false;
    },
  };
}
