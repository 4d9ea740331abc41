// Watch: a long-running response that streams the store's events for a
// collection from the watch cache (watch-cache.ts).

import { ApiError } from '../../api/errors.ts';
import type { KubeObject } from '../../api/meta.ts';
import { groupVersion } from '../../api/registry.ts';
import { toStatus, writeStatus } from '../http.ts';
import { isTrue } from '../request-info.ts';
import { toTable, wantsTable } from '../tables.ts';
import { watchEventLine } from '../watch-cache.ts';
import type { ResourceHandler } from './context.ts';
import { includeObject, listQuery } from './query.ts';

/**
 * A watch of a collection (or of one object, by name): one JSON event per
 * line, as Tables when asked, with BOOKMARKs when allowed, ended after
 * timeoutSeconds (by default 30 to 60 minutes, as upstream) or when either
 * side goes away. A resourceVersion too old to resume from is a 410.
 */
export const watch: ResourceHandler = async (ctx, s, rt, storage, ns) => {
  const { req, res, query } = s;
  const name = s.info.name;
  const accept = req.headers.accept;
  const q = listQuery(query);
  if (name) q.fieldSelector = [q.fieldSelector, `metadata.name=${name}`].filter(Boolean).join(',');
  const table = wantsTable(accept);
  const include = includeObject(query);
  const bookmarks = isTrue(query.get('allowWatchBookmarks'));
  const timeoutSeconds = Number(query.get('timeoutSeconds') ?? 0) || 1800 + Math.floor(Math.random() * 1800);
  let headersSent = false;
  let ended = false;
  let first = true;
  const writeLine = (event: unknown) => writeText(`${JSON.stringify(event)}\n`);
  const sendHeaders = () => {
    if (headersSent) return;
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Cache-Control': 'no-cache, private',
      'Transfer-Encoding': 'chunked',
    });
    headersSent = true;
  };
  const writeText = (line: string) => {
    if (ended) return;
    sendHeaders();
    res.write(line);
  };
  const encode = (type: string, object: KubeObject): unknown => {
    if (!table) return { type, object };
    const t = toTable(
      rt,
      [object],
      { resourceVersion: object.metadata.resourceVersion ?? '' },
      {
        include,
        noHeaders: !first,
        now: ctx.now(),
      },
    );
    first = false;
    return { type, object: t };
  };
  let watch: { stop: () => void; revision: () => number } | undefined;
  const end = () => {
    if (ended) return;
    ended = true;
    watch?.stop();
    clearTimeout(timer);
    clearInterval(bookmarkTimer);
    ctx.watches.delete(end);
    if (!headersSent) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
    }
    res.end();
  };
  ctx.watches.add(end);
  const timer = setTimeout(end, timeoutSeconds * 1000);
  const bookmarkTimer = bookmarks
    ? setInterval(() => {
        if (!watch) return;
        writeLine({
          type: 'BOOKMARK',
          object: {
            kind: rt.kind,
            apiVersion: groupVersion(rt),
            metadata: { resourceVersion: String(watch.revision()) },
          },
        });
      }, ctx.bookmarkIntervalMs)
    : undefined;
  req.on('close', end);
  res.on('close', end);
  try {
    watch = await storage.watch(
      ns,
      q,
      (events) => {
        for (const e of events) {
          if (table) writeLine(encode(e.type, e.object));
          else if (res.writeEvent) {
            if (ended) return;
            sendHeaders();
            res.writeEvent(e.type, e.object);
          } else writeText(watchEventLine(e.type, e.object));
        }
      },
      (reason) => {
        writeLine({ type: 'ERROR', object: new ApiError(410, 'Expired', reason).status });
        end();
      },
    );
  } catch (err) {
    clearTimeout(timer);
    clearInterval(bookmarkTimer);
    ctx.watches.delete(end);
    ended = true;
    // Errors before the stream starts are plain Status responses; kubectl
    // and client-go read a 410 here as "relist".
    if (!headersSent) {
      writeStatus(res, toStatus(err));
      return;
    }
    writeLine({ type: 'ERROR', object: toStatus(err) });
    res.end();
    return;
  }
  if (ended) watch.stop();
  // Headers go out at once, so a client sees the watch established even
  // before the first event.
  if (!headersSent && !ended) {
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Cache-Control': 'no-cache, private',
      'Transfer-Encoding': 'chunked',
    });
    headersSent = true;
    res.flushHeaders();
  }
};
