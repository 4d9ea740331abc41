// Creating and reconciling the bootstrap policy through the API at start.

import { isApiError } from '../../api/errors.ts';
import type { Clientset } from '../../client/clientset.ts';
import { bootstrapClusterRoleBindings, bootstrapClusterRoles } from './bootstrap-policy.ts';
import { controllerClusterRoleBindings, controllerClusterRoles } from './controller-roles.ts';
import { ensureBootstrapPolicy, type PolicyClient } from './reconcile.ts';

function policyClient<T>(c: {
  get(ns: undefined, name: string): Promise<T>;
  create(ns: undefined, obj: T): Promise<T>;
  update(obj: T): Promise<T>;
  delete(ns: undefined, name: string): Promise<unknown>;
}): PolicyClient<T> {
  return {
    get: (name) =>
      c.get(undefined, name).catch((err) => {
        if (isApiError(err, 'NotFound')) return undefined;
        throw err;
      }),
    create: (obj) => c.create(undefined, obj),
    update: (obj) => c.update(obj),
    delete: (name) => c.delete(undefined, name),
  };
}

/** Ensures upstream's bootstrap roles and bindings exist (an admin's client); returns what it wrote. */
export function ensureBootstrapPolicyWith(clients: Clientset): Promise<string[]> {
  return ensureBootstrapPolicy(
    policyClient(clients.clusterRoles),
    policyClient(clients.clusterRoleBindings),
    {
      roles: [...bootstrapClusterRoles(), ...controllerClusterRoles()],
      bindings: [...bootstrapClusterRoleBindings(), ...controllerClusterRoleBindings()],
    },
  );
}
