// Profiling of a running server over its authenticated API (upstream's
// kube-apiserver --profiling serves Go's /debug/pprof; k3s asks for it with
// --enable-pprof, k3s-io/k3s#1635). Here, with `skiff server --enable-pprof`:
//
//   GET /debug/pprof/profile?seconds=N   a CPU profile of the whole process
//                                        over N seconds (default 30, as
//                                        pprof's), in V8's .cpuprofile JSON
//                                        (Chrome DevTools, speedscope read it)
//   GET /debug/pprof/heap                a heap snapshot (.heapsnapshot JSON)
//
// Both are non-resource URLs, authorized as upstream's: only a user with
// `get` on /debug/pprof/* (cluster-admin) may ask. `skiff debug profile`
// fetches them with a kubeconfig.

import { Session } from 'node:inspector';
import { badRequest } from '../api/errors.ts';
import type { ApiResponse } from './http.ts';

/** The longest profile asked for at once: requests end after 60 s (--request-timeout), as upstream. */
const MAX_SECONDS = 50;

const post = <T = unknown>(session: Session, method: string, params?: object) =>
  new Promise<T>((resolve, reject) =>
    session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result as T))),
  );

export async function serveProfile(path: string, query: URLSearchParams, res: ApiResponse): Promise<boolean> {
  if (path === '/debug/pprof/profile') {
    const raw = query.get('seconds') ?? '30';
    const seconds = Number(raw);
    if (!Number.isFinite(seconds) || seconds <= 0 || seconds > MAX_SECONDS)
      throw badRequest(`seconds must be a number from 1 to ${MAX_SECONDS}, not ${JSON.stringify(raw)}`);
    const session = new Session();
    session.connect();
    try {
      await post(session, 'Profiler.enable');
      await post(session, 'Profiler.start');
      await new Promise((r) => setTimeout(r, seconds * 1000));
      const { profile } = await post<{ profile: unknown }>(session, 'Profiler.stop');
      const body = JSON.stringify(profile);
      res.writeHead(200, {
        'Content-Type': 'application/json',
        'Content-Disposition': 'attachment; filename="profile.cpuprofile"',
        'Content-Length': Buffer.byteLength(body),
      });
      res.end(body);
    } finally {
      session.disconnect();
    }
    return true;
  }
  if (path === '/debug/pprof/heap') {
    const session = new Session();
    session.connect();
    const chunks: string[] = [];
    session.on('HeapProfiler.addHeapSnapshotChunk', (m) => chunks.push(m.params.chunk));
    try {
      await post(session, 'HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    } finally {
      session.disconnect();
    }
    const body = chunks.join('');
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Content-Disposition': 'attachment; filename="heap.heapsnapshot"',
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(body);
    return true;
  }
  return false;
}
