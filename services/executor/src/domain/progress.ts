import { ErrorCodes, type ErrorShape, type JsonValue } from '@tandem/contracts';
import type { StepApproval } from './decision.js';

/** A planned step joined with its execution state. */
export interface StepState {
  stepId: string;
  key: string;
  index: number;
  tool: string;
  arguments: Record<string, JsonValue>;
  /** waiting | approved | rejected | generating | running | fixing | completed | failed | cancelled */
  status: string;
  result: { value: JsonValue; stdout: string } | null;
  error: ErrorShape | null;
  /** The approval service's stored decision for the step (null: no request row yet). */
  approval: StepApproval | null;
}

/** What the executor should do next for a task. */
export type NextAction =
  | { kind: 'wait'; reason: string }
  | { kind: 'start'; step: StepState }
  | { kind: 'complete' }
  | { kind: 'fail'; error: ErrorShape & { stepId?: string } };

/**
 * Waiting steps later steps may run past: they neither change the workspace nor reach outside before a
 * human decided, so a later step that does not depend on them cannot observe whether they ran first.
 */
const OVERTAKABLE_WHILE_WAITING: ReadonlySet<string> = new Set([
  'ask_human',
  'http_request',
  'respond',
  'read_file',
  'list_files',
]);

/** Steps with external effects keep their order behind every held step. */
const KEEPS_ORDER: ReadonlySet<string> = new Set(['http_request']);

/**
 * Whether `step` must wait behind the steps in `held` (steps waiting for a human, and steps held behind
 * them): it depends on one of them, or it has external effects whose order must not change.
 */
export function heldBehind(
  step: Pick<StepState, 'key' | 'tool'>,
  held: ReadonlySet<string>,
  dependsOn: ReadonlyMap<string, readonly string[]>,
): boolean {
  if (held.size === 0) return false;
  if (KEEPS_ORDER.has(step.tool)) return true;
  return (dependsOn.get(step.key) ?? []).some((key) => held.has(key));
}

/** Whether a step that has no decision yet lets later, independent steps go ahead. */
export function overtakable(step: Pick<StepState, 'status' | 'tool'>): boolean {
  return step.status === 'waiting' && OVERTAKABLE_WHILE_WAITING.has(step.tool);
}

/**
 * Steps run one at a time in plan order: the first step that is not completed decides. A step waits for
 * its approval; a rejected or failed step fails the task.
 */
export function nextAction(
  steps: readonly StepState[],
  dependsOn: ReadonlyMap<string, readonly string[]> = new Map(),
): NextAction {
  const ordered = [...steps].sort((a, b) => a.index - b.index);
  // Steps waiting for a human that later independent steps may pass, and the steps held behind them.
  const held = new Set<string>();
  for (const step of ordered) {
    // A rejected or failed step fails the task at once, held or not.
    const decidedForGood =
      step.status === 'completed' || step.status === 'rejected' || step.status === 'failed';
    if (!decidedForGood && (heldBehind(step, held, dependsOn) || overtakable(step))) {
      held.add(step.key);
      continue;
    }
    switch (step.status) {
      case 'completed':
        continue;
      // A `generating` step is started again only to take over a stale claim (the claim itself checks).
      case 'approved':
      case 'fixing':
      case 'generating':
        return { kind: 'start', step };
      case 'rejected':
        return {
          kind: 'fail',
          error: {
            // The step's own code says why: rejected by a human or policy, or expired (APPROVAL.EXPIRED).
            code: step.error?.code.startsWith('APPROVAL.') ? step.error.code : ErrorCodes.APPROVAL_REJECTED,
            message: `step ${step.key} (${step.tool}) was ${
              step.error?.code === ErrorCodes.APPROVAL_EXPIRED
                ? 'not decided before its deadline'
                : 'rejected'
            }${step.error ? `: ${step.error.message}` : ''}`,
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
  if (held.size > 0) return { kind: 'wait', reason: `steps ${[...held].join(', ')} await a decision` };
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

/** A learned pattern as the code prompt shows it. */
export interface CodePattern {
  type: string;
  content: string;
  confidence: number;
}

/** What the code model is told about a step. */
export interface CodeRequest {
  language: string;
  spec: string;
  goal: string;
  hasInput: boolean;
  /** Values of the steps this one depends on, by step key. */
  dependencies: Record<string, JsonValue>;
  /** Paths in the task's workspace, readable by the program. */
  files: string[];
  patterns: CodePattern[];
}

const MAX_DEPENDENCY_CHARS = 4000;

function systemPrompt(input: CodeRequest): string {
  const returnRule =
    input.language === 'python'
      ? 'Assign the answer (a JSON-serialisable value) to a global variable named `result`.'
      : 'Assign the answer (a JSON-serialisable value) to the pre-declared variable `result`, or `return` it (the code runs as the body of an async function).';
  const fileRule =
    input.language === 'python'
      ? 'Workspace files are in the current directory (open them by relative path); files you write there are saved.'
      : 'Workspace files are available through `files.read(path)`, `files.write(path, text)`, `files.list()` and `files.exists(path)`; files you write are saved. The engine is QuickJS: standard ECMAScript only, with `console.log` for output, and no `require`, `process`, Node.js modules, timers or `fetch`.';
  const lines = [
    `You write ${input.language} programs for Tandem's sandbox. Answer with one fenced code block and nothing else.`,
    'The sandbox has no network, no third-party packages and a short time limit.',
    `The task input is available as a variable named \`input\`${input.hasInput ? '' : ' (it is null for this task)'}.`,
    returnRule,
    fileRule,
  ];
  if (input.patterns.length > 0) {
    lines.push('', 'What worked before (learned patterns, most reliable first):');
    for (const pattern of input.patterns) {
      lines.push(`- [${pattern.type}, confidence ${pattern.confidence.toFixed(2)}] ${pattern.content}`);
    }
  }
  return lines.join('\n');
}

function contextLines(input: CodeRequest): string[] {
  const lines = [`Task goal: ${input.goal}`];
  if (Object.keys(input.dependencies).length > 0) {
    const text = JSON.stringify(input.dependencies);
    lines.push(
      `Results of earlier steps: ${text.length > MAX_DEPENDENCY_CHARS ? `${text.slice(0, MAX_DEPENDENCY_CHARS)}...` : text}`,
    );
  }
  if (input.files.length > 0) lines.push(`Workspace files: ${input.files.slice(0, 100).join(', ')}`);
  return lines;
}

/** The prompt for the code model: write a program for a spec. */
export function codePrompt(input: CodeRequest): Array<{ role: 'system' | 'user'; content: string }> {
  return [
    { role: 'system', content: systemPrompt(input) },
    {
      role: 'user',
      content: [...contextLines(input), '', `Write a program that does this:\n${input.spec}`].join('\n'),
    },
  ];
}

/** The prompt for the code model: fix a program that failed in the sandbox. */
export function fixPrompt(
  input: CodeRequest,
  failure: { code: string; error: ErrorShape; stderr: string },
): Array<{ role: 'system' | 'user'; content: string }> {
  const stderr = failure.stderr.trim().slice(-2000);
  return [
    { role: 'system', content: systemPrompt(input) },
    {
      role: 'user',
      content: [
        ...contextLines(input),
        '',
        `The program below should do this:\n${input.spec}`,
        '',
        'It failed in the sandbox:',
        `${failure.error.code}: ${failure.error.message.slice(0, 2000)}`,
        ...(stderr.length > 0 ? ['stderr:', stderr] : []),
        '',
        'The program:',
        '```',
        failure.code,
        '```',
        '',
        'Answer with the whole corrected program.',
      ].join('\n'),
    },
  ];
}

/** Sandbox outcomes worth asking the code model to fix (not a sandbox fault, not a kill by a cancel). */
export function isFixable(outcome: string): boolean {
  return (
    outcome === 'error' || outcome === 'timeout' || outcome === 'memory_limit' || outcome === 'output_limit'
  );
}

/** Failures a new plan cannot help with: the task ends with them. */
export function replanCanHelp(error: ErrorShape): boolean {
  return !(
    error.code.startsWith('APPROVAL.') ||
    error.code.startsWith('BUDGET.') ||
    error.code.startsWith('TASK.') ||
    error.code === 'MODEL.UNAVAILABLE' ||
    error.code === 'MODEL.UNKNOWN_CANDIDATE' ||
    error.code === 'MODEL.UNAUTHORIZED'
  );
}
