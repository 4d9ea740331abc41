import { after, before } from 'node:test';
import { durabilityContract, spawnDurabilityWriter } from '../durability.case.ts';
import { createEtcdStore } from './etcd.ts';
import { type EtcdCluster, startEtcd } from './etcd-harness.ts';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.stop();
});

const options = () => ({ endpoints: etcd.endpoints, prefix: '/durability-test/' });

durabilityContract('etcd', {
  spawnWriter: () => spawnDurabilityWriter('etcd', options()),
  // The writer is only etcd's client, so killing it alone proves little:
  // crash etcd too, and read back what it recovers from its WAL.
  afterWriterKilled: () => etcd.restart(0),
  open: () => createEtcdStore(options()),
});
