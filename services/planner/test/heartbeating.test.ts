import { describe, expect, it } from 'vitest';
import { heartbeating, type PlanningModel } from '../src/planning-loop.js';

describe('heartbeating', () => {
  it('reports the delivery working before and after every model call', async () => {
    const seen: string[] = [];
    const model: PlanningModel = {
      complete: async () => {
        seen.push('call');
        return { content: null, toolCalls: [], model: 'm', usage: { totalTokens: 1 }, costUsd: 0 };
      },
    };
    const wrapped = heartbeating(model, { working: () => seen.push('working') });
    const request = {
      taskId: 't',
      messages: [],
      tools: [],
      idempotencyKey: 'k',
      preference: undefined,
      budget: undefined,
      spent: { tokens: 0, costUsd: 0, calls: 0 },
    };
    await wrapped.complete(request);
    await wrapped.complete(request);
    expect(seen).toEqual(['working', 'call', 'working', 'working', 'call', 'working']);
  });
});
