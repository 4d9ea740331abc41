// The API server's authorization chain, as kube-apiserver's
// --authorization-mode: system:masters first (always allowed), then the
// modes in the order given (Node, RBAC, AlwaysAllow). RBAC and the Node
// authorizer read the cluster through shared informers over the server's
// own loopback transport, as system:apiserver; the Node authorizer's graph
// reads the pod and claim watch caches directly (sources.ts).

import type { ApiServer } from '../apiserver/apiserver.ts';
import { SYSTEM_MASTERS } from '../apiserver/authn/user.ts';
import {
  type Attributes,
  type Authorization,
  type Authorizer,
  privilegedGroups,
  unionAuthorizer,
} from '../apiserver/authz/authorizer.ts';
import { ensureBootstrapPolicyWith } from '../apiserver/authz/bootstrap.ts';
import { bootstrapClusterRoles } from '../apiserver/authz/bootstrap-policy.ts';
import { NodeAuthorizer } from '../apiserver/authz/node.ts';
import { RBACAuthorizer } from '../apiserver/authz/rbac.ts';
import { alwaysAllow, type RuleResolver, unionRuleResolver } from '../apiserver/authz/reviews.ts';
import { informerRBACSource, watchCacheNodeGraph } from '../apiserver/authz/sources.ts';
import { createInProcessTransport } from '../apiserver/in-process.ts';
import { createClientset } from '../client/clientset.ts';
import { createInformerFactory, type InformerFactory } from '../client/informer-factory.ts';
import type { Log } from '../util/log.ts';

export const AUTHORIZATION_MODES = ['AlwaysAllow', 'Node', 'RBAC'] as const;
export type AuthorizationMode = (typeof AUTHORIZATION_MODES)[number];

/** Parses --authorization-mode (comma-separated, as upstream); throws on an unknown or repeated mode. */
export function parseAuthorizationModes(flag: string): AuthorizationMode[] {
  const modes = flag
    .split(',')
    .map((m) => m.trim())
    .filter((m) => m !== '');
  if (modes.length === 0) throw new Error('--authorization-mode needs at least one mode');
  for (const m of modes) {
    if (!(AUTHORIZATION_MODES as readonly string[]).includes(m))
      throw new Error(
        `--authorization-mode: unknown mode ${JSON.stringify(m)} (one of ${AUTHORIZATION_MODES.join(', ')})`,
      );
  }
  if (new Set(modes).size !== modes.length) throw new Error('--authorization-mode: a mode is listed twice');
  return modes as AuthorizationMode[];
}

/**
 * The authorizer the ApiServer is built with, before the informers that
 * feed it exist (they need the ApiServer): it refuses everyone but
 * system:masters until `start` has synced them.
 */
export class ServerAuthorization implements Authorizer, RuleResolver {
  #authorizer: Authorizer = privilegedGroups(SYSTEM_MASTERS);
  #resolver: RuleResolver = unionRuleResolver();
  #informers: InformerFactory | undefined;
  #stopGraph: (() => void) | undefined;
  readonly modes: AuthorizationMode[];

  constructor(modes: AuthorizationMode[]) {
    this.modes = modes;
  }

  authorize(attrs: Attributes): Authorization {
    return this.#authorizer.authorize(attrs);
  }

  rulesFor(user: Parameters<RuleResolver['rulesFor']>[0], namespace: string) {
    return this.#resolver.rulesFor(user, namespace);
  }

  /** Creates the bootstrap policy, starts and syncs the informers, then switches to the configured chain. */
  async start(api: ApiServer, log: Log): Promise<void> {
    const clients = createClientset(
      createInProcessTransport(api, { name: 'system:apiserver', groups: [SYSTEM_MASTERS] }),
    );
    const written = await ensureBootstrapPolicyWith(clients);
    if (written.length > 0) log('bootstrap RBAC policy written', { objects: written.length });
    const informers = createInformerFactory(clients);
    const authorizers: Authorizer[] = [privilegedGroups(SYSTEM_MASTERS)];
    const resolvers: RuleResolver[] = [];
    for (const mode of this.modes) {
      if (mode === 'AlwaysAllow') {
        authorizers.push(alwaysAllow);
        resolvers.push(alwaysAllow);
      } else if (mode === 'Node') {
        const nodeRules = bootstrapClusterRoles().find((r) => r.metadata.name === 'system:node')?.rules ?? [];
        const fed = await watchCacheNodeGraph(api);
        this.#stopGraph = fed.stop;
        const node = new NodeAuthorizer(fed.graph, nodeRules);
        authorizers.push(node);
        resolvers.push(node);
      } else {
        const rbac = new RBACAuthorizer(informerRBACSource(informers));
        authorizers.push(rbac);
        resolvers.push(rbac);
      }
    }
    await informers.start();
    this.#informers = informers;
    this.#authorizer = unionAuthorizer(...authorizers);
    this.#resolver = unionRuleResolver(...resolvers);
    log('authorization ready', { modes: this.modes.join(',') });
  }

  stop(): void {
    this.#informers?.stop();
    this.#stopGraph?.();
  }
}
