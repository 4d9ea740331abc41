// The overlay contract against the host-gw backend, in network namespaces.
import { hostGwBackend } from './host-gw.ts';
import { overlayContract } from './overlay.case.ts';

overlayContract('host-gw', (host) => ({
  backend: hostGwBackend({ exec: host.exec }),
  leftovers: async () => (await host.exec('ip', ['route', 'show', 'proto', '83'])).trim(),
  entriesFor: async (peer) => (await host.exec('ip', ['route', 'show', peer.podCIDR])).trim(),
}));
