// Container log rotation, as upstream's pkg/kubelet/logs/container_log_manager.go:
// every 10 s, each running container's log file past --container-log-max-size
// is renamed to <log>.<YYYYMMDD-HHMMSS> and the runtime is asked to reopen
// its log (CRI ReopenContainerLog), so it writes a new file at the same
// path. Rotated files but the newest are gzip-compressed, and the oldest are
// removed so that a container has at most --container-log-max-files files,
// the live one included. `kubectl logs` reads the live file; following, it
// moves on to the new file when the old one is rotated away (server/logs.ts).

import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Container, Runtime } from '../runtime/runtime.ts';

export interface LogRotationPolicy {
  maxSizeBytes: number;
  /** At least 2: the live file and one rotated. */
  maxFiles: number;
}

export interface ContainerLogManagerOptions {
  runtime: Runtime;
  policy: LogRotationPolicy;
  /** The running containers (default: listed from the runtime). */
  runningContainers?(): Promise<Container[]>;
  now(): Date;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface ContainerLogManager {
  /** One pass over the running containers; returns the ids whose logs were rotated. */
  rotateLogs(): Promise<string[]>;
}

/** Go's 20060102-150405 in UTC: the suffix of a rotated log. */
export const rotationTimestamp = (d: Date): string =>
  d.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);

export function createContainerLogManager(opts: ContainerLogManagerOptions): ContainerLogManager {
  const { runtime, policy } = opts;
  const log = opts.log ?? (() => {});

  /** The rotated files of a log, oldest first (the timestamp suffix sorts by time). */
  async function rotatedOf(path: string): Promise<string[]> {
    const dir = dirname(path);
    const prefix = `${basename(path)}.`;
    const names = await readdir(dir).catch(() => [] as string[]);
    return names
      .filter((n) => n.startsWith(prefix) && !n.endsWith('.tmp'))
      .sort()
      .map((n) => join(dir, n));
  }

  async function compress(file: string): Promise<void> {
    const tmp = `${file}.gz.tmp`;
    await pipeline(createReadStream(file), createGzip(), createWriteStream(tmp));
    await rename(tmp, `${file}.gz`);
    await unlink(file);
  }

  async function rotate(id: string, path: string): Promise<void> {
    // Room for the file about to be rotated: maxFiles - 2 older ones stay.
    let rotated = await rotatedOf(path);
    for (const old of rotated.slice(0, Math.max(0, rotated.length - (policy.maxFiles - 2)))) {
      await unlink(old).catch(() => undefined);
    }
    rotated = await rotatedOf(path);
    // Every rotated file is compressed (the newest was left for the runtime to finish writing).
    for (const f of rotated) if (!f.endsWith('.gz')) await compress(f);
    const target = `${path}.${rotationTimestamp(opts.now())}`;
    await rename(path, target);
    try {
      await runtime.reopenContainerLog(id);
    } catch (err) {
      // The runtime still writes the renamed file: put it back, as upstream does.
      await rename(target, path).catch(() => undefined);
      throw err;
    }
  }

  // A container's log path never changes: asked of the runtime once, not
  // every 10 s for each of 110 containers.
  const logPaths = new Map<string, string>();

  return {
    async rotateLogs() {
      const done: string[] = [];
      const running = opts.runningContainers
        ? await opts.runningContainers()
        : await runtime.listContainers({ state: 'CONTAINER_RUNNING' });
      const ids = new Set(running.map((c) => c.id));
      for (const id of logPaths.keys()) if (!ids.has(id)) logPaths.delete(id);
      for (const c of running) {
        let path = logPaths.get(c.id);
        if (path === undefined) {
          const status = await runtime.containerStatus(c.id).catch(() => undefined);
          if (!status) continue;
          path = status.logPath;
          logPaths.set(c.id, path);
        }
        if (!path) continue;
        const size = (await stat(path).catch(() => undefined))?.size ?? 0;
        if (size < policy.maxSizeBytes) continue;
        try {
          await rotate(c.id, path);
          done.push(c.id);
          log('container log rotated', { id: c.id, path, sizeBytes: size });
        } catch (err) {
          log('container log not rotated', { id: c.id, path, error: String(err) });
        }
      }
      return done;
    },
  };
}
