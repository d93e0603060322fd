import { SERVICES } from '@tandem/launcher';
import { describe, it } from 'vitest';
import { runScenario } from '../src/index.js';
import { expectCorrect } from './expect-correct.js';

describe('fault suite: kill -9 of each service in turn', () => {
  it('loses, duplicates and strands nothing while the launcher restarts each killed service', async () => {
    const result = await runScenario({
      name: 'kill-each-service',
      description:
        'kill -9 of learning, approval, sandbox-runner, executor and planner, 7 s apart, under 2 tasks/s for 40 s; the launcher restarts each',
      durationMs: 40_000,
      rate: 2,
      fault: async ({ at, killService }) => {
        for (const [index, service] of SERVICES.entries()) {
          await at(5_000 + index * 7_000);
          await killService(service);
        }
      },
    });
    expectCorrect(result);
  });
});
