import { describe, it } from 'vitest';
import { runScenario, type TaskKind } from '../src/index.js';
import { expectCorrect } from './expect-correct.js';

const POISON_KINDS: readonly TaskKind[] = ['big-output', 'big-plan', 'nul-output'];

describe('fault suite: poison and oversized messages mixed in', () => {
  it('ends every poison task with a typed outcome, creates no task from poison, and blocks no other task', async () => {
    const result = await runScenario({
      name: 'poison',
      description:
        'every 10th task prints 1.1 MiB, plans five 240,000-character writes, or returns NUL; unparseable and schema-invalid messages and an HTTP goal with NUL every 10 tasks; 2 tasks/s for 30 s',
      durationMs: 30_000,
      rate: 2,
      poison: true,
      kindOf: (index) =>
        index % 10 === 3
          ? (POISON_KINDS[Math.floor(index / 10) % POISON_KINDS.length] ?? 'normal')
          : index % 3 === 2
            ? 'question'
            : 'normal',
    });
    expectCorrect(result);
  });
});
