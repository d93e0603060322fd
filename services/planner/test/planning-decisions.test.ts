import { ErrorCodes, TandemError } from '@tandem/contracts';
import { describe, expect, it } from 'vitest';
import {
  afterModelFailure,
  afterPlanning,
  afterReplanning,
  cancelledMeanwhile,
  deadlinePassed,
  planningStart,
  remainingBudgetUsd,
  replanningStart,
  type PlanningResult,
} from '../src/domain/planning-decisions.js';
import { step } from './helpers/steps.js';

describe('planningStart', () => {
  it('does nothing for a message an earlier delivery handled, whatever the task is', () => {
    expect(planningStart('t', { status: 'accepted', processed: true })).toEqual({ kind: 'duplicate' });
  });

  it('retries (TASK.NOT_FOUND, retryable) while the task is not stored', () => {
    const start = planningStart('t', null);
    expect(start.kind).toBe('missing');
    if (start.kind !== 'missing') return;
    expect(start.error).toBeInstanceOf(TandemError);
    expect(start.error).toMatchObject({ code: ErrorCodes.TASK_NOT_FOUND, retryable: true });
  });

  it.each(['planned', 'failed', 'cancelled'] as const)('plans nothing for a task already %s', (status) => {
    expect(planningStart('t', { status, processed: false })).toEqual({ kind: 'settled' });
  });

  it.each(['accepted', 'planning'] as const)('plans a task still %s, handing the task on', (status) => {
    const task = { status, processed: false, id: 't' };
    expect(planningStart('t', task)).toEqual({ kind: 'plan', task });
  });
});

describe('replanningStart', () => {
  const active = { status: 'active', version: 2 };

  it('retries while the task is not stored', () => {
    expect(replanningStart('t', null, active).kind).toBe('missing');
  });

  it('makes nothing for a cancelled task, a plan that is gone or one that is no longer active', () => {
    expect(replanningStart('t', { status: 'cancelled' }, active)).toEqual({ kind: 'settled' });
    expect(replanningStart('t', { status: 'planned' }, null)).toEqual({ kind: 'settled' });
    expect(replanningStart('t', { status: 'planned' }, { status: 'superseded', version: 2 })).toEqual({
      kind: 'settled',
    });
  });

  it('makes the version after the failed one', () => {
    const task = { status: 'planned' as const };
    expect(replanningStart('t', task, active)).toEqual({ kind: 'replan', task, version: 3 });
  });
});

describe('afterPlanning', () => {
  it('turns a retryable model failure into a retryable TandemError keeping its code and cause', () => {
    const cause = new Error('503');
    const effect = afterPlanning({
      kind: 'retry',
      error: { code: ErrorCodes.MODEL_SERVER_ERROR, message: 'down', retryable: true },
      cause,
    });
    expect(effect.kind).toBe('retry');
    if (effect.kind !== 'retry') return;
    expect(effect.error).toMatchObject({
      code: ErrorCodes.MODEL_SERVER_ERROR,
      message: 'down',
      retryable: true,
    });
    expect(effect.error.cause).toBe(cause);
  });

  it('stores nothing for a task cancelled while it was planned', () => {
    expect(afterPlanning({ kind: 'cancelled' })).toEqual({ kind: 'settle' });
  });

  it('stores a planned result with its figures', () => {
    const steps = [step('s1', 'respond', { answer: 'x' })];
    expect(afterPlanning({ kind: 'planned', steps, attempts: 2, invalidCalls: 1, models: ['m'] })).toEqual({
      kind: 'store',
      steps,
      attempts: 2,
      invalidCalls: 1,
      models: ['m'],
    });
  });

  it('fails for good with the last error, counting repairs from the attempts (never below 0)', () => {
    const failed: PlanningResult = {
      kind: 'failed',
      error: { code: ErrorCodes.PLAN_REJECTED, message: 'bad', retryable: true, stepId: 's2' },
      attempts: 3,
      models: [],
    };
    expect(afterPlanning(failed)).toEqual({
      kind: 'fail',
      error: { code: ErrorCodes.PLAN_REJECTED, message: 'bad', retryable: false, stepId: 's2' },
      repairs: 2,
    });
    expect(afterPlanning({ ...failed, attempts: 0 })).toMatchObject({ kind: 'fail', repairs: 0 });
  });
});

describe('afterReplanning', () => {
  const request = {
    failedStep: {
      key: 's2',
      tool: 'run_code',
      error: { code: 'SANDBOX.TIMEOUT', message: 'too slow', retryable: false },
    },
  };

  it('says which step failed the previous version when re-planning fails', () => {
    const effect = afterReplanning(
      {
        kind: 'failed',
        error: { code: ErrorCodes.PLAN_REJECTED, message: 'no plan', retryable: false },
        attempts: 1,
        models: [],
      },
      request,
    );
    expect(effect).toMatchObject({
      kind: 'fail',
      error: {
        code: ErrorCodes.PLAN_REJECTED,
        message: 're-planning after step s2 failed (SANDBOX.TIMEOUT) did not succeed: no plan',
        retryable: false,
      },
    });
  });

  it('leaves every other effect as a first plan has it', () => {
    expect(afterReplanning({ kind: 'cancelled' }, request)).toEqual({ kind: 'settle' });
  });
});

describe('the planning round', () => {
  it('fails with TASK.DEADLINE_EXCEEDED once the deadline is reached, not before', () => {
    const deadline = new Date('2026-12-07T10:00:00.000Z');
    expect(deadlinePassed(null, Date.now())).toBeNull();
    expect(deadlinePassed(deadline, deadline.getTime() - 1)).toBeNull();
    expect(deadlinePassed(deadline, deadline.getTime())).toEqual({
      code: ErrorCodes.TASK_DEADLINE_EXCEEDED,
      message: "the task's deadline 2026-12-07T10:00:00.000Z passed while it was being planned",
      retryable: false,
    });
  });

  it('retries a retryable model failure only while deliveries are left', () => {
    const error = new TandemError(ErrorCodes.MODEL_SERVER_ERROR, 'down', { retryable: true });
    expect(afterModelFailure(error, true)).toMatchObject({ kind: 'retry', cause: error });
    expect(afterModelFailure(error, false)).toEqual({
      kind: 'failed',
      error: { code: ErrorCodes.MODEL_SERVER_ERROR, message: 'down', retryable: false },
    });
    expect(afterModelFailure(new TandemError(ErrorCodes.MODEL_BAD_REQUEST, 'no'), true).kind).toBe('failed');
  });

  it('stops for a task cancelled or gone meanwhile', () => {
    expect(cancelledMeanwhile('cancelled')).toBe(true);
    expect(cancelledMeanwhile(null)).toBe(true);
    expect(cancelledMeanwhile('planning')).toBe(false);
  });

  it('checks a plan against what is left of the cost budget, never below 0', () => {
    expect(remainingBudgetUsd(undefined, 1)).toBeUndefined();
    expect(remainingBudgetUsd({ maxTokens: 100 }, 1)).toBeUndefined();
    expect(remainingBudgetUsd({ maxCostUsd: 1 }, 0.25)).toBe(0.75);
    expect(remainingBudgetUsd({ maxCostUsd: 1 }, 2)).toBe(0);
  });
});
