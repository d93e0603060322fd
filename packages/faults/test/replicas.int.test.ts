import { describe, it } from 'vitest';
import { runScenario } from '../src/index.js';
import { expectCorrect } from './expect-correct.js';

describe('fault suite: two replicas of every service under load', () => {
  it('loses, duplicates and strands nothing with two processes on every durable consumer', async () => {
    const result = await runScenario({
      name: 'replicas',
      description: 'two replicas of each of the five services (ten processes), 3 tasks/s for 30 s',
      stack: { replicas: 2 },
      durationMs: 30_000,
      rate: 3,
    });
    expectCorrect(result);
  });
});
