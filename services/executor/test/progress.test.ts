import { describe, expect, it } from 'vitest';
import { ErrorCodes, SandboxOutcome, type ErrorShape } from '@tandem/contracts';
import {
  codePrompt,
  extractCode,
  fixPrompt,
  isFixable,
  nextAction,
  replanCanHelp,
  sandboxError,
  type StepState,
} from '../src/domain/progress.js';

let counter = 0;

function step(index: number, status: string, extra: Partial<StepState> = {}): StepState {
  counter += 1;
  return {
    stepId: `00000000-0000-4000-8000-${String(counter).padStart(12, '0')}`,
    key: `s${index + 1}`,
    index,
    tool: index === 0 ? 'run_code' : 'respond',
    arguments: {},
    status,
    approval: null,
    result: null,
    error: null,
    ...extra,
  };
}

describe('nextAction', () => {
  it('completes a task whose steps all completed', () => {
    expect(nextAction([step(0, 'completed'), step(1, 'completed')])).toEqual({ kind: 'complete' });
  });

  it('completes a task with no steps', () => {
    expect(nextAction([])).toEqual({ kind: 'complete' });
  });

  it('starts the first approved step after the completed ones', () => {
    const second = step(1, 'approved');
    expect(nextAction([step(0, 'completed'), second, step(2, 'approved')])).toEqual({
      kind: 'start',
      step: second,
    });
  });

  it('orders steps by index, not by array position', () => {
    const first = step(0, 'approved');
    const action = nextAction([step(2, 'approved'), step(1, 'approved'), first]);
    expect(action).toEqual({ kind: 'start', step: first });
  });

  it('does not start a later approved step while an earlier one is pending', () => {
    const action = nextAction([step(1, 'approved'), step(0, 'waiting')]);
    expect(action).toEqual({ kind: 'wait', reason: 'step s1 awaits approval' });
  });

  it('runs an independent later step while a question or HTTP call waits for a human', () => {
    const question = step(0, 'waiting', { tool: 'ask_human' });
    const compute = step(1, 'approved', { tool: 'run_code' });
    const answer = step(2, 'approved', { tool: 'respond' });
    const dependsOn = new Map([['s3', ['s1', 's2']]]);
    expect(nextAction([question, compute, answer], dependsOn)).toEqual({ kind: 'start', step: compute });
    // Once the independent step completed, the dependent one is held behind the question.
    compute.status = 'completed';
    expect(nextAction([question, compute, answer], dependsOn)).toEqual({
      kind: 'wait',
      reason: 'steps s1, s3 await a decision',
    });
  });

  it('keeps steps with workspace effects waited for, and external calls in order', () => {
    const write = step(0, 'waiting', { tool: 'write_file' });
    expect(nextAction([write, step(1, 'approved', { tool: 'run_code' })])).toMatchObject({ kind: 'wait' });
    const post = step(0, 'waiting', { tool: 'http_request' });
    const secondPost = step(1, 'approved', { tool: 'http_request' });
    expect(nextAction([post, secondPost])).toMatchObject({ kind: 'wait' });
  });

  it('fails at once on a rejected step even while another step waits', () => {
    const action = nextAction([
      step(0, 'waiting', { tool: 'ask_human' }),
      step(1, 'rejected', { tool: 'run_code' }),
    ]);
    expect(action).toMatchObject({ kind: 'fail', error: { code: ErrorCodes.APPROVAL_REJECTED } });
  });

  it('waits while the current step is running', () => {
    const action = nextAction([step(0, 'completed'), step(1, 'running'), step(2, 'approved')]);
    expect(action).toEqual({ kind: 'wait', reason: 'step s2 is running' });
  });

  it('starts a generating step again, so a stale claim of a crashed replica can be taken over', () => {
    const generating = step(1, 'generating');
    const action = nextAction([step(0, 'completed'), generating, step(2, 'approved')]);
    expect(action).toEqual({ kind: 'start', step: generating });
  });

  it('does not mutate the steps it is given', () => {
    const steps = [step(1, 'approved'), step(0, 'completed')];
    const before = steps.map((entry) => entry.index);
    nextAction(steps);
    expect(steps.map((entry) => entry.index)).toEqual(before);
  });

  it('fails the task with APPROVAL.REJECTED and the step id when a step was rejected', () => {
    const action = nextAction([
      step(0, 'completed'),
      step(1, 'rejected', { tool: 'run_code' }),
      step(2, 'approved'),
    ]);
    expect(action).toEqual({
      kind: 'fail',
      error: {
        code: ErrorCodes.APPROVAL_REJECTED,
        message: 'step s2 (run_code) was rejected',
        retryable: false,
        stepId: 's2',
      },
    });
  });

  it('includes the rejection reason when the rejected step carries one', () => {
    const reason: ErrorShape = { code: ErrorCodes.APPROVAL_REJECTED, message: 'too risky', retryable: false };
    const action = nextAction([step(0, 'rejected', { error: reason })]);
    expect(action.kind === 'fail' && action.error.message).toBe('step s1 (run_code) was rejected: too risky');
  });

  it("fails the task with a failed step's own error, never retryable", () => {
    const error: ErrorShape = {
      code: ErrorCodes.SANDBOX_TIMEOUT,
      message: 'the program ran past its time limit',
      retryable: true,
      details: { ms: 5 },
    };
    const action = nextAction([step(0, 'failed', { error }), step(1, 'approved')]);
    expect(action).toEqual({ kind: 'fail', error: { ...error, retryable: false, stepId: 's1' } });
  });

  it('fails with STEP.FAILED when a failed step has no error recorded', () => {
    const action = nextAction([step(0, 'completed'), step(1, 'failed')]);
    expect(action).toEqual({
      kind: 'fail',
      error: { code: ErrorCodes.STEP_FAILED, message: 'step s2 failed', retryable: false, stepId: 's2' },
    });
  });
});

describe('sandboxError', () => {
  const quiet = { stderr: '', exitCode: null };

  it.each([
    ['timeout', ErrorCodes.SANDBOX_TIMEOUT],
    ['memory_limit', ErrorCodes.SANDBOX_MEMORY_LIMIT],
    ['output_limit', ErrorCodes.SANDBOX_OUTPUT_LIMIT],
    ['killed', ErrorCodes.SANDBOX_KILLED],
    ['sandbox_error', ErrorCodes.SANDBOX_ERROR],
    ['error', ErrorCodes.STEP_FAILED],
  ])('maps %s to %s, not retryable', (outcome, code) => {
    const error = sandboxError(outcome, quiet);
    expect(error.code).toBe(code);
    expect(error.retryable).toBe(false);
    expect(error.message.length).toBeGreaterThan(0);
  });

  it('maps every failing sandbox outcome to a distinct code', () => {
    const failing = SandboxOutcome.options.filter((outcome) => outcome !== 'ok');
    const codes = failing.map((outcome) => sandboxError(outcome, quiet).code);
    expect(new Set(codes).size).toBe(failing.length);
  });

  it("uses the sandbox's error message for sandbox_error, with a default", () => {
    expect(sandboxError('sandbox_error', { ...quiet, errorMessage: 'python3 not found' }).message).toBe(
      'python3 not found',
    );
    expect(sandboxError('sandbox_error', { ...quiet, errorMessage: null }).message).toBe(
      'the sandbox failed to run the program',
    );
  });

  it('describes a program error with exit code, message and the last 5 lines of stderr', () => {
    const stderr = [
      'line 1',
      'line 2',
      'line 3',
      'line 4',
      'line 5',
      'line 6',
      'ZeroDivisionError: division by zero',
      '',
    ].join('\n');
    const error = sandboxError('error', { stderr, exitCode: 1, errorMessage: 'Traceback' });
    expect(error.message).toBe(
      'the program failed (exit 1): Traceback\nline 3\nline 4\nline 5\nline 6\nZeroDivisionError: division by zero',
    );
  });

  it('keeps at most 1000 characters of stderr', () => {
    const error = sandboxError('error', { stderr: 'x'.repeat(5000), exitCode: 2 });
    expect(error.message).toBe(`the program failed (exit 2)\n${'x'.repeat(1000)}`);
  });

  it('says only that the program failed when there is nothing more to say', () => {
    expect(sandboxError('error', quiet).message).toBe('the program failed');
    expect(sandboxError('error', { stderr: '  \n ', exitCode: 0 }).message).toBe(
      'the program failed (exit 0)',
    );
  });
});

describe('extractCode', () => {
  it('takes the body of a fenced block with a language tag', () => {
    expect(extractCode('Here you go:\n```python\nresult = 1 + 1\n```\nEnjoy.')).toBe('result = 1 + 1');
  });

  it('takes the body of a fenced block without a language tag', () => {
    expect(extractCode('```\nconst x = 2;\nresult = x;\n```')).toBe('const x = 2;\nresult = x;');
  });

  it.each(['javascript', 'js', 'c++', 'objective-c', 'python3'])('accepts the language tag %s', (tag) => {
    expect(extractCode(`\`\`\`${tag}\nresult = 3\n\`\`\``)).toBe('result = 3');
  });

  it('tolerates spaces after the language tag', () => {
    expect(extractCode('```python  \nresult = 4\n```')).toBe('result = 4');
  });

  it('takes only the first of several fenced blocks', () => {
    expect(extractCode('```python\nresult = "first"\n```\nor\n```python\nresult = "second"\n```')).toBe(
      'result = "first"',
    );
  });

  it('takes the whole text, trimmed, when there is no fence', () => {
    expect(extractCode('\n  result = [1, 2, 3]\n\n')).toBe('result = [1, 2, 3]');
  });

  it('returns null for an empty answer or an empty block', () => {
    expect(extractCode('')).toBeNull();
    expect(extractCode('   \n\t')).toBeNull();
    expect(extractCode('```python\n\n```')).toBeNull();
  });
});

describe('codePrompt', () => {
  it('asks for python that assigns `result` and names the language', () => {
    const [system, user] = codePrompt({
      language: 'python',
      spec: 'Sum the first 10 squares.',
      goal: 'Squares',
      hasInput: true,
      dependencies: {},
      files: [],
      patterns: [],
    });
    expect(system?.role).toBe('system');
    expect(system?.content).toContain('python');
    expect(system?.content).toContain('`result`');
    expect(system?.content).toContain('`input`');
    expect(system?.content).not.toContain('it is null for this task');
    expect(user?.role).toBe('user');
    expect(user?.content).toContain('Sum the first 10 squares.');
    expect(user?.content).toContain('Squares');
  });

  it('lets javascript return the result and says when input is null', () => {
    const [system] = codePrompt({
      language: 'javascript',
      spec: 'x',
      goal: 'y',
      hasInput: false,
      dependencies: {},
      files: [],
      patterns: [],
    });
    expect(system?.content).toContain('You write javascript programs');
    expect(system?.content).toContain('`result`');
    expect(system?.content).toContain('`return`');
    expect(system?.content).toContain('it is null for this task');
  });
});

describe('code generation context and fixes', () => {
  const request = {
    language: 'python',
    spec: 'Average the numbers in data/in.json.',
    goal: 'Averages',
    hasInput: false,
    dependencies: { s1: { total: 3 } },
    files: ['data/in.json'],
    patterns: [{ type: 'error_recovery', content: 'json.load needs a file object', confidence: 0.9 }],
  };

  it('gives the code model the results of the steps it depends on, the workspace files and learned patterns', () => {
    const [system, user] = codePrompt(request);
    expect(user?.content).toContain('{"s1":{"total":3}}');
    expect(user?.content).toContain('data/in.json');
    expect(system?.content).toContain('json.load needs a file object');
    expect(system?.content).toContain('error_recovery');
  });

  it('asks for a fix with the failing program, its error and the end of stderr', () => {
    const [, user] = fixPrompt(request, {
      code: 'print(1/0)',
      error: { code: ErrorCodes.STEP_FAILED, message: 'the program failed (exit 1)', retryable: false },
      stderr: 'Traceback...\nZeroDivisionError: division by zero',
    });
    expect(user?.content).toContain('print(1/0)');
    expect(user?.content).toContain('STEP.FAILED');
    expect(user?.content).toContain('ZeroDivisionError');
    expect(user?.content).toContain('Average the numbers');
  });

  it('fixes program failures but not sandbox faults or kills', () => {
    expect(['error', 'timeout', 'memory_limit', 'output_limit'].every(isFixable)).toBe(true);
    expect(isFixable('sandbox_error')).toBe(false);
    expect(isFixable('killed')).toBe(false);
    expect(isFixable('ok')).toBe(false);
  });

  it('re-plans after tool failures but not after rejections, budgets or deadlines', () => {
    const error = (code: string): ErrorShape => ({ code, message: code, retryable: false });
    expect(replanCanHelp(error(ErrorCodes.STEP_FAILED))).toBe(true);
    expect(replanCanHelp(error(ErrorCodes.SANDBOX_TIMEOUT))).toBe(true);
    expect(replanCanHelp(error(ErrorCodes.APPROVAL_REJECTED))).toBe(false);
    expect(replanCanHelp(error('BUDGET.EXCEEDED'))).toBe(false);
    expect(replanCanHelp(error('TASK.DEADLINE_EXCEEDED'))).toBe(false);
  });

  it('starts a step that is waiting for a fix', () => {
    const fixing = step(0, 'fixing');
    expect(nextAction([fixing, step(1, 'waiting')])).toEqual({ kind: 'start', step: fixing });
  });
});
