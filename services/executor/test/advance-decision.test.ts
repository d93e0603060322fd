import { ErrorCodes, TandemError, argumentsHash, type JsonValue } from '@tandem/contracts';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  decideAdvance,
  inlineFailure,
  inlinePass,
  resolvedArguments,
  taskResult,
  type AdvanceDecision,
} from '../src/domain/advance.js';
import type { StepState } from '../src/domain/progress.js';
import type { RunState } from '../src/domain/run-state.js';

// The executor's decision step, without NATS or Postgres: given a run state, what advanceTask does next.

const NOW = new Date('2026-12-07T12:00:00.000Z');
const settings = { now: NOW, maxReplans: 1 };

/** A step approved (and bound) for exactly its arguments, unless told otherwise. */
function step(index: number, tool: string, status: string, extra: Partial<StepState> = {}): StepState {
  const args: Record<string, JsonValue> = extra.arguments ?? { answer: `answer ${index + 1}` };
  return {
    stepId: `00000000-0000-4000-8000-${String(index + 1).padStart(12, '0')}`,
    key: `s${index + 1}`,
    index,
    tool,
    arguments: args,
    status,
    result: null,
    error: null,
    approval: status === 'waiting' ? null : { status: 'approved', argumentsHash: argumentsHash(args) },
    ...extra,
  };
}

function state(steps: StepState[], overrides: Partial<RunState> = {}): RunState {
  return {
    run: { status: 'running', planId: 'plan-1', replans: 0 },
    task: {
      id: 'task-1',
      goal: 'a goal',
      input: null,
      kind: 'general',
      agentId: null,
      source: 'urn:tandem:http',
      externalId: 'auto:task-1',
      deadline: null,
    },
    plan: { id: 'plan-1', version: 1, status: 'active' },
    steps,
    dependsOn: new Map(steps.map((s) => [s.key, []])),
    budget: undefined,
    preferences: undefined,
    ...overrides,
  };
}

function decide(run: RunState | null, overrides: Partial<typeof settings> = {}): AdvanceDecision {
  return decideAdvance(run, { ...settings, ...overrides });
}

describe('decideAdvance', () => {
  it('stops for a task without a run state, and for a run that is not running', () => {
    expect(decide(null)).toEqual({ kind: 'stop' });
    for (const status of ['replanning', 'completed', 'failed', 'cancelled']) {
      const run = state([step(0, 'respond', 'approved')]);
      expect(decide({ ...run, run: { ...run.run, status } })).toEqual({ kind: 'stop' });
    }
  });

  it('fails the task with TASK.DEADLINE_EXCEEDED once its deadline passed, before anything runs', () => {
    const run = state([step(0, 'respond', 'approved')]);
    const passed = { ...run, task: { ...run.task, deadline: new Date(NOW.getTime() - 1) } };
    expect(decide(passed)).toEqual({
      kind: 'fail_task',
      error: {
        code: ErrorCodes.TASK_DEADLINE_EXCEEDED,
        message: `the task's deadline ${new Date(NOW.getTime() - 1).toISOString()} passed`,
        retryable: false,
      },
    });
    const exactly = { ...run, task: { ...run.task, deadline: NOW } };
    expect(decide(exactly).kind).toBe('fail_task');
    const later = { ...run, task: { ...run.task, deadline: new Date(NOW.getTime() + 1) } };
    expect(decide(later).kind).toBe('run_inline');
  });

  it('fails an approved outbound step whose stored decision is for other arguments (APPROVAL.UNVERIFIED)', () => {
    const http = step(0, 'http_request', 'approved', {
      arguments: { method: 'GET', url: 'https://example.com/a' },
      approval: {
        status: 'approved',
        argumentsHash: argumentsHash({ method: 'GET', url: 'https://example.com/b' }),
      },
    });
    const decision = decide(state([http, step(1, 'respond', 'approved')]));
    expect(decision).toMatchObject({
      kind: 'fail_steps',
      failures: [
        {
          step: { key: 's1' },
          from: ['approved'],
          why: 'unbound',
          error: { code: ErrorCodes.APPROVAL_UNVERIFIED },
        },
      ],
    });
  });

  it('leaves the binding of inline steps to the inline pass', () => {
    const write = step(0, 'write_file', 'approved', {
      arguments: { path: 'a.txt', content: 'x' },
      approval: { status: 'approved', argumentsHash: 'not the hash' },
    });
    expect(decide(state([write]))).toEqual({ kind: 'run_inline' });
  });

  it('waits while the next step has no decision', () => {
    expect(decide(state([step(0, 'run_code', 'waiting'), step(1, 'respond', 'approved')]))).toEqual({
      kind: 'wait',
      reason: 'step s1 awaits approval',
    });
  });

  it('waits while a sandbox job is out', () => {
    expect(decide(state([step(0, 'run_code', 'running')]))).toEqual({
      kind: 'wait',
      reason: 'step s1 is running',
    });
  });

  it('completes a task whose steps all completed', () => {
    expect(decide(state([step(0, 'respond', 'completed')]))).toEqual({ kind: 'complete' });
  });

  it('fails the task for a rejected step, with the step named', () => {
    const rejected = step(0, 'http_request', 'rejected', {
      error: { code: ErrorCodes.APPROVAL_REJECTED, message: 'no', retryable: false },
    });
    expect(decide(state([rejected]))).toMatchObject({
      kind: 'fail_task',
      error: { code: ErrorCodes.APPROVAL_REJECTED, stepId: 's1', retryable: false },
    });
  });

  it('asks for a re-plan after a step failed for good while re-plans are left and a new plan can help', () => {
    const failed = step(0, 'run_code', 'failed', {
      error: { code: ErrorCodes.SANDBOX_ERROR, message: 'boom', retryable: false },
    });
    const decision = decide(state([failed, step(1, 'respond', 'approved')]));
    expect(decision).toMatchObject({
      kind: 'replan',
      failed: { key: 's1' },
      error: { code: ErrorCodes.SANDBOX_ERROR, stepId: 's1' },
    });
  });

  it('fails the task instead of re-planning when no re-plan is left', () => {
    const failed = step(0, 'run_code', 'failed', {
      error: { code: ErrorCodes.SANDBOX_ERROR, message: 'boom', retryable: false },
    });
    const run = state([failed]);
    expect(decide({ ...run, run: { ...run.run, replans: 1 } }).kind).toBe('fail_task');
    expect(decide(run, { maxReplans: 0 }).kind).toBe('fail_task');
  });

  it('fails the task instead of re-planning for an error a new plan cannot fix', () => {
    for (const code of [
      ErrorCodes.APPROVAL_UNVERIFIED,
      'BUDGET.EXCEEDED',
      ErrorCodes.TASK_STUCK,
      'MODEL.UNAVAILABLE',
    ]) {
      const failed = step(0, 'run_code', 'failed', { error: { code, message: 'x', retryable: false } });
      expect(decide(state([failed])), code).toMatchObject({ kind: 'fail_task', error: { code } });
    }
  });

  it('runs the inline steps in one pass when the next step is inline', () => {
    expect(decide(state([step(0, 'respond', 'approved')]))).toEqual({ kind: 'run_inline' });
    expect(decide(state([step(0, 'read_file', 'approved', { arguments: { path: 'a' } })]))).toEqual({
      kind: 'run_inline',
    });
  });

  it('starts an outbound step with its tool runner: approved, fixing, or a generating claim to take over', () => {
    const http = step(0, 'http_request', 'approved', {
      arguments: { method: 'GET', url: 'https://example.com/' },
    });
    expect(decide(state([http]))).toEqual({ kind: 'start', step: http, tool: 'http_request' });
    for (const status of ['approved', 'fixing', 'generating']) {
      const code = step(0, 'run_code', status, { arguments: { language: 'javascript', code: 'result = 1' } });
      expect(decide(state([code]))).toEqual({ kind: 'start', step: code, tool: 'run_code' });
    }
  });

  it('fails a step of a tool it has no runner for with TOOL.UNKNOWN_FUNCTION', () => {
    const unknown = step(0, 'launch_rocket', 'approved', { arguments: {} });
    expect(decide(state([unknown]))).toMatchObject({
      kind: 'fail_steps',
      failures: [
        {
          from: ['approved', 'running'],
          why: 'unknown_tool',
          error: { code: ErrorCodes.TOOL_UNKNOWN_FUNCTION },
        },
      ],
    });
  });
});

describe('inlinePass', () => {
  it('takes the approved inline steps in plan order up to the first step that is not one', () => {
    const steps = [
      step(0, 'respond', 'completed'),
      step(1, 'write_file', 'approved'),
      step(2, 'read_file', 'approved'),
      step(3, 'run_code', 'approved'),
      step(4, 'respond', 'approved'),
    ];
    expect(inlinePass(steps, new Map()).map((s) => s.key)).toEqual(['s2', 's3']);
  });

  it('goes past a question waiting for a human, but not for a step that depends on it', () => {
    const steps = [
      step(0, 'ask_human', 'waiting'),
      step(1, 'write_file', 'approved'),
      step(2, 'respond', 'approved'),
    ];
    expect(inlinePass(steps, new Map()).map((s) => s.key)).toEqual(['s2', 's3']);
    const dependsOn = new Map([['s3', ['s1']]]);
    expect(inlinePass(steps, dependsOn).map((s) => s.key)).toEqual(['s2']);
  });

  it('is empty when the first open step is not an approved inline step', () => {
    expect(inlinePass([step(0, 'write_file', 'waiting'), step(1, 'respond', 'approved')], new Map())).toEqual(
      [],
    );
    expect(inlinePass([step(0, 'respond', 'fixing')], new Map())).toEqual([]);
  });
});

describe('resolvedArguments and taskResult', () => {
  it('fills references from completed steps only', () => {
    const read = step(0, 'read_file', 'completed', {
      result: { value: { content: 'hello' }, stdout: 'printed' },
    });
    const respond = step(1, 'respond', 'approved', {
      arguments: { answer: 'said {{steps.s1.value.content}} / {{steps.s1.stdout}}' },
    });
    expect(resolvedArguments([read, respond], respond)).toEqual({ answer: 'said hello / printed' });
  });

  it('answers with the last respond step and lists every step value', () => {
    const steps = [
      step(0, 'respond', 'completed', { result: { value: 'first', stdout: '' } }),
      step(1, 'run_code', 'completed', { result: { value: { n: 42 }, stdout: '' } }),
      step(2, 'respond', 'completed', { result: { value: 'last', stdout: '' } }),
    ];
    expect(taskResult(steps)).toEqual({
      answer: 'last',
      steps: [
        { id: 's1', tool: 'respond', value: 'first' },
        { id: 's2', tool: 'run_code', value: { n: 42 } },
        { id: 's3', tool: 'respond', value: 'last' },
      ],
    });
  });

  it('answers with JSON when there is no respond step or its value is not text', () => {
    expect(
      taskResult([step(0, 'run_code', 'completed', { result: { value: { n: 1 }, stdout: '' } })]).answer,
    ).toBe('null');
    expect(
      taskResult([step(0, 'respond', 'completed', { result: { value: [1, 2], stdout: '' } })]).answer,
    ).toBe('[1,2]');
  });
});

describe('inlineFailure', () => {
  it('fails the step for malformed arguments and expected tool failures, and for nothing else', () => {
    const zod = z.object({ path: z.string() }).safeParse({});
    expect(zod.success).toBe(false);
    expect(inlineFailure(zod.error, { tool: 'read_file' })).toEqual({
      code: ErrorCodes.TOOL_INVALID_ARGUMENTS,
      message: 'stored arguments of read_file are malformed',
      retryable: false,
    });
    expect(
      inlineFailure(new TandemError(ErrorCodes.WORKSPACE_FILE_NOT_FOUND, 'none'), { tool: 'read_file' }),
    ).toMatchObject({ code: ErrorCodes.WORKSPACE_FILE_NOT_FOUND });
    expect(
      inlineFailure(new TandemError(ErrorCodes.DB_CONNECTION_LOST, 'gone', { retryable: true }), {
        tool: 'read_file',
      }),
    ).toBeNull();
    expect(inlineFailure(new Error('a bug'), { tool: 'read_file' })).toBeNull();
  });
});
