import type { ErrorShape } from '@tandem/contracts';
import { isFixable, sandboxError } from './progress.js';

/** The attempt a sandbox job's idempotency key (`<stepId>:<attempt>`) names; null when it names none. */
export function attemptOfKey(idempotencyKey: string): number | null {
  const attempt = Number(idempotencyKey.split(':').pop());
  return Number.isInteger(attempt) ? attempt : null;
}

/** What a sandbox result does to its step. */
export type SandboxResultDecision =
  /** The program succeeded: the step completes (and the files it wrote are saved). */
  | { kind: 'complete' }
  /** A fixable failure with fixes left: the code model is asked for a fix. */
  | { kind: 'fix'; error: ErrorShape }
  /** The step fails with the error. */
  | { kind: 'fail'; error: ErrorShape };

/** The parts of a `sandbox.run-completed` result the decision reads. */
export interface SandboxResultFacts {
  outcome: string;
  stderr: string;
  errorMessage?: string | null | undefined;
  exitCode: number | null;
  /** A typed reason from the runner (e.g. SANDBOX.INTERRUPTED): the step's error code. */
  errorCode?: string | undefined;
}

/**
 * Decides what a sandbox result does: success completes the step; a fixable failure (see `isFixable`) of
 * an attempt up to `maxFixAttempts` asks for a fix; any other failure fails the step.
 */
export function decideSandboxResult(
  run: SandboxResultFacts,
  attempt: number | null,
  maxFixAttempts: number,
): SandboxResultDecision {
  if (run.outcome === 'ok') return { kind: 'complete' };
  const failure = sandboxError(run.outcome, {
    stderr: run.stderr,
    errorMessage: run.errorMessage ?? null,
    exitCode: run.exitCode,
  });
  const error =
    run.errorCode !== undefined
      ? { ...failure, code: run.errorCode, message: run.errorMessage ?? failure.message }
      : failure;
  const fix = isFixable(run.outcome) && attempt !== null && attempt <= maxFixAttempts;
  return fix ? { kind: 'fix', error } : { kind: 'fail', error };
}
