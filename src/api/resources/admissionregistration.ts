// admissionregistration.k8s.io/v1: the webhook configurations and
// ValidatingAdmissionPolicy(Binding), with upstream's printer columns
// (pkg/printers/internalversion). The admission plugins that act on them
// are src/apiserver/admission/webhook/ and validating-admission-policy.ts.

import type { KubeObject } from '../meta.ts';
import type { ResourceType } from '../registry.ts';
import { builtinTypeModel } from '../schema/index.ts';
import {
  defaultBinding,
  defaultPolicy,
  defaultWebhookConfiguration,
  validateBinding,
  validatePolicy,
  validateWebhookConfiguration,
} from './admissionregistration-validation.ts';
import { kind } from './common.ts';
// A cycle (index.ts lists this file's kinds), used only when a policy is written.
import { builtinRegistry } from './index.ts';
import { typeCheckPolicy } from './policy-type-check.ts';
import { arr, asObj, col, get } from './printers.ts';

const GROUP = 'admissionregistration.k8s.io';

const webhookConfiguration = (kindName: string, plural: string, mutating: boolean): ResourceType =>
  kind({
    group: GROUP,
    version: 'v1',
    kind: kindName,
    plural,
    singular: plural.slice(0, -1),
    categories: ['api-extensions'],
    namespaced: false,
    columns: [col('Webhooks', 'integer', 'Webhooks indicates the number of webhooks in this configuration')],
    cells: (cfg) => [arr(cfg.webhooks).length],
    defaults: (cfg) => defaultWebhookConfiguration(cfg, mutating),
    validateSpec: (cfg) => validateWebhookConfiguration(cfg, mutating),
  });

/** "apps/v1/Deployment" (upstream's ParamKind column), or <unset>. */
function paramKindCell(pk: unknown): string {
  const o = asObj(pk);
  if (!o.kind) return '<unset>';
  return `${o.apiVersion}/${o.kind}`;
}

/** "namespace/name", "*\/name" or the selector (upstream's ParamRef column), or <unset>. */
function paramRefCell(ref: unknown): string {
  const o = asObj(ref);
  if (!o.name && !o.selector) return '<unset>';
  const ns = o.namespace ? String(o.namespace) : '*';
  return o.name ? `${ns}/${o.name}` : `${ns}/${JSON.stringify(o.selector)}`;
}

let kindsByResource: Map<string, string> | undefined;
function kindOf(group: string, version: string, resource: string): string | undefined {
  kindsByResource ??= new Map(
    builtinRegistry()
      .all()
      .map((rt) => [`${rt.group}/${rt.version}/${rt.plural}`, rt.kind]),
  );
  return kindsByResource.get(`${group}/${version}/${resource}`);
}

/** status.typeChecking and observedGeneration, as upstream's type-checking controller writes them. */
function typeCheckingStatus(p: KubeObject, generation: number): void {
  const expressionWarnings = typeCheckPolicy(p, builtinTypeModel(), kindOf);
  p.status = {
    ...(p.status as object),
    observedGeneration: generation,
    typeChecking: expressionWarnings.length ? { expressionWarnings } : {},
  };
}

const policies = kind({
  group: GROUP,
  version: 'v1',
  kind: 'ValidatingAdmissionPolicy',
  plural: 'validatingadmissionpolicies',
  singular: 'validatingadmissionpolicy',
  categories: ['api-extensions'],
  namespaced: false,
  status: true,
  generation: true,
  columns: [
    col('Validations', 'integer', 'Validations indicates the number of validation expressions'),
    col('ParamKind', 'string', 'ParamKind specifies the kind of resources used to parameterize this policy'),
  ],
  cells: (p) => [arr(get(p, 'spec', 'validations')).length, paramKindCell(get(p, 'spec', 'paramKind'))],
  defaults: defaultPolicy,
  validateSpec: (p) => validatePolicy(p),
  prepareCreate: (p) => typeCheckingStatus(p, 1),
  prepareUpdate: (p, old) => {
    const changed = JSON.stringify(p.spec) !== JSON.stringify(old.spec);
    const generation = old.metadata.generation ?? 1;
    typeCheckingStatus(p, changed ? generation + 1 : generation);
  },
});

const bindings = kind({
  group: GROUP,
  version: 'v1',
  kind: 'ValidatingAdmissionPolicyBinding',
  plural: 'validatingadmissionpolicybindings',
  singular: 'validatingadmissionpolicybinding',
  categories: ['api-extensions'],
  namespaced: false,
  generation: true,
  columns: [
    col(
      'PolicyName',
      'string',
      'PolicyName indicates the policy definition which the policy binding binded to',
    ),
    col('ParamRef', 'string', 'ParamRef indicates the param resource which sets the configration param'),
  ],
  cells: (b) => [String(get(b, 'spec', 'policyName') ?? ''), paramRefCell(get(b, 'spec', 'paramRef'))],
  defaults: defaultBinding,
  validateSpec: (b) => validateBinding(b),
});

export const admissionregistrationResources: ResourceType[] = [
  webhookConfiguration('MutatingWebhookConfiguration', 'mutatingwebhookconfigurations', true),
  webhookConfiguration('ValidatingWebhookConfiguration', 'validatingwebhookconfigurations', false),
  policies,
  bindings,
];
