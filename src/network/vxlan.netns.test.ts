// The overlay contract against the VXLAN backend, in network namespaces.
import { overlayContract } from './overlay.case.ts';
import { cidrAddress } from './overlay.ts';
import { VTEP_DEVICE, vtepMAC, vxlanBackend } from './vxlan.ts';

overlayContract('vxlan', (host) => ({
  backend: vxlanBackend({ exec: host.exec }),
  leftovers: async () =>
    [
      await host.exec('ip', ['-o', 'link', 'show', VTEP_DEVICE]).catch(() => ''),
      await host.exec('ip', ['route', 'show', 'proto', '83']),
    ]
      .join('')
      .trim(),
  entriesFor: async (peer) => {
    const route = await host.exec('ip', ['route', 'show', peer.podCIDR]);
    const neigh = await host.exec('ip', ['neigh', 'show', cidrAddress(peer.podCIDR, 0), 'dev', VTEP_DEVICE]);
    const fdb = (await host.exec('bridge', ['fdb', 'show', 'dev', VTEP_DEVICE]))
      .split('\n')
      .filter((l) => l.startsWith(vtepMAC(peer.name)));
    return [route.trim(), neigh.trim(), ...fdb].filter(Boolean).join('\n');
  },
}));
