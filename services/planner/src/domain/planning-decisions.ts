import {
  ErrorCodes,
  TandemError,
  toErrorShape,
  type ErrorShape,
  type EventData,
  type TaskBudget,
  type TaskReplanRequested,
} from '@tandem/contracts';
import type { ValidatedStep } from './planning.js';

// When to plan, which outcome a planning round has, and what becomes of it: the decisions of the
// task.accepted and task.replan-requested consumers and of the planning loop, without any I/O.

/** A task's planning state, as the decisions read it. */
export type TaskState = 'accepted' | 'planning' | 'planned' | 'failed' | 'cancelled';

/** States in which a task may still get its first plan. */
const PLANNABLE: readonly TaskState[] = ['accepted', 'planning'];

/** What a task.accepted delivery does before any model call. */
export type PlanningStart<TTask> =
  /** An earlier delivery was handled: nothing to do. */
  | { kind: 'duplicate' }
  /** The task is not stored (yet): retry later. */
  | { kind: 'missing'; error: TandemError }
  /** The task moved on (planned, failed, cancelled): record the message, plan nothing. */
  | { kind: 'settled' }
  | { kind: 'plan'; task: TTask };

/** Whether a task.accepted delivery plans its task (`processed`: an earlier delivery was handled). */
export function planningStart<TTask extends { status: TaskState; processed: boolean }>(
  taskId: string,
  task: TTask | null,
): PlanningStart<TTask> {
  if (task?.processed) return { kind: 'duplicate' };
  if (task === null) return { kind: 'missing', error: taskMissing(taskId) };
  if (!PLANNABLE.includes(task.status)) return { kind: 'settled' };
  return { kind: 'plan', task };
}

/** What a task.replan-requested delivery does before any model call. */
export type ReplanningStart<TTask> =
  | { kind: 'missing'; error: TandemError }
  /** The task was cancelled or the failed plan is no longer the active one: record the message only. */
  | { kind: 'settled' }
  /** Plan version `version` (the failed one's + 1). */
  | { kind: 'replan'; task: TTask; version: number };

/** Whether a task.replan-requested delivery makes a new plan version, and which. */
export function replanningStart<TTask extends { status: TaskState }>(
  taskId: string,
  task: TTask | null,
  failedPlan: { status: string; version: number } | null,
): ReplanningStart<TTask> {
  if (task === null) return { kind: 'missing', error: taskMissing(taskId) };
  if (task.status === 'cancelled' || failedPlan === null || failedPlan.status !== 'active')
    return { kind: 'settled' };
  return { kind: 'replan', task, version: failedPlan.version + 1 };
}

function taskMissing(taskId: string): TandemError {
  // The task row may not be visible yet (its event raced its commit): retryable.
  return new TandemError(ErrorCodes.TASK_NOT_FOUND, `task ${taskId} does not exist`, { retryable: true });
}

/** The outcome of asking the model (with bounded repairs) for a valid plan. */
export type PlanningResult =
  | { kind: 'planned'; steps: ValidatedStep[]; attempts: number; invalidCalls: number; models: string[] }
  | { kind: 'failed'; error: ErrorShape & { stepId?: string }; attempts: number; models: string[] }
  /** A retryable model failure: the caller lets the message be redelivered. */
  | { kind: 'retry'; error: ErrorShape; cause: unknown }
  /** The task was cancelled meanwhile: nothing is stored. */
  | { kind: 'cancelled' };

/** What becomes of a planning round's result. */
export type PlanningEffect =
  /** Throw this retryable error: the message comes back (the model failed, and may still be retried). */
  | { kind: 'retry'; error: TandemError }
  /** Record the message and store nothing (the task was cancelled meanwhile). */
  | { kind: 'settle' }
  /** Store the plan and publish plan.proposed. */
  | { kind: 'store'; steps: ValidatedStep[]; attempts: number; invalidCalls: number; models: string[] }
  /** Publish plan.failed with this (permanent) error; `repairs` for the metrics. */
  | { kind: 'fail'; error: ErrorShape; repairs: number };

/** The effect of a first planning round's result. */
export function afterPlanning(result: PlanningResult): PlanningEffect {
  switch (result.kind) {
    case 'retry':
      return {
        kind: 'retry',
        // The code is the wire shape's string: fromShape keeps it when declared (INTERNAL.ERROR otherwise).
        error: TandemError.fromShape({ ...result.error, retryable: true }, { cause: result.cause }),
      };
    case 'cancelled':
      return { kind: 'settle' };
    case 'planned':
      return { kind: 'store', ...withoutKind(result) };
    case 'failed':
      return {
        kind: 'fail',
        error: { ...result.error, retryable: false },
        repairs: Math.max(0, result.attempts - 1),
      };
  }
}

/**
 * The effect of a re-planning round's result: as {@link afterPlanning}, and a failure says which step
 * failed the previous version and why.
 */
export function afterReplanning(
  result: PlanningResult,
  request: Pick<EventData<typeof TaskReplanRequested>, 'failedStep'>,
): PlanningEffect {
  const effect = afterPlanning(result);
  if (effect.kind !== 'fail') return effect;
  return {
    ...effect,
    error: {
      ...effect.error,
      message: `re-planning after step ${request.failedStep.key} failed (${request.failedStep.error.code}) did not succeed: ${effect.error.message}`,
    },
  };
}

function withoutKind<T extends { kind: string }>(value: T): Omit<T, 'kind'> {
  const { kind: _kind, ...rest } = value;
  return rest;
}

/** The failure of a planning round whose task's deadline passed (at `now`), or null before it. */
export function deadlinePassed(
  deadline: Date | null,
  now: number,
): (ErrorShape & { stepId?: string }) | null {
  if (deadline === null || now < deadline.getTime()) return null;
  return {
    code: ErrorCodes.TASK_DEADLINE_EXCEEDED,
    message: `the task's deadline ${deadline.toISOString()} passed while it was being planned`,
    retryable: false,
  };
}

/**
 * What a failed model call makes of the round: a retryable failure is retried through redelivery while
 * deliveries are left (`mayRetry`); anything else fails the planning for good.
 */
export function afterModelFailure(
  error: unknown,
  mayRetry: boolean,
): { kind: 'retry'; error: ErrorShape; cause: unknown } | { kind: 'failed'; error: ErrorShape } {
  const shape = toErrorShape(error);
  if (shape.retryable && mayRetry) return { kind: 'retry', error: shape, cause: error };
  return { kind: 'failed', error: { ...shape, retryable: false } };
}

/** Whether the task was cancelled (or vanished) while it was being planned. */
export function cancelledMeanwhile(status: TaskState | null): boolean {
  return status === null || status === 'cancelled';
}

/** What is left of a task's cost budget after `spentUsd`, or undefined without a cost budget. */
export function remainingBudgetUsd(budget: TaskBudget | undefined, spentUsd: number): number | undefined {
  return budget?.maxCostUsd === undefined ? undefined : Math.max(0, budget.maxCostUsd - spentUsd);
}
