// Every built-in kind, in the order discovery lists them (upstream's group order).

import { customResourceDefinitions } from '../../apiextensions/crd-resource.ts';
import { Registry } from '../registry.ts';
import { admissionregistrationResources } from './admissionregistration.ts';
import { appsResources, batchResources } from './apps.ts';
import { reviewResources } from './auth.ts';
import { certificatesResources } from './certificates.ts';
import { coreResources } from './core.ts';
import { otherResources } from './other.ts';

export function builtinRegistry(): Registry {
  const registry = new Registry();
  for (const rt of [
    ...coreResources,
    ...appsResources,
    ...batchResources,
    ...certificatesResources,
    ...otherResources,
    ...admissionregistrationResources,
    ...reviewResources,
    customResourceDefinitions,
  ])
    registry.add(rt);
  return registry;
}
