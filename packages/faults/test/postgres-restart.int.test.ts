import { describe, it } from 'vitest';
import { runScenario } from '../src/index.js';
import { expectCorrect } from './expect-correct.js';

describe('fault suite: Postgres immediate restart', () => {
  it('loses, duplicates and strands nothing, and no service crashes, across pg_ctl restart -m immediate', async () => {
    const result = await runScenario({
      name: 'postgres-restart',
      description: "pg_ctl restart -m immediate of the suite's own cluster at 10 s, under 2 tasks/s for 30 s",
      durationMs: 30_000,
      rate: 2,
      fault: async ({ at, mark, stack, time }) => {
        await at(10_000);
        mark('pg_ctl restart -m immediate');
        const started = Date.now();
        await stack.postgres.restartImmediate();
        time('postgres restart (ms)', Date.now() - started);
      },
    });
    expectCorrect(result);
  });
});
