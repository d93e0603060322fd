import {
  ErrorCodes,
  JsonValue,
  TandemError,
  argumentsHash,
  needsResolvedApproval,
  referencedStepKeysDeep,
  type ErrorShape,
} from '@tandem/contracts';
import { z } from 'zod';

/*
 * Decisions as the executor trusts them: from the approval service's request row in Postgres, never
 * from an event's say-so (docs/architecture/security.md, "What a decision is bound to").
 */

/** The request row's fields the executor reads. */
export interface StoredDecision {
  status: string;
  mode: string;
  reason: string | null;
  answer: string | null;
  editedArguments: unknown;
}

/** What a decided request makes of the step's run row; null when the row decides nothing (yet). */
export interface DecidedStepRun {
  status: 'approved' | 'rejected';
  mode: 'auto' | 'human';
  error: ErrorShape | null;
  answer: string | null;
  arguments: Record<string, JsonValue> | null;
}

const EditedArguments = z.record(z.string(), JsonValue);

/** Maps a stored request to the step's run state: approved, answered, rejected or expired; else null. */
export function stepRunFromDecision(request: StoredDecision): DecidedStepRun | null {
  const mode = request.mode === 'human' ? 'human' : 'auto';
  switch (request.status) {
    case 'approved': {
      if (request.editedArguments === null)
        return { status: 'approved', mode, error: null, answer: null, arguments: null };
      // An edit that is not an arguments record is a broken row: never run the planned arguments instead.
      const edited = EditedArguments.safeParse(request.editedArguments);
      if (!edited.success)
        throw new TandemError(
          ErrorCodes.DB_ROW_INVALID,
          `ApprovalRequest.editedArguments does not match its schema: ${edited.error.message}`,
        );
      return { status: 'approved', mode, error: null, answer: null, arguments: edited.data };
    }
    case 'answered':
      return { status: 'approved', mode, error: null, answer: request.answer ?? '', arguments: null };
    case 'rejected':
    case 'expired':
      return {
        status: 'rejected',
        mode,
        error: {
          code: request.status === 'expired' ? ErrorCodes.APPROVAL_EXPIRED : ErrorCodes.APPROVAL_REJECTED,
          message: request.reason ?? 'rejected',
          retryable: false,
        },
        answer: null,
        arguments: null,
      };
    default:
      return null;
  }
}

/** A policy decision stored for one step, as `approval.batch-decided` names it. */
export interface PolicyDecision {
  stepId: string;
  status: 'approved' | 'rejected';
  reason: string | null;
}

/** What a policy decision makes of the step's run row: approved, or rejected with APPROVAL.REJECTED. */
export function stepRunFromPolicy(decision: PolicyDecision): {
  stepId: string;
  status: 'approved' | 'rejected';
  approval: 'auto';
  error: ErrorShape | null;
} {
  return {
    stepId: decision.stepId,
    status: decision.status,
    approval: 'auto',
    error:
      decision.status === 'approved'
        ? null
        : {
            code: ErrorCodes.APPROVAL_REJECTED,
            message: decision.reason ?? 'rejected by policy',
            retryable: false,
          },
  };
}

/** A step's stored approval as the run state carries it. */
export interface StepApproval {
  status: string;
  argumentsHash: string | null;
}

/**
 * Whether a step may start: its request row says approved (or answered) and is bound to exactly the
 * arguments that would run — the resolved ones for a step approved with its values. `ask_human` steps
 * run nothing; their answer is the value.
 */
export function approvalHolds(
  step: { tool: string; arguments: Record<string, JsonValue>; approval: StepApproval | null },
  resolved: Record<string, JsonValue>,
): boolean {
  const approval = step.approval;
  if (approval === null) return false;
  if (approval.status !== 'approved' && approval.status !== 'answered') return false;
  if (approval.argumentsHash === null) return false;
  const bound = needsResolvedApproval(step.tool, step.arguments) ? resolved : step.arguments;
  return argumentsHash(bound) === approval.argumentsHash;
}

/** What {@link unboundApprovedSteps} needs of a step. */
export interface BindableStep {
  key: string;
  tool: string;
  status: string;
  arguments: Record<string, JsonValue>;
  approval: StepApproval | null;
}

/**
 * Approved steps that must not start: their stored decision does not hold for what would run. A step
 * approved with its values is checked once every step it references has completed (before that it
 * cannot start, and its values are not known).
 */
export function unboundApprovedSteps<TStep extends BindableStep>(
  steps: readonly TStep[],
  resolve: (step: TStep) => Record<string, JsonValue>,
  /** Steps checked elsewhere (the executor's inline pass checks its own steps as it runs them). */
  checkedElsewhere: (step: TStep) => boolean = () => false,
): TStep[] {
  const completed = new Set(steps.filter((step) => step.status === 'completed').map((step) => step.key));
  return steps.filter((step) => {
    if (step.status !== 'approved' || checkedElsewhere(step)) return false;
    if (needsResolvedApproval(step.tool, step.arguments)) {
      if (!referencedStepKeysDeep(step.arguments).every((key) => completed.has(key))) return false;
    }
    return !approvalHolds(step, resolve(step));
  });
}
