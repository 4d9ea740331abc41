// The pod network flags `skiff server` and `skiff agent` share, with k3s's
// names. --flannel-backend is the cluster's: the server serves its own to
// agents (node-token.ts CONFIG_PATH), and an agent given none uses it, so
// one flag on the server sets every node, as in k3s. The others are each
// node's own. src/network/node.ts says what they do.

import { FLANNEL_BACKENDS, type FlannelBackend } from '../network/node.ts';

export const FLANNEL_FLAGS = {
  'flannel-backend': { type: 'string' },
  'flannel-iface': { type: 'string' },
  'node-external-ip': { type: 'string' },
  'flannel-external-ip': { type: 'boolean', default: false },
} as const;

export const FLANNEL_FLAGS_USAGE = `  --flannel-backend vxlan|host-gw|none  the pod network across nodes (default vxlan;
                              none: bring your own); an agent without the flag
                              takes its server's
  --flannel-iface IFACE       the interface the pod network uses (default: the
                              one holding --node-ip)
  --node-external-ip IP       the Node's ExternalIP
  --flannel-external-ip       peers reach this node's pods at --node-external-ip,
                              not the node IP`;

export interface FlannelFlagValues {
  'flannel-backend'?: string | undefined;
  'flannel-iface'?: string | undefined;
  'node-external-ip'?: string | undefined;
  'flannel-external-ip'?: boolean | undefined;
}

export interface FlannelOptions {
  /** Absent: the flag was not given (the agent then asks its server). */
  flannelBackend?: FlannelBackend;
  flannelIface?: string;
  nodeExternalIP?: string;
  flannelExternalIP?: boolean;
}

/** The node's pod network options from its flags, or what is wrong with them (for the command to print). */
export function flannelOptions(values: FlannelFlagValues): FlannelOptions | { error: string } {
  const backend = values['flannel-backend'];
  if (backend !== undefined && !FLANNEL_BACKENDS.includes(backend as FlannelBackend))
    return { error: `--flannel-backend must be ${FLANNEL_BACKENDS.join(', ')}, not ${backend}` };
  if (values['flannel-external-ip'] && !values['node-external-ip'])
    return { error: '--flannel-external-ip needs --node-external-ip' };
  return {
    ...(backend !== undefined ? { flannelBackend: backend as FlannelBackend } : {}),
    ...(values['flannel-iface'] ? { flannelIface: values['flannel-iface'] } : {}),
    ...(values['node-external-ip'] ? { nodeExternalIP: values['node-external-ip'] } : {}),
    ...(values['flannel-external-ip'] ? { flannelExternalIP: true } : {}),
  };
}
