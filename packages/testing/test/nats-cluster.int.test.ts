import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { startNatsCluster, type NatsCluster } from '../src/index.js';

const started: NatsCluster[] = [];

afterAll(async () => {
  await Promise.all(started.map((cluster) => cluster.stop()));
});

describe('startNatsCluster', () => {
  it('starts a 3-node JetStream cluster that keeps an R3 stream writable when a node is killed and restarted', async () => {
    const cluster = await startNatsCluster(3);
    started.push(cluster);
    expect(cluster.nodes.map((node) => node.name)).toEqual(['n1', 'n2', 'n3']);
    expect(cluster.url.split(',')).toEqual(cluster.urls);
    const nc = await connect({ servers: [...cluster.urls], maxReconnectAttempts: -1 });
    try {
      const jsm = await jetstreamManager(nc);
      const js = jetstream(nc, { timeout: 10_000 });
      await jsm.streams.add({ name: 'CLUSTER_TEST', subjects: ['cluster.test.>'], num_replicas: 3 });
      await js.publish('cluster.test.a', 'one');
      const leader = (await jsm.streams.info('CLUSTER_TEST')).cluster?.leader;
      const victim = cluster.nodes.find((node) => node.name === leader) ?? cluster.nodes[0];
      await victim?.kill();
      expect(victim?.running).toBe(false);
      // The two survivors elect a new stream leader; a publish may need a few tries meanwhile.
      let stored = false;
      for (let attempt = 0; attempt < 40 && !stored; attempt++) {
        try {
          await js.publish('cluster.test.b', 'two');
          stored = true;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
      expect(stored).toBe(true);
      await victim?.start();
      await cluster.waitForJetStream();
      expect((await jsm.streams.info('CLUSTER_TEST')).state.messages).toBe(2);
    } finally {
      await nc.close();
    }
  }, 60_000);

  it('starts a single server without clustering when asked for one node', async () => {
    const cluster = await startNatsCluster(1);
    started.push(cluster);
    const nc = await connect({ servers: cluster.url });
    try {
      const jsm = await jetstreamManager(nc);
      expect((await jsm.getAccountInfo()).streams).toBe(0);
    } finally {
      await nc.close();
    }
    const [node] = cluster.nodes;
    await node?.kill();
    await node?.start();
    expect(node?.running).toBe(true);
  }, 30_000);
});
