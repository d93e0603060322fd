import { describe, it } from 'vitest';
import { runScenario, SUITE_ACK_WAIT_MS } from '../src/index.js';
import { expectCorrect } from './expect-correct.js';

describe('fault suite: SIGSTOP of an executor past its ack wait', () => {
  it('another executor takes over, and the stopped one, continued, duplicates nothing', async () => {
    const stoppedMs = SUITE_ACK_WAIT_MS + 5_000;
    const result = await runScenario({
      name: 'executor-sigstop',
      description: `two executors; SIGSTOP of one at 8 s for ${stoppedMs} ms (ack wait ${SUITE_ACK_WAIT_MS} ms + 5 s), then SIGCONT, under 2 tasks/s for 30 s`,
      stack: { replicasOf: { executor: 2 } },
      durationMs: 30_000,
      rate: 2,
      fault: async ({ at, mark, stack }) => {
        await at(8_000);
        const target = stack.services.instances('executor').find((entry) => entry.replica === 0);
        const pid = target?.child.pid;
        if (pid === undefined) throw new Error('no executor to stop');
        mark(`SIGSTOP executor#0 (pid ${pid})`);
        process.kill(pid, 'SIGSTOP');
        await at(8_000 + stoppedMs);
        process.kill(pid, 'SIGCONT');
        mark('SIGCONT executor#0');
      },
    });
    expectCorrect(result);
  });
});
