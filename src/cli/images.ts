// `skiff images import FILE...`: imports image tarballs into the node's
// containerd, the same way the agent imports `<data-dir>/agent/images/` at
// start (k3s's airgap images). For images a node must have with no registry.

import { parseArgs } from 'node:util';
import { importImage } from '../agent/images.ts';
import { containerdPaths } from '../node/paths.ts';

export const imagesUsage = `Usage: skiff images import FILE... [flags]

Imports OCI or docker image tarballs into the node's containerd (namespace
k8s.io, the one the kubelet uses). To have the agent import an image at every
start, put the tarball in <data-dir>/agent/images/ instead.

Flags:
  --data-dir DIR                      the node's data dir (default /var/lib/skiff as root, ~/.skiff otherwise)
  --container-runtime-endpoint URL    containerd's socket, when not the one the agent started
`;

export async function runImages(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      'data-dir': { type: 'string' },
      'container-runtime-endpoint': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  const [verb, ...files] = positionals;
  if (values.help || verb !== 'import' || files.length === 0) {
    (values.help ? console.log : console.error)(imagesUsage);
    return values.help ? 0 : 2;
  }
  const dataDir =
    values['data-dir'] ?? (process.getuid?.() === 0 ? '/var/lib/skiff' : `${process.env.HOME ?? '.'}/.skiff`);
  const endpoint = values['container-runtime-endpoint'] ?? `unix://${containerdPaths(dataDir).socket}`;
  for (const file of files) {
    try {
      for (const name of await importImage(endpoint, file)) console.log(`imported ${name}`);
    } catch (err) {
      console.error(`skiff images: ${(err as Error).message}`);
      return 1;
    }
  }
  return 0;
}
