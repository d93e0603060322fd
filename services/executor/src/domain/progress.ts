import { ErrorCodes, type ErrorShape, type JsonValue } from '@tandem/contracts';

/** A planned step joined with its execution state. */
export interface StepState {
  stepId: string;
  key: string;
  index: number;
  tool: string;
  arguments: Record<string, JsonValue>;
  /** waiting | approved | rejected | generating | running | completed | failed */
  status: string;
  result: { value: JsonValue; stdout: string } | null;
  error: ErrorShape | null;
}

/** What the executor should do next for a task. */
export type NextAction =
  | { kind: 'wait'; reason: string }
  | { kind: 'start'; step: StepState }
  | { kind: 'complete' }
  | { kind: 'fail'; error: ErrorShape & { stepId?: string } };

/**
 * Steps run one at a time in plan order: the first step that is not completed decides. A step waits for
 * its approval; a rejected or failed step fails the task.
 */
export function nextAction(steps: readonly StepState[]): NextAction {
  const ordered = [...steps].sort((a, b) => a.index - b.index);
  for (const step of ordered) {
    switch (step.status) {
      case 'completed':
        continue;
      case 'approved':
        return { kind: 'start', step };
      case 'rejected':
        return {
          kind: 'fail',
          error: {
            code: ErrorCodes.APPROVAL_REJECTED,
            message: `step ${step.key} (${step.tool}) was rejected${step.error ? `: ${step.error.message}` : ''}`,
            retryable: false,
            stepId: step.key,
          },
        };
      case 'failed':
        return {
          kind: 'fail',
          error: {
            ...(step.error ?? {
              code: ErrorCodes.STEP_FAILED,
              message: `step ${step.key} failed`,
              retryable: false,
            }),
            retryable: false,
            stepId: step.key,
          },
        };
      case 'waiting':
        return { kind: 'wait', reason: `step ${step.key} awaits approval` };
      default:
        return { kind: 'wait', reason: `step ${step.key} is ${step.status}` };
    }
  }
  return { kind: 'complete' };
}

/** Maps a sandbox outcome to the error of a failed step. */
export function sandboxError(
  outcome: string,
  details: { stderr: string; errorMessage?: string | null; exitCode: number | null },
): ErrorShape {
  const tail = details.stderr.trim().split('\n').slice(-5).join('\n').slice(-1000);
  switch (outcome) {
    case 'timeout':
      return {
        code: ErrorCodes.SANDBOX_TIMEOUT,
        message: 'the program ran past its time limit',
        retryable: false,
      };
    case 'memory_limit':
      return {
        code: ErrorCodes.SANDBOX_MEMORY_LIMIT,
        message: 'the program ran out of memory',
        retryable: false,
      };
    case 'output_limit':
      return {
        code: ErrorCodes.SANDBOX_OUTPUT_LIMIT,
        message: 'the program printed more than its output limit',
        retryable: false,
      };
    case 'killed':
      return { code: ErrorCodes.SANDBOX_KILLED, message: 'the program was killed', retryable: false };
    case 'sandbox_error':
      return {
        code: ErrorCodes.SANDBOX_ERROR,
        message: details.errorMessage ?? 'the sandbox failed to run the program',
        retryable: false,
      };
    default:
      return {
        code: ErrorCodes.STEP_FAILED,
        message: `the program failed${details.exitCode === null ? '' : ` (exit ${details.exitCode})`}${details.errorMessage ? `: ${details.errorMessage}` : ''}${tail ? `\n${tail}` : ''}`,
        retryable: false,
      };
  }
}

/** Takes the program out of a code model's answer: the first fenced block, else the whole text. */
export function extractCode(content: string): string | null {
  const fenced = /```[A-Za-z0-9_+-]*[^\S\n]*\n([\s\S]*?)```/.exec(content);
  const code = (fenced?.[1] ?? content).trim();
  return code.length > 0 ? code : null;
}

/** The prompt for the code model. */
export function codePrompt(input: {
  language: string;
  spec: string;
  goal: string;
  hasInput: boolean;
}): Array<{ role: 'system' | 'user'; content: string }> {
  const returnRule =
    input.language === 'python'
      ? 'Assign the answer (a JSON-serialisable value) to a global variable named `result`.'
      : 'Assign the answer (a JSON-serialisable value) to the pre-declared variable `result`, or `return` it (the code runs as the body of an async function).';
  return [
    {
      role: 'system',
      content: [
        `You write ${input.language} programs for Tandem's sandbox. Answer with one fenced code block and nothing else.`,
        'The sandbox has no network, no files outside the working directory, no third-party packages and a short time limit.',
        `The task input is available as a variable named \`input\`${input.hasInput ? '' : ' (it is null for this task)'}.`,
        returnRule,
      ].join('\n'),
    },
    { role: 'user', content: `Task goal: ${input.goal}\n\nWrite a program that does this:\n${input.spec}` },
  ];
}
