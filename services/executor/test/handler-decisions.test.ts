import { ErrorCodes, type ErrorShape } from '@tandem/contracts';
import { describe, expect, it } from 'vitest';
import { stepRunFromDecision, stepRunFromPolicy } from '../src/domain/decision.js';
import { finalOutcome, storedEnd } from '../src/domain/outcome.js';
import { advancesAfterPlan, planArrival, planStart } from '../src/domain/plan-version.js';
import { attemptOfKey, decideSandboxResult } from '../src/domain/sandbox-result.js';
import { unrunOutcome } from '../src/domain/stale-work.js';

// The decisions of the executor's consumers and sweeps, without NATS or Postgres.

describe('planArrival (plan.proposed)', () => {
  const plan = { planId: 'p2', version: 2 };

  it('starts a run for a task that has none', () => {
    expect(planArrival(null, plan)).toEqual({ kind: 'start' });
  });

  it('creates only missing rows for the plan the run already runs', () => {
    expect(planArrival({ status: 'running', planId: 'p2', planVersion: 2 }, plan)).toEqual({ kind: 'same' });
    expect(planArrival({ status: 'completed', planId: 'p2', planVersion: 2 }, plan)).toEqual({
      kind: 'same',
    });
  });

  it('switches a running or re-planning run to a newer version and supersedes the old one', () => {
    expect(planArrival({ status: 'running', planId: 'p1', planVersion: 1 }, plan)).toEqual({
      kind: 'switch',
      supersede: 'p1',
    });
    expect(planArrival({ status: 'replanning', planId: 'p1', planVersion: 1 }, plan)).toEqual({
      kind: 'switch',
      supersede: 'p1',
    });
    expect(planArrival({ status: 'running', planId: null, planVersion: null }, plan)).toEqual({
      kind: 'switch',
      supersede: null,
    });
  });

  it('changes nothing for an ended task or a version that is not newer', () => {
    for (const status of ['completed', 'failed', 'cancelled'])
      expect(planArrival({ status, planId: 'p1', planVersion: 1 }, plan)).toEqual({ kind: 'ended' });
    expect(planArrival({ status: 'running', planId: 'p3', planVersion: 3 }, plan)).toEqual({ kind: 'older' });
    expect(planArrival({ status: 'running', planId: 'p9', planVersion: 2 }, plan)).toEqual({ kind: 'older' });
  });

  it('advances after the plan unless every step waits for its decision or the plan was older', () => {
    expect(planStart({ kind: 'start' }, 3, 3)).toBe('waiting');
    expect(planStart({ kind: 'start' }, 2, 3)).toBe('decided');
    expect(planStart({ kind: 'same' }, 0, 3)).toBe('decided');
    expect(planStart({ kind: 'switch', supersede: 'p1' }, 3, 3)).toBe('switched');
    expect(planStart({ kind: 'ended' }, 0, 0)).toBe('ended');
    expect(planStart({ kind: 'older' }, 0, 0)).toBe('older');
    expect(advancesAfterPlan('waiting')).toBe(false);
    expect(advancesAfterPlan('older')).toBe(false);
    for (const start of ['decided', 'switched', 'ended', 'duplicate'] as const)
      expect(advancesAfterPlan(start), start).toBe(true);
  });
});

describe('decideSandboxResult (sandbox.run-completed)', () => {
  const run = { outcome: 'ok', stderr: '', errorMessage: null, exitCode: 0 };

  it('reads the attempt from the job key, and none from a key without one', () => {
    expect(attemptOfKey('00000000-0000-4000-8000-000000000001:3')).toBe(3);
    expect(attemptOfKey('00000000-0000-4000-8000-000000000001:x')).toBeNull();
    expect(attemptOfKey('1.5')).toBeNull();
  });

  it('completes the step for a program that succeeded', () => {
    expect(decideSandboxResult(run, 1, 2)).toEqual({ kind: 'complete' });
  });

  it('asks for a fix for a fixable failure while fixes are left, then fails the step', () => {
    const failed = { ...run, outcome: 'error', stderr: 'TypeError: x\n', exitCode: 1 };
    expect(decideSandboxResult(failed, 1, 2)).toMatchObject({
      kind: 'fix',
      error: { code: ErrorCodes.STEP_FAILED },
    });
    expect(decideSandboxResult(failed, 2, 2).kind).toBe('fix');
    expect(decideSandboxResult(failed, 3, 2)).toMatchObject({
      kind: 'fail',
      error: { code: ErrorCodes.STEP_FAILED },
    });
    expect(decideSandboxResult(failed, null, 2).kind).toBe('fail');
    expect(decideSandboxResult({ ...run, outcome: 'timeout' }, 1, 2)).toMatchObject({
      kind: 'fix',
      error: { code: ErrorCodes.SANDBOX_TIMEOUT },
    });
  });

  it('fails the step at once for an outcome no fix can help (a kill, a sandbox fault)', () => {
    expect(decideSandboxResult({ ...run, outcome: 'killed' }, 1, 2)).toMatchObject({
      kind: 'fail',
      error: { code: ErrorCodes.SANDBOX_KILLED },
    });
    expect(
      decideSandboxResult({ ...run, outcome: 'sandbox_error', errorMessage: 'no runtime' }, 1, 2),
    ).toMatchObject({
      kind: 'fail',
      error: { code: ErrorCodes.SANDBOX_ERROR, message: 'no runtime' },
    });
  });

  it("takes the runner's typed reason as the step's error code", () => {
    expect(
      decideSandboxResult(
        {
          ...run,
          outcome: 'sandbox_error',
          errorCode: 'SANDBOX.INTERRUPTED',
          errorMessage: 'cut off 3 times',
        },
        1,
        2,
      ),
    ).toEqual({
      kind: 'fail',
      error: { code: 'SANDBOX.INTERRUPTED', message: 'cut off 3 times', retryable: false },
    });
  });
});

describe('stepRunFromPolicy and stepRunFromDecision (approval consumers)', () => {
  it('records a policy approval without an error and a rejection with APPROVAL.REJECTED and its reason', () => {
    expect(stepRunFromPolicy({ stepId: 'a', status: 'approved', reason: 'fine' })).toEqual({
      stepId: 'a',
      status: 'approved',
      approval: 'auto',
      error: null,
    });
    expect(stepRunFromPolicy({ stepId: 'b', status: 'rejected', reason: null })).toEqual({
      stepId: 'b',
      status: 'rejected',
      approval: 'auto',
      error: { code: ErrorCodes.APPROVAL_REJECTED, message: 'rejected by policy', retryable: false },
    });
  });

  it('refuses an approval whose stored edit is not an arguments record, instead of running the planned ones', () => {
    const stored = { status: 'approved', mode: 'human', reason: null, answer: null };
    expect(() => stepRunFromDecision({ ...stored, editedArguments: ['not', 'a', 'record'] })).toThrow(
      expect.objectContaining({ code: ErrorCodes.DB_ROW_INVALID }),
    );
    expect(stepRunFromDecision({ ...stored, editedArguments: null })).toMatchObject({ arguments: null });
  });
});

describe('storedEnd and finalOutcome (ending a task)', () => {
  const error: ErrorShape & { stepId?: string } = {
    code: ErrorCodes.STEP_FAILED,
    message: 'x',
    retryable: true,
    stepId: 's1',
  };

  it('stores a failure as never retryable, and a cancel as TASK.CANCELLED with its reason', () => {
    expect(storedEnd({ status: 'failed', error })).toEqual({
      status: 'failed',
      error: { ...error, retryable: false },
    });
    expect(storedEnd({ status: 'cancelled', reason: 'changed my mind', requestedBy: 'me' })).toEqual({
      status: 'cancelled',
      error: { code: ErrorCodes.TASK_CANCELLED, message: 'changed my mind', retryable: false },
    });
    expect(storedEnd({ status: 'cancelled', reason: null, requestedBy: null }).error.message).toBe(
      'cancelled',
    );
  });

  it('publishes a failure as never retryable and a cancel as it is', () => {
    expect(finalOutcome({ status: 'failed', error })).toEqual({
      status: 'failed',
      error: { ...error, retryable: false },
    });
    const cancel = { status: 'cancelled' as const, reason: null, requestedBy: null };
    expect(finalOutcome(cancel)).toBe(cancel);
  });
});

describe('unrunOutcome (a planning outcome that never reached the executor)', () => {
  it("ends as the planner did: cancelled, failed with the planner's error, else TASK.STUCK", () => {
    expect(unrunOutcome('cancelled', null)).toMatchObject({ status: 'cancelled' });
    expect(
      unrunOutcome('failed', { code: 'PLAN.INVALID', message: 'no valid plan', retryable: true }),
    ).toEqual({
      status: 'failed',
      error: { code: 'PLAN.INVALID', message: 'no valid plan', retryable: false },
    });
    expect(unrunOutcome('failed', null)).toMatchObject({
      status: 'failed',
      error: {
        code: ErrorCodes.TASK_STUCK,
        message: 'planning ended but its outcome never reached the executor',
      },
    });
    expect(unrunOutcome('planned', null)).toMatchObject({
      status: 'failed',
      error: {
        code: ErrorCodes.TASK_STUCK,
        message: 'the task was planned but its plan never reached the executor',
      },
    });
  });
});
