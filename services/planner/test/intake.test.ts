import { ErrorCodes, TandemError } from '@tandem/contracts';
import { describe, expect, it } from 'vitest';
import { cloudEventMessageId, existingTask, taskToStore, type TaskSubmission } from '../src/domain/intake.js';

const submission: TaskSubmission = {
  source: 'urn:acme:billing',
  externalId: 'event-1',
  request: { source: 'urn:acme:billing', id: 'event-1' },
  data: { goal: 'Sum the lines' },
};

describe('taskToStore', () => {
  it('stores a bare submission as kind general with no agent, input, budget, models or deadline', () => {
    const { row, accepted } = taskToStore(submission, 'task-1', 'hash-1');
    expect(row).toEqual({
      id: 'task-1',
      source: 'urn:acme:billing',
      externalId: 'event-1',
      requestHash: 'hash-1',
      agentId: null,
      kind: 'general',
      goal: 'Sum the lines',
      input: null,
      budget: null,
      preferences: null,
      deadline: null,
      submittedBy: null,
    });
    expect(accepted).toEqual({
      taskId: 'task-1',
      request: submission.request,
      goal: 'Sum the lines',
      input: undefined,
      kind: 'general',
      agentId: null,
    });
  });

  it('keeps what the submission gives: kind, agent, input, budget, models (as preferences), deadline, submitter', () => {
    const { row, accepted } = taskToStore(
      {
        ...submission,
        submittedBy: 'source:urn:acme:billing',
        data: {
          goal: 'Sum',
          kind: 'arithmetic',
          agentId: 'billing-bot',
          input: { lines: [1, 2] },
          budget: { maxCostUsd: 0.5 },
          models: { tier: 'fast' },
          deadline: '2026-12-07T10:00:00+01:00',
        },
      },
      'task-2',
      'hash-2',
    );
    expect(row).toMatchObject({
      kind: 'arithmetic',
      agentId: 'billing-bot',
      input: { lines: [1, 2] },
      budget: { maxCostUsd: 0.5 },
      preferences: { tier: 'fast' },
      submittedBy: 'source:urn:acme:billing',
    });
    expect(row.deadline?.toISOString()).toBe('2026-12-07T09:00:00.000Z');
    expect(accepted).toMatchObject({ kind: 'arithmetic', agentId: 'billing-bot', input: { lines: [1, 2] } });
  });
});

describe('existingTask', () => {
  it('is the same task, not created, for the same data under the key', () => {
    expect(existingTask(submission, { id: 'task-1', requestHash: 'h' }, 'h')).toEqual({
      taskId: 'task-1',
      created: false,
    });
  });

  it('is a permanent TASK.IDEMPOTENCY_CONFLICT naming the stored task for other data under the key', () => {
    let thrown: unknown;
    try {
      existingTask(submission, { id: 'task-1', requestHash: 'h' }, 'other');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(TandemError);
    expect(thrown).toMatchObject({
      code: ErrorCodes.TASK_CONFLICT,
      retryable: false,
      details: { taskId: 'task-1' },
    });
  });

  it('is a retryable conflict when the key is taken but its task cannot be read', () => {
    expect(() => existingTask(submission, null, 'h')).toThrow(
      expect.objectContaining({ code: ErrorCodes.TASK_CONFLICT, retryable: true }),
    );
  });
});

describe('cloudEventMessageId', () => {
  it('cannot be confused between sources and ids that contain the separator', () => {
    expect(cloudEventMessageId({ source: 'a:b', id: 'c' })).not.toBe(
      cloudEventMessageId({ source: 'a', id: 'b:c' }),
    );
    expect(cloudEventMessageId({ source: 'urn:x', id: '1' })).toBe('ce:["urn:x","1"]');
  });
});
