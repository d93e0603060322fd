import { describe, it } from 'vitest';
import { runScenario } from '../src/index.js';
import { expectCorrect } from './expect-correct.js';

describe('fault suite: no fault (the baseline)', () => {
  it('loses, duplicates and strands nothing, and a plain subscriber sees each outcome once', async () => {
    const result = await runScenario({
      name: 'baseline',
      description:
        'no fault: 2 tasks/s for 20 s (workspace, sandbox, http_request, every third asks a human)',
      durationMs: 20_000,
      rate: 2,
    });
    expectCorrect(result);
  });
});
