// DefaultIngressClass: the built-in admission plugin that gives a new
// Ingress which names no class the cluster's default IngressClass, as
// upstream's plugin/pkg/admission/network/defaultingressclass.
//
// "Names no class": spec.ingressClassName absent (nil) and no legacy
// kubernetes.io/ingress.class annotation. The default is the class annotated
// ingressclass.kubernetes.io/is-default-class: "true"; should several be,
// the newest wins, then the first by name (upstream since 1.28; before, two
// defaults refused the Ingress). Only creates are looked at, never
// subresources.

import type { Ingress, IngressClass } from '../../api/types/networking-v1.ts';
import type { MutatingPlugin } from './admission.ts';

export const IS_DEFAULT_INGRESS_CLASS_ANNOTATION = 'ingressclass.kubernetes.io/is-default-class';
const LEGACY_CLASS_ANNOTATION = 'kubernetes.io/ingress.class';

export interface DefaultIngressClassOptions {
  /** Every IngressClass (from the watch cache in the server, as upstream's lister). */
  listIngressClasses(): Promise<IngressClass[]>;
}

export function defaultIngressClassPlugin(opts: DefaultIngressClassOptions): MutatingPlugin {
  return {
    name: 'DefaultIngressClass',
    handles: (a) =>
      a.operation === 'CREATE' &&
      a.group === 'networking.k8s.io' &&
      a.resource === 'ingresses' &&
      a.subresource === '',
    async admit(a) {
      const ing = a.object as Ingress | undefined;
      if (!ing) return undefined;
      if (ing.spec?.ingressClassName !== undefined && ing.spec.ingressClassName !== null) return undefined;
      if (ing.metadata.annotations?.[LEGACY_CLASS_ANNOTATION] !== undefined) return undefined;
      const def = defaultIngressClass(await opts.listIngressClasses());
      if (!def?.metadata.name) return undefined;
      ing.spec ??= {};
      ing.spec.ingressClassName = def.metadata.name;
      return undefined;
    },
  };
}

/** The default class, or undefined: of those marked default, the newest, then the first by name. */
export function defaultIngressClass(classes: readonly IngressClass[]): IngressClass | undefined {
  const created = (c: IngressClass) => {
    const t = Date.parse(c.metadata.creationTimestamp ?? '');
    return Number.isNaN(t) ? 0 : t;
  };
  let best: IngressClass | undefined;
  for (const c of classes) {
    if (c.metadata.annotations?.[IS_DEFAULT_INGRESS_CLASS_ANNOTATION] !== 'true') continue;
    if (
      !best ||
      created(c) > created(best) ||
      (created(c) === created(best) && (c.metadata.name ?? '') < (best.metadata.name ?? ''))
    )
      best = c;
  }
  return best;
}
