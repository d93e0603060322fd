import {
  ErrorCodes,
  JsonValue,
  TandemError,
  resolveStepReferencesDeep,
  type ErrorShape,
} from '@tandem/contracts';
import { z } from 'zod';
import { unboundApprovedSteps } from './decision.js';
import { heldBehind, nextAction, overtakable, replanCanHelp, type StepState } from './progress.js';
import type { RunState } from './run-state.js';

/*
 * The executor's decision step: given a task's run state, what to do next. `advanceTask` loads the state,
 * calls `decideAdvance`, carries out the decision (a runner per tool for a step), and loads again.
 */

/** Tools whose work is a read or write of Tandem's own database: they run inline, several in one pass. */
export const INLINE_TOOLS: ReadonlySet<string> = new Set([
  'respond',
  'ask_human',
  'read_file',
  'write_file',
  'delete_file',
  'list_files',
]);

/** Tools whose step leaves the database (an HTTP call, the code model and the sandbox): one runner each. */
export type OutboundTool = 'http_request' | 'run_code';

function isOutbound(tool: string): tool is OutboundTool {
  return tool === 'http_request' || tool === 'run_code';
}

/** A step to fail, from one of the states it may be in, with its error. */
export interface StepFailure {
  step: StepState;
  from: ReadonlyArray<'approved' | 'running'>;
  error: ErrorShape;
  /** unbound: approved, but no stored decision holds for what it would run; unknown_tool: no runner. */
  why: 'unbound' | 'unknown_tool';
}

/** What the executor does next for a task. */
export type AdvanceDecision =
  /** The task has no run or plan, or its run is not `running`: nothing to do. */
  | { kind: 'stop' }
  /** The task cannot go on: fail it (a passed deadline, a rejected step, a failed one with no re-plan). */
  | { kind: 'fail_task'; error: ErrorShape & { stepId?: string } }
  /** Steps that must not start as they are (no stored decision for what would run, an unknown tool). */
  | { kind: 'fail_steps'; failures: StepFailure[] }
  /** A step failed for good and a new plan may help: ask for one. */
  | { kind: 'replan'; failed: StepState; error: ErrorShape & { stepId?: string } }
  /** Every step completed. */
  | { kind: 'complete' }
  /** Nothing can run now (a decision, a sandbox result, a human). */
  | { kind: 'wait'; reason: string }
  /** The next step is inline: run every inline step that can run now, in one pass. */
  | { kind: 'run_inline' }
  /** The next step leaves the database: run it with its tool's runner. */
  | { kind: 'start'; step: StepState; tool: OutboundTool };

/** What {@link decideAdvance} needs besides the state. */
export interface AdvanceSettings {
  now: Date;
  /** New plans the executor may ask for after a step failed for good. */
  maxReplans: number;
}

/**
 * Decides the next move of a task from its run state: stop, fail the task (its deadline passed, a step
 * was rejected or failed for good), fail steps that must not start, ask for a re-plan, complete, wait, run
 * the inline steps, or start the next step that leaves the database.
 */
export function decideAdvance(state: RunState | null, settings: AdvanceSettings): AdvanceDecision {
  if (state === null || state.run.status !== 'running') return { kind: 'stop' };
  const deadline = state.task.deadline;
  if (deadline !== null && deadline.getTime() <= settings.now.getTime())
    return { kind: 'fail_task', error: deadlineError(deadline) };
  // A step starts only on a decision stored by the approval service for exactly what would run (inline
  // steps are checked in their pass, where a value may come from an earlier step of the same pass).
  const unbound = unboundApprovedSteps(
    state.steps,
    (step) => resolvedArguments(state.steps, step),
    (step) => INLINE_TOOLS.has(step.tool),
  );
  if (unbound.length > 0)
    return {
      kind: 'fail_steps',
      failures: unbound.map((step) => ({
        step,
        from: ['approved'],
        error: unverified(step).toShape(),
        why: 'unbound' as const,
      })),
    };
  const action = nextAction(state.steps, state.dependsOn);
  switch (action.kind) {
    case 'wait':
      return { kind: 'wait', reason: action.reason };
    case 'complete':
      return { kind: 'complete' };
    case 'fail': {
      const failed = state.steps.find((step) => step.key === action.error.stepId);
      if (
        failed !== undefined &&
        failed.status === 'failed' &&
        state.run.replans < settings.maxReplans &&
        replanCanHelp(action.error)
      )
        return { kind: 'replan', failed, error: action.error };
      return { kind: 'fail_task', error: action.error };
    }
    case 'start': {
      const step = action.step;
      if (INLINE_TOOLS.has(step.tool)) return { kind: 'run_inline' };
      if (isOutbound(step.tool)) return { kind: 'start', step, tool: step.tool };
      // A tool the executor cannot run (added to contracts but not here yet) fails the step, not the process.
      return {
        kind: 'fail_steps',
        failures: [
          {
            step,
            from: ['approved', 'running'],
            error: new TandemError(
              ErrorCodes.TOOL_UNKNOWN_FUNCTION,
              `the executor cannot run ${step.tool}`,
            ).toShape(),
            why: 'unknown_tool',
          },
        ],
      };
    }
  }
}

/** The error of a task whose deadline passed. */
export function deadlineError(deadline: Date): ErrorShape {
  return {
    code: ErrorCodes.TASK_DEADLINE_EXCEEDED,
    message: `the task's deadline ${deadline.toISOString()} passed`,
    retryable: false,
  };
}

/** The error of an approved step whose stored decision does not hold for what it would run. */
export function unverified(step: { key: string }): TandemError {
  return new TandemError(
    ErrorCodes.APPROVAL_UNVERIFIED,
    `no stored approval holds for the arguments step ${step.key} would run with`,
  );
}

const ArgumentsRecord = z.record(z.string(), JsonValue);

/** The results of completed steps by key, as references see them. */
export function stepResults(steps: readonly StepState[]): Map<string, { value: JsonValue; stdout: string }> {
  return new Map(
    steps
      .filter((other) => other.status === 'completed' && other.result)
      .map((other) => [
        other.key,
        { value: other.result?.value ?? null, stdout: other.result?.stdout ?? '' },
      ]),
  );
}

/** A step's arguments with every `{{steps.<key>...}}` reference resolved from the completed steps. */
export function resolvedArguments(steps: readonly StepState[], step: StepState): Record<string, JsonValue> {
  const resolved = resolveStepReferencesDeep(step.arguments, stepResults(steps));
  const parsed = ArgumentsRecord.safeParse(resolved);
  return parsed.success ? parsed.data : {};
}

/**
 * The approved inline steps one pass runs, in plan order: as in `nextAction`, independent steps go past
 * steps that wait for a human without effects; the pass ends at the first step that is neither.
 */
export function inlinePass(
  steps: readonly StepState[],
  dependsOn: ReadonlyMap<string, readonly string[]>,
): StepState[] {
  const held = new Set<string>();
  const pass: StepState[] = [];
  for (const step of steps) {
    if (step.status === 'completed') continue;
    if (heldBehind(step, held, dependsOn) || overtakable(step)) {
      held.add(step.key);
      continue;
    }
    if (step.status !== 'approved' || !INLINE_TOOLS.has(step.tool)) break;
    pass.push(step);
  }
  return pass;
}

/**
 * How a failure of an inline tool ends its step: malformed stored arguments and expected tool failures (a
 * TandemError that is not retryable) fail the step; anything else is not the step's fault (null: rethrow).
 */
export function inlineFailure(error: unknown, step: { tool: string }): ErrorShape | null {
  if (error instanceof z.ZodError)
    return {
      code: ErrorCodes.TOOL_INVALID_ARGUMENTS,
      message: `stored arguments of ${step.tool} are malformed`,
      retryable: false,
    };
  if (error instanceof TandemError && !error.retryable) return error.toShape();
  return null;
}

/** The result of a task whose steps all completed: the last `respond` answer and every step's value. */
export function taskResult(steps: readonly StepState[]): {
  answer: string;
  steps: Array<{ id: string; tool: string; value: JsonValue }>;
} {
  const respondStep = [...steps].reverse().find((step) => step.tool === 'respond');
  const answer = respondStep?.result?.value;
  return {
    answer: typeof answer === 'string' ? answer : JSON.stringify(answer ?? null),
    steps: steps.map((step) => ({ id: step.key, tool: step.tool, value: step.result?.value ?? null })),
  };
}
