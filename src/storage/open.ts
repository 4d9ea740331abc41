// Opens the store a --datastore-endpoint names:
//   sqlite://             the default, <data-dir>/server/db/state.db
//   sqlite:///path/to.db  an explicit file
//   etcd://h1:2379,h2:2379
//   memory://             nothing persisted (tests, benchmarks)

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from './store.ts';

/** --datastore-cafile, -certfile, -keyfile (k3s's): TLS to an etcd datastore. */
export interface DatastoreTLS {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export async function openStore(
  endpoint: string,
  dataDir: string,
  tls: DatastoreTLS = {},
): Promise<{ store: Store; description: string }> {
  const [scheme, rest = ''] = endpoint.includes('://')
    ? (endpoint.split('://', 2) as [string, string])
    : [endpoint, ''];
  switch (scheme) {
    case 'sqlite': {
      const path = rest ? rest : join(dataDir, 'server', 'db', 'state.db');
      const { createSqliteStore } = await import('./sqlite/sqlite.ts');
      return { store: await createSqliteStore({ path }), description: `sqlite ${path}` };
    }
    case 'etcd':
    case 'http':
    case 'https': {
      const hosts = (scheme === 'etcd' ? rest : endpoint).split(',').filter(Boolean);
      // With a CA, etcd://host:port means TLS, as k3s's https:// endpoints.
      const defaultScheme = tls.caFile ? 'https' : 'http';
      const endpoints = hosts.map((h) => (h.includes('://') ? h : `${defaultScheme}://${h}`));
      if (endpoints.some((e) => e.startsWith('https://')) && !tls.caFile)
        throw new Error(
          "an https:// etcd endpoint needs --datastore-cafile (the CA that signed etcd's certificate)",
        );
      if (Boolean(tls.certFile) !== Boolean(tls.keyFile))
        throw new Error('--datastore-certfile and --datastore-keyfile go together');
      const { createEtcdStore } = await import('./etcd/etcd.ts');
      return {
        store: await createEtcdStore({
          endpoints,
          prefix: '/skiff',
          ...(tls.caFile
            ? {
                tls: {
                  ca: readFileSync(tls.caFile),
                  ...(tls.certFile
                    ? { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile!) }
                    : {}),
                },
              }
            : {}),
        }),
        description: `etcd ${endpoints.join(',')}`,
      };
    }
    case 'memory': {
      const { createMemoryStore } = await import('./memory/memory.ts');
      return { store: createMemoryStore(), description: 'memory' };
    }
    default:
      throw new Error(
        `unsupported --datastore-endpoint ${JSON.stringify(endpoint)}: use sqlite://, etcd://host:port[,host:port] or memory://`,
      );
  }
}
