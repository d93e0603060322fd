import { describe, expect, it } from 'vitest';
import {
  TASK_CANCELLED_ACTION,
  cancelTargetOf,
  cancelTask,
  cloudEventMessageId,
} from '../src/domain/cancel.js';

// What a cancel request does to a task's approvals (domain/cancel.ts), without NATS or Postgres.

const EVENT = {
  id: 'evt-1',
  source: 'urn:test:canceller',
  data: { taskId: 'task-1', reason: 'not needed', requestedBy: 'token:ops' },
};

describe('cloudEventMessageId and cancelTargetOf', () => {
  it('keys a CloudEvent by source and id, unambiguously', () => {
    expect(cloudEventMessageId({ source: 'a', id: 'b' })).toBe('ce:["a","b"]');
    expect(cloudEventMessageId({ source: 'a:b', id: 'c' })).not.toBe(
      cloudEventMessageId({ source: 'a', id: 'b:c' }),
    );
  });

  it('names the task by id, or by the CloudEvent that requested it', () => {
    expect(cancelTargetOf({ taskId: 't' })).toEqual({ taskId: 't' });
    expect(cancelTargetOf({ request: { source: 's', id: 'e' } })).toEqual({ source: 's', externalId: 'e' });
    expect(cancelTargetOf({})).toBeNull();
  });
});

describe('cancelTask', () => {
  const open = [
    { id: 'r1', status: 'pending' as const, stepId: 's1', planId: 'p1' },
    { id: 'r2', status: 'awaiting-values' as const, stepId: null, planId: 'p1' },
    { id: 'r3', status: 'approved' as const, stepId: 's3', planId: 'p1' },
  ];

  it('cancels each open request from the state it is in, with an audit row by the requester', () => {
    const decided = cancelTask(EVENT, 'task-1', open);
    expect(decided).toMatchObject({ actor: 'token:ops', reason: 'task cancelled: not needed' });
    expect(decided.requests.map((request) => [request.id, request.from])).toEqual([
      ['r1', 'pending'],
      ['r2', 'awaiting-values'],
    ]);
    expect(decided.requests[1]?.audit).toEqual({
      action: 'approval.cancelled',
      subject: { type: 'step', id: 'r2' },
      actor: 'token:ops',
      reason: 'task cancelled: not needed',
      data: { approvalId: 'r2', taskId: 'task-1', planId: 'p1' },
    });
  });

  it('records the task-level row with the requests actually cancelled and the event', () => {
    const decided = cancelTask({ ...EVENT, data: { taskId: 'task-1' } }, 'task-1', []);
    expect(decided).toMatchObject({ actor: null, reason: 'task cancelled', requests: [] });
    expect(decided.taskAudit(['r1'])).toEqual({
      action: TASK_CANCELLED_ACTION,
      subject: { type: 'task', id: 'task-1' },
      actor: null,
      reason: 'task cancelled',
      data: { cancelled: ['r1'], event: { source: 'urn:test:canceller', id: 'evt-1' } },
    });
  });
});
