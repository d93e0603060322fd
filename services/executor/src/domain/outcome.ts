import { ErrorCodes, type ErrorShape, type TaskCompletedData } from '@tandem/contracts';

/** How a task ends. */
export type TaskOutcome =
  | { status: 'completed'; result: TaskCompletedData['result'] }
  | { status: 'failed'; error: ErrorShape & { stepId?: string } }
  | { status: 'cancelled'; reason: string | null; requestedBy: string | null };

/** A task's end other than completed. */
export type TaskEnd = Extract<TaskOutcome, { status: 'failed' | 'cancelled' }>;

/** What the run row stores for an ending task: its state and its error (never retryable). */
export function storedEnd(outcome: TaskEnd): { status: 'failed' | 'cancelled'; error: ErrorShape } {
  if (outcome.status === 'failed') return { status: 'failed', error: { ...outcome.error, retryable: false } };
  return {
    status: 'cancelled',
    error: { code: ErrorCodes.TASK_CANCELLED, message: outcome.reason ?? 'cancelled', retryable: false },
  };
}

/** The outcome as its event carries it: a failure is never retryable. */
export function finalOutcome(outcome: TaskEnd): TaskEnd {
  return outcome.status === 'failed'
    ? { ...outcome, error: { ...outcome.error, retryable: false } }
    : outcome;
}
