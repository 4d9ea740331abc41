// Opens the store a --datastore-endpoint names:
//   sqlite://             the default, <data-dir>/server/db/state.db
//   sqlite:///path/to.db  an explicit file
//   etcd://h1:2379,h2:2379
//   memory://             nothing persisted (tests, benchmarks)

import { join } from 'node:path';
import type { Store } from './store.ts';

export async function openStore(
  endpoint: string,
  dataDir: string,
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
      const endpoints = hosts.map((h) => (h.includes('://') ? h : `http://${h}`));
      const { createEtcdStore } = await import('./etcd/etcd.ts');
      return {
        store: await createEtcdStore({ endpoints, prefix: '/skiff' }),
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
