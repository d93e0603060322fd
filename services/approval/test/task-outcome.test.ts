import { ErrorCodes, TaskOutcomeCloudEvent } from '@tandem/contracts';
import { describe, expect, it } from 'vitest';
import { trustSubject } from '../src/domain/request.js';
import { failureKind, outcomeMayChangeTrust, outcomeTrustChanges } from '../src/domain/task-outcome.js';

// What a task's outcome does to trust (domain/task-outcome.ts), without NATS or Postgres.

function outcome(status: 'completed' | 'failed', options: { agentId?: string | null; code?: string } = {}) {
  return TaskOutcomeCloudEvent.parse({
    specversion: '1.0',
    id: 'evt-1',
    source: '/tandem/executor',
    type: status === 'completed' ? 'tandem.task.completed' : 'tandem.task.failed',
    time: new Date(0).toISOString(),
    datacontenttype: 'application/json',
    subject: '00000000-0000-4000-8000-000000000001',
    data: {
      taskId: '00000000-0000-4000-8000-000000000001',
      request: { source: 'urn:test', id: 'r1' },
      status,
      agentId: options.agentId === undefined ? 'agent-1' : options.agentId,
      planVersion: 1,
      ...(status === 'completed'
        ? { result: { answer: 'done', steps: [] } }
        : {
            error: {
              code: options.code ?? 'STEP.FAILED',
              message: 'failed',
              retryable: false,
              stepId: 's1',
            },
          }),
    },
  }).data;
}

/** A request as stored: approved automatically with trust recorded (a verified agent). */
function request(key: string, overrides: Record<string, unknown> = {}) {
  return {
    key,
    request: {
      id: `req-${key}`,
      stepId: `step-${key}`,
      tool: 'write_file',
      mode: 'auto' as const,
      status: 'approved' as const,
      agentId: 'agent-1',
      actionClass: 'write_file',
      trustAtDecision: 0.6,
      ...overrides,
    },
  };
}

describe('failureKind', () => {
  it('counts a sandbox limit as a limit, any other step failure as a failure', () => {
    expect(failureKind(ErrorCodes.SANDBOX_TIMEOUT)).toBe('limit');
    expect(failureKind(ErrorCodes.SANDBOX_MEMORY_LIMIT)).toBe('limit');
    expect(failureKind('STEP.FAILED')).toBe('failure');
    expect(failureKind(ErrorCodes.TOOL_URL_REJECTED)).toBe('failure');
  });

  it('says nothing about the step when a human, a deadline, a cancel or a budget stopped it', () => {
    for (const code of [ErrorCodes.APPROVAL_EXPIRED, 'TASK.CANCELLED', 'BUDGET.EXCEEDED'])
      expect(failureKind(code)).toBeNull();
  });
});

describe('outcomeMayChangeTrust', () => {
  it('skips a completed task without an agent, never a failed one', () => {
    expect(outcomeMayChangeTrust(outcome('completed', { agentId: null }))).toBe(false);
    expect(outcomeMayChangeTrust(outcome('completed'))).toBe(true);
    expect(outcomeMayChangeTrust(outcome('failed', { agentId: null }))).toBe(true);
  });
});

describe('outcomeTrustChanges', () => {
  it('a completed task is a success for each approved or answered step of a verified agent, once per step', () => {
    const { changes, falseApprovals } = outcomeTrustChanges(outcome('completed'), [
      request('s1'),
      request('s2', { status: 'answered', mode: 'human' }),
      request('s3', { status: 'rejected' }),
      request('s4', { trustAtDecision: null }),
    ]);
    expect(changes).toEqual([
      {
        agentId: 'agent-1',
        actionClass: 'write_file',
        kind: 'success',
        sourceEvent: 'step:step-s1:finished',
        reason: 'step s1 (write_file) completed in a completed task',
      },
      expect.objectContaining({ kind: 'success', sourceEvent: 'step:step-s2:finished' }),
    ]);
    expect(falseApprovals).toEqual([]);
  });

  it('a failed task costs only its failing step; a limit weighs as a limit', () => {
    const failed = outcomeTrustChanges(outcome('failed', { code: ErrorCodes.SANDBOX_TIMEOUT }), [
      request('s1'),
      request('s2'),
    ]);
    expect(failed.changes).toEqual([
      expect.objectContaining({
        kind: 'limit',
        sourceEvent: 'step:step-s1:finished',
        reason: `step s1 (write_file) failed: ${ErrorCodes.SANDBOX_TIMEOUT}`,
      }),
    ]);
  });

  it('an auto-approved step failing for a safety reason is a false approval, trust counted or not', () => {
    const refused = outcomeTrustChanges(outcome('failed', { code: ErrorCodes.TOOL_PATH_REJECTED }), [
      request('s1', { trustAtDecision: null }),
    ]);
    expect(refused).toEqual({ changes: [], falseApprovals: [ErrorCodes.TOOL_PATH_REJECTED] });
    const byHuman = outcomeTrustChanges(outcome('failed', { code: ErrorCodes.TOOL_PATH_REJECTED }), [
      request('s1', { mode: 'human' }),
    ]);
    expect(byHuman.falseApprovals).toEqual([]);
    expect(byHuman.changes.map((change) => change.kind)).toEqual(['failure']);
  });

  it('an expiry changes no trust', () => {
    expect(
      outcomeTrustChanges(outcome('failed', { code: ErrorCodes.APPROVAL_EXPIRED }), [request('s1')]),
    ).toEqual({
      changes: [],
      falseApprovals: [],
    });
  });
});

describe('trustSubject', () => {
  it('is the agent and class of a request whose trust was used, else null', () => {
    expect(trustSubject({ agentId: 'a', actionClass: 'c', trustAtDecision: 0 })).toEqual({
      agentId: 'a',
      actionClass: 'c',
    });
    expect(trustSubject({ agentId: null, actionClass: 'c', trustAtDecision: 0 })).toBeNull();
    expect(trustSubject({ agentId: 'a', actionClass: null, trustAtDecision: 0 })).toBeNull();
    expect(trustSubject({ agentId: 'a', actionClass: 'c', trustAtDecision: null })).toBeNull();
  });
});
