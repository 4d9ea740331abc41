// `skiff etcd-snapshot save|ls|delete|prune` (alias `skiff snapshot`), as
// `k3s etcd-snapshot`: snapshots of the server's datastore, SQLite or etcd
// (src/server/snapshots.ts). Restore is `skiff server --cluster-reset
// --cluster-reset-restore-path FILE`.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultNodeName } from '../kubelet/node-status.ts';
import { hasEtcdMember } from '../server/embedded-etcd.ts';
import {
  type Datastore,
  DEFAULT_SNAPSHOT_NAME,
  DEFAULT_SNAPSHOT_RETENTION,
  datastoreOf,
  defaultSnapshotDir,
  deleteSnapshot,
  listSnapshots,
  pruneSnapshots,
  saveSnapshot,
} from '../server/snapshots.ts';

export const etcdSnapshotUsage = `Usage: skiff etcd-snapshot save|ls|delete|prune [flags]

Snapshots of the server's datastore, as k3s etcd-snapshot. On SQLite (the
default) an online, consistent copy through SQLite's backup API; on etcd,
etcd's own snapshot. The server keeps serving meanwhile.

  save [--name NAME]          take one now: <name>-<node>-<unix time> (default name on-demand)
  ls | list [-o json]         the snapshots, oldest first
  delete NAME...              remove these snapshots
  prune [--name NAME] [--snapshot-retention N]
                              keep only the newest N (default 5) of NAME's snapshots

Flags:
  --data-dir DIR              the server's data dir (default /var/lib/skiff as root, ~/.skiff otherwise)
  --datastore-endpoint URL    the server's datastore (default: its embedded etcd member
                              if it has one, else sqlite://, its state.db)
  --etcd-client-port PORT     the embedded member's client port (default 2379)
  --etcd-snapshot-dir DIR     where snapshots live (default <data-dir>/server/db/snapshots)
  --node-name NAME            the node name in snapshot names (default: the hostname)

Restore: stop the server, then
  skiff server --cluster-reset --cluster-reset-restore-path FILE [--data-dir DIR]
`;

export async function runEtcdSnapshot(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (!sub || sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(etcdSnapshotUsage);
    return sub ? 0 : 2;
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(rest);
  } catch (err) {
    console.error(`skiff etcd-snapshot: ${(err as Error).message}\n\n${etcdSnapshotUsage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const dataDir =
    values['data-dir'] ?? (process.getuid?.() === 0 ? '/var/lib/skiff' : `${process.env.HOME ?? '.'}/.skiff`);
  const dir = values['etcd-snapshot-dir'] ?? defaultSnapshotDir(dataDir);
  try {
    switch (sub) {
      case 'save': {
        const s = await saveSnapshot({
          datastore: datastoreFor(values, dataDir),
          dir,
          name: values.name ?? DEFAULT_SNAPSHOT_NAME,
          nodeName: values['node-name'] ?? defaultNodeName(),
        });
        console.log(`Snapshot ${s.name} saved to ${s.location} (${s.size} bytes)`);
        return 0;
      }
      case 'ls':
      case 'list': {
        const all = listSnapshots(dir);
        if (values.output === 'json') {
          console.log(
            JSON.stringify(
              all.map((s) => ({ ...s, created: s.created.toISOString() })),
              null,
              2,
            ),
          );
          return 0;
        }
        const rows = [
          ['Name', 'Location', 'Size', 'Created'],
          ...all.map((s) => [
            s.name,
            s.location,
            String(s.size),
            s.created.toISOString().replace('.000', ''),
          ]),
        ];
        const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
        for (const r of rows)
          console.log(
            r
              .map((c, i) => c.padEnd(widths[i]!))
              .join(' ')
              .trimEnd(),
          );
        return 0;
      }
      case 'delete': {
        if (!positionals.length) {
          console.error(
            'skiff etcd-snapshot delete: name the snapshots to delete (see skiff etcd-snapshot ls)',
          );
          return 2;
        }
        for (const name of positionals) {
          deleteSnapshot(dir, name);
          console.log(`Removed snapshot ${name}`);
        }
        return 0;
      }
      case 'prune': {
        const retention = Number(values['snapshot-retention']);
        if (!Number.isInteger(retention) || retention < 1) {
          console.error(
            `skiff etcd-snapshot prune: --snapshot-retention must be a whole number, 1 or more, not ${values['snapshot-retention']}`,
          );
          return 2;
        }
        for (const name of pruneSnapshots(dir, values.name ?? DEFAULT_SNAPSHOT_NAME, retention))
          console.log(`Removed snapshot ${name}`);
        return 0;
      }
      default:
        console.error(
          `skiff etcd-snapshot: unknown subcommand ${JSON.stringify(sub)}\n\n${etcdSnapshotUsage}`,
        );
        return 2;
    }
  } catch (err) {
    console.error(`skiff etcd-snapshot ${sub}: ${(err as Error).message}`);
    return 1;
  }
}

/** The datastore to snapshot: the flag's, else the server's own etcd member, else its SQLite file. */
function datastoreFor(
  values: { 'datastore-endpoint'?: string | undefined; 'etcd-client-port'?: string | undefined },
  dataDir: string,
): Datastore {
  if (values['datastore-endpoint']) return datastoreOf(values['datastore-endpoint'], dataDir);
  if (!hasEtcdMember(dataDir)) return datastoreOf('sqlite://', dataDir);
  const tls = join(dataDir, 'server', 'tls');
  return {
    kind: 'etcd',
    endpoints: [`https://127.0.0.1:${Number(values['etcd-client-port'])}`],
    tls: {
      ca: readFileSync(join(tls, 'ca.crt')),
      cert: readFileSync(join(tls, 'etcd', 'client.crt')),
      key: readFileSync(join(tls, 'etcd', 'client.key')),
    },
  };
}

function parse(args: string[]) {
  return parseArgs({
    args,
    options: {
      'data-dir': { type: 'string' },
      'datastore-endpoint': { type: 'string' },
      'etcd-client-port': { type: 'string', default: '2379' },
      'etcd-snapshot-dir': { type: 'string' },
      'node-name': { type: 'string' },
      name: { type: 'string' },
      'snapshot-retention': { type: 'string', default: String(DEFAULT_SNAPSHOT_RETENTION) },
      output: { type: 'string', short: 'o' },
    },
    allowPositionals: true,
    strict: true,
  });
}
