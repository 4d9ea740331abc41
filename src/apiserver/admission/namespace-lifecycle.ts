// NamespaceLifecycle admission: no new objects in a namespace that does not
// exist or is being deleted (upstream's plugin/pkg/admission/namespace/lifecycle).
// The registry asks it on every create of a namespaced object (rest.ts's
// namespaceCheck), after the strategy's validation.

import { forbidden, notFound } from '../../api/errors.ts';
import type { ResourceStorage } from '../rest.ts';

/** The check for one server, reading namespaces from their watch cache first. */
export function namespaceLifecycle(namespaces: () => ResourceStorage): (namespace: string) => Promise<void> {
  return async (namespace) => {
    const s = namespaces();
    let ns = s.cache.get(s.key(undefined, namespace));
    if (!ns) {
      // The cache may lag a namespace created a moment ago.
      try {
        ns = await s.get(undefined, namespace);
      } catch {
        throw notFound({ group: '', resource: 'namespaces' }, namespace);
      }
    }
    if (
      ns.metadata.deletionTimestamp ||
      (ns.status as { phase?: string } | undefined)?.phase === 'Terminating'
    ) {
      throw forbidden(
        `unable to create new content in namespace ${namespace} because it is being terminated`,
      );
    }
  };
}
