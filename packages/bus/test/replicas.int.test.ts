import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Entities, streamNameFor } from '@tandem/contracts';
import { createTestPrefix, startNatsCluster, type NatsCluster } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONSUMER_SETTINGS, ensureStreams, provisionNats } from '../src/index.js';

// Stream replicas on a real 3-node JetStream cluster on loopback, started by this file.

let cluster: NatsCluster;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  nc = await connect({ servers: [...cluster.urls] });
  jsm = await jetstreamManager(nc);
}, 60_000);

afterAll(async () => {
  await nc?.close();
  await cluster?.stop();
});

async function replicasOf(prefix: string): Promise<Record<string, number>> {
  const replicas: Record<string, number> = {};
  for (const entity of Entities) {
    const name = streamNameFor(prefix, entity);
    replicas[name] = (await jsm.streams.info(name)).config.num_replicas;
  }
  return replicas;
}

describe('stream replicas', () => {
  it('creates every stream with the replicas asked for, placed on three nodes', async () => {
    const prefix = createTestPrefix();
    await ensureStreams(jsm, { prefix, replicas: 3 });
    expect(Object.values(await replicasOf(prefix))).toEqual(Entities.map(() => 3));
    const info = await jsm.streams.info(streamNameFor(prefix, 'task'));
    expect(info.cluster?.replicas ?? []).toHaveLength(2);
  });

  it('never lowers replicas an operator raised: a service or the provisioner asking for fewer keeps them', async () => {
    const prefix = createTestPrefix();
    await ensureStreams(jsm, { prefix, replicas: 1 });
    const raised = streamNameFor(prefix, 'task');
    // The operator raises one stream to 3 replicas by hand (nats stream edit --replicas 3).
    await jsm.streams.update(raised, { num_replicas: 3 });

    // A service restarts with the default (TANDEM_STREAM_REPLICAS=1).
    const changes = await ensureStreams(jsm, { prefix, replicas: 1 });
    expect(changes[raised]).toBe('unchanged');
    expect((await replicasOf(prefix))[raised]).toBe(3);

    // So does the provisioner.
    await provisionNats(jsm, { prefix, settings: DEFAULT_CONSUMER_SETTINGS, streamReplicas: 1 });
    const after = await replicasOf(prefix);
    expect(after[raised]).toBe(3);
    // The streams nobody raised stay at 1.
    expect(after[streamNameFor(prefix, 'plan')]).toBe(1);
  });
});
