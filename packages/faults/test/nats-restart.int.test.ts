import { describe, it } from 'vitest';
import { runScenario } from '../src/index.js';
import { expectCorrect } from './expect-correct.js';

describe('fault suite: nats-server kill and restart', () => {
  it('loses, duplicates and strands nothing when the nats-server is killed and started again', async () => {
    const result = await runScenario({
      name: 'nats-restart',
      description:
        'kill -9 of the nats-server at 10 s, started again on the same store 3 s later, under 2 tasks/s for 30 s',
      durationMs: 30_000,
      rate: 2,
      fault: async ({ at, mark, stack, time }) => {
        await at(10_000);
        const node = stack.nats.nodes[0];
        if (node === undefined) throw new Error('no nats-server');
        mark('kill -9 nats-server');
        await node.kill();
        await at(13_000);
        const started = Date.now();
        await node.start();
        mark('nats-server started again');
        time('nats-server start (ms)', Date.now() - started);
      },
    });
    expectCorrect(result);
  });
});
