import { jetstreamManager } from '@nats-io/jetstream';
import { streamNameFor } from '@tandem/testing';
import { describe, it } from 'vitest';
import { runScenario } from '../src/index.js';
import { expectCorrect } from './expect-correct.js';

describe('fault suite: a 3-node NATS cluster with streams at replicas 3, one node killed', () => {
  it('loses, duplicates and strands nothing when the node that leads the task stream dies for good', async () => {
    const result = await runScenario({
      name: 'nats-cluster',
      description:
        '3 nats-servers on loopback, TANDEM_STREAM_REPLICAS=3; kill -9 at 12 s of the node leading the TASK stream, left down; 2 tasks/s for 30 s',
      stack: { natsNodes: 3 },
      durationMs: 30_000,
      rate: 2,
      fault: async ({ at, mark, stack }) => {
        await at(12_000);
        const jsm = await jetstreamManager(stack.nc, { timeout: 5_000 });
        const info = await jsm.streams.info(streamNameFor(stack.prefix, 'task'));
        const leader = info.cluster?.leader;
        const node = stack.nats.nodes.find((candidate) => candidate.name === leader) ?? stack.nats.nodes[0];
        if (node === undefined) throw new Error('no node to kill');
        mark(
          `kill -9 nats-server ${node.name} (TASK stream leader ${leader ?? 'unknown'}, replicas ${info.config.num_replicas})`,
        );
        await node.kill();
      },
    });
    expectCorrect(result);
  });
});
