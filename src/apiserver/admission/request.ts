// The admission chain bound to one request: the attributes of each call come
// from the kind written and the objects, the user from the request, and the
// plugins' warnings go onto the response. Handlers hand `hooks` to the
// registry, which calls them at upstream's points (rest.ts AdmissionHooks);
// subresources whose object is not what is stored (Binding, Eviction, Scale,
// TokenRequest) are admitted whole with `admitObject`.

import type { KubeObject } from '../../api/meta.ts';
import type { ResourceType } from '../../api/registry.ts';
import type { AuditRecord } from '../audit/audit.ts';
import type { UserInfo } from '../authn/user.ts';
import type { AdmissionHooks } from '../rest.ts';
import {
  type AdmissionAttributes,
  type AdmissionChain,
  type AdmissionResponse,
  runAdmission,
  runMutating,
  runValidating,
} from './admission.ts';

/** What the chain needs of a request: who sent it, where warnings go, and its audit record (for plugins' annotations). */
export interface AdmissionRequest {
  readonly user: UserInfo;
  warn(text: string): void;
  readonly audit?: AuditRecord | undefined;
}

/** Attributes of a subresource's own object, less what the request supplies. */
export type ObjectAttributes = Omit<AdmissionAttributes, 'user' | 'namespace' | 'name'> & {
  namespace?: string;
  name: string;
};

export interface RequestAdmission {
  /** The chain for a write through `rt` (and a subresource), as rest.ts calls it. */
  hooks(rt: ResourceType, subresource: string | undefined, dryRun: boolean): AdmissionHooks;
  /** Both phases at once, for subresources whose object is not what is stored. */
  admitObject(attrs: ObjectAttributes): Promise<void>;
}

export function requestAdmission(chain: AdmissionChain, request: AdmissionRequest): RequestAdmission {
  const respond = (r: AdmissionResponse): void => {
    for (const w of r.warnings ?? []) request.warn(w);
  };
  // Plugins' audit annotations go into the request's audit Event (audit/audit.ts).
  const addAuditAnnotation = (key: string, value: string) => request.audit?.annotate(key, value);
  return {
    hooks(rt, subresource, dryRun) {
      const attrs = (
        operation: AdmissionAttributes['operation'],
        object: KubeObject | undefined,
        old: KubeObject | undefined,
      ): AdmissionAttributes => ({
        operation,
        group: rt.group,
        version: rt.version,
        kind: rt.kind,
        resource: rt.plural,
        subresource: subresource ?? '',
        namespace: rt.namespaced ? ((object ?? old)?.metadata.namespace ?? '') : '',
        name: (object ?? old)?.metadata.name ?? '',
        ...(object ? { object } : {}),
        ...(old ? { oldObject: old } : {}),
        user: request.user,
        dryRun,
        addAuditAnnotation,
      });
      return {
        admit: async (op, object, old) => respond(await runMutating(attrs(op, object, old), chain.mutating)),
        validate: async (op, object, old) =>
          respond(await runValidating(attrs(op, object, old), chain.validating)),
      };
    },
    async admitObject(attrs) {
      const full: AdmissionAttributes = { namespace: '', ...attrs, user: request.user, addAuditAnnotation };
      respond(await runAdmission(full, chain.mutating, chain.validating));
    },
  };
}
