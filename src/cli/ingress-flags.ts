// The ingress flags `skiff server` and `skiff agent` share: k3s's
// `--disable` (k3s: `--disable traefik`; Skiff's component is `ingress`,
// and `traefik` is taken as its alias so k3s command lines keep working)
// and the proxy's ports (src/ingress/node.ts).

export const INGRESS_FLAGS = {
  disable: { type: 'string', multiple: true },
  'ingress-http-port': { type: 'string' },
  'ingress-https-port': { type: 'string' },
} as const;

export const INGRESS_FLAGS_USAGE = `  --disable COMPONENT         do not run a packaged component (repeatable or
                              comma-separated): ingress (alias traefik), the
                              ingress proxy (on the server: on every node that
                              joins it, and no IngressClass skiff)
  --ingress-http-port PORT    the ingress proxy's HTTP port on the node (default 80)
  --ingress-https-port PORT   the ingress proxy's HTTPS port on the node (default 443)`;

/** What `--disable` accepts. */
export const DISABLABLE_COMPONENTS = ['ingress'] as const;
const ALIASES: Record<string, string> = { traefik: 'ingress' };

export interface IngressFlagValues {
  disableIngress?: boolean;
  ingressHttpPort?: number;
  ingressHttpsPort?: number;
}

const port = (flag: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 65535) throw new Error(`--${flag} must be a port (1-65535), not ${v}`);
  return n;
};

/** Reads the flags; throws an Error naming the bad one. */
export function ingressOptions(values: {
  disable?: string[] | undefined;
  'ingress-http-port'?: string | undefined;
  'ingress-https-port'?: string | undefined;
}): IngressFlagValues {
  const disabled = new Set<string>();
  for (const item of (values.disable ?? []).flatMap((d) => d.split(',')).map((d) => d.trim()))
    if (item) {
      const name = ALIASES[item] ?? item;
      if (!(DISABLABLE_COMPONENTS as readonly string[]).includes(name))
        throw new Error(
          `--disable: unknown component ${JSON.stringify(item)} (one of ${DISABLABLE_COMPONENTS.join(', ')})`,
        );
      disabled.add(name);
    }
  const http = port('ingress-http-port', values['ingress-http-port']);
  const https = port('ingress-https-port', values['ingress-https-port']);
  if (http !== undefined && http === https)
    throw new Error('--ingress-http-port and --ingress-https-port must differ');
  return {
    ...(disabled.has('ingress') ? { disableIngress: true } : {}),
    ...(http !== undefined ? { ingressHttpPort: http } : {}),
    ...(https !== undefined ? { ingressHttpsPort: https } : {}),
  };
}
