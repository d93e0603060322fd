import { HTTP_TASK_SOURCE } from '@tandem/contracts';
import { describe, expect, it } from 'vitest';
import { acceptedFromStoredTask, sweepPlan, takeoverRoom } from '../src/domain/takeover.js';

describe('the take-over sweep', () => {
  it('claims only what the concurrency leaves room for', () => {
    expect(takeoverRoom(4, 0)).toBe(4);
    expect(takeoverRoom(4, 3)).toBe(1);
    expect(takeoverRoom(4, 4)).toBe(0);
    expect(takeoverRoom(4, 6)).toBe(0);
  });

  it('counts a stale accepted task only while the planning consumer has nothing undelivered', () => {
    expect(sweepPlan(2, 0)).toEqual({ limit: 2, withAccepted: true });
    expect(sweepPlan(2, 5)).toEqual({ limit: 2, withAccepted: false });
  });
});

describe('acceptedFromStoredTask', () => {
  const stored = {
    id: 'task-1',
    source: 'urn:acme:billing',
    externalId: 'event-1',
    goal: 'Sum the lines',
    input: { lines: [1, 2] },
    kind: 'arithmetic',
    agentId: 'billing-bot',
  };

  it('rebuilds the task.accepted of a CloudEvent task from its row', () => {
    expect(acceptedFromStoredTask(stored)).toEqual({
      taskId: 'task-1',
      request: { source: 'urn:acme:billing', id: 'event-1' },
      goal: 'Sum the lines',
      input: { lines: [1, 2] },
      kind: 'arithmetic',
      agentId: 'billing-bot',
    });
  });

  it('leaves out an absent input and gives an HTTP task its key without the token scope', () => {
    const tokenId = '0b6f3c2e-8f43-4a55-9d3c-2f4a1d7e9b10';
    const accepted = acceptedFromStoredTask({
      ...stored,
      source: HTTP_TASK_SOURCE,
      externalId: `token:${tokenId}:key-7`,
      input: null,
    });
    expect(accepted).not.toHaveProperty('input');
    expect(accepted.request).toEqual({ idempotencyKey: 'key-7', tokenId });
  });
});
