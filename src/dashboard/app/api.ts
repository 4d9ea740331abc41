// The dashboard's only way to the cluster: the public Kubernetes API, called
// with the user's bearer token (or, in `skiff dashboard`'s local mode, with
// none: the loopback proxy adds the admin's credentials). Errors are the
// API's own Status objects, shown to the user as they are.

export interface Status {
  kind: 'Status';
  code: number;
  reason?: string;
  message?: string;
  details?: { causes?: { message?: string; field?: string }[] };
}

export class ApiError extends Error {
  readonly status: Status;
  constructor(status: Status) {
    super(status.message ?? `HTTP ${status.code}`);
    this.status = status;
  }
  get code(): number {
    return this.status.code;
  }
}

export const TABLE_ACCEPT = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json';

const TOKEN_KEY = 'skiff.dashboard.token';

/** The session's token: kept for the tab only (sessionStorage), never in a cookie. */
export const session = {
  get token(): string | undefined {
    return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
  },
  set token(t: string | undefined) {
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

function headers(extra: Record<string, string> = {}, token = session.token): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}`, ...extra } : extra;
}

async function failure(res: Response): Promise<ApiError> {
  const text = await res.text();
  try {
    const body = JSON.parse(text);
    if (body?.kind === 'Status') return new ApiError(body);
  } catch {}
  return new ApiError({ kind: 'Status', code: res.status, message: text.trim() || res.statusText });
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  contentType?: string;
  accept?: string;
  signal?: AbortSignal;
  token?: string;
}

/** One API request; resolves with the decoded JSON, rejects with an ApiError carrying the Status. */
export async function request<T = any>(path: string, opts: RequestOptions = {}): Promise<T> {
  const body =
    opts.body === undefined
      ? undefined
      : typeof opts.body === 'string'
        ? opts.body
        : JSON.stringify(opts.body);
  const res = await fetch(path, {
    method: opts.method ?? 'GET',
    headers: headers(
      {
        Accept: opts.accept ?? 'application/json',
        ...(body !== undefined ? { 'Content-Type': opts.contentType ?? 'application/json' } : {}),
      },
      opts.token ?? session.token,
    ),
    ...(body !== undefined ? { body } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

export interface WatchEvent<T = any> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

/**
 * Watches `path` (which carries resourceVersion): one JSON event per line,
 * handed to onEvent until the server ends the watch or signal aborts.
 * Resolves when the stream ends; rejects on an HTTP error.
 */
export async function watch(
  path: string,
  onEvent: (e: WatchEvent) => void,
  signal: AbortSignal,
  accept = 'application/json',
): Promise<void> {
  const sep = path.includes('?') ? '&' : '?';
  const res = await fetch(`${path}${sep}watch=1&allowWatchBookmarks=true`, {
    headers: headers({ Accept: accept }),
    signal,
  });
  if (!res.ok) throw await failure(res);
  await readLines(res, signal, (line) => onEvent(JSON.parse(line)));
}

/** Streams a response's body to onLine, line by line (watch events, followed logs). */
export async function readLines(
  res: Response,
  signal: AbortSignal,
  onLine: (line: string) => void,
): Promise<void> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      let nl = buffered.indexOf('\n');
      while (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.trim()) onLine(line);
        nl = buffered.indexOf('\n');
      }
    }
    if (buffered.trim()) onLine(buffered);
  } catch (err) {
    if (!signal.aborted) throw err;
  } finally {
    reader.releaseLock();
  }
}

/** A raw streaming GET (pod logs). */
export async function stream(path: string, signal: AbortSignal): Promise<Response> {
  const res = await fetch(path, { headers: headers({ Accept: '*/*' }), signal });
  if (!res.ok) throw await failure(res);
  return res;
}

/** The error as the user should read it: the Status message, with the reason and code. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) {
    const reason = err.status.reason ? ` (${err.status.reason}, ${err.code})` : ` (${err.code})`;
    return `${err.status.message ?? 'request failed'}${reason}`;
  }
  return String((err as Error)?.message ?? err);
}
