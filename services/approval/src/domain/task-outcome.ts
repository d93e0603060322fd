import { ErrorCodes, type TaskOutcomeCloudEvent } from '@tandem/contracts';
import { trustSubject, type RequestRow } from './request.js';
import type { TrustEventKind } from './trust.js';

/*
 * Verified outcomes earn and lose trust, read from the task's outcome (one message per task, not one per
 * step): when a task completes, each of its steps this service approved (or whose question was
 * answered) is a success of its agent in its action class; when it fails, the failing step is a failure
 * (a sandbox limit weighs more), and the other steps count for nothing. Only steps whose submitter could
 * act as the agent count. An auto-approved step that failed for a safety reason is a false approval.
 */

/** Sandbox limits: the step's code ran away (counts against trust more than a plain failure). */
const LIMIT_CODES: ReadonlySet<string> = new Set([
  ErrorCodes.SANDBOX_TIMEOUT,
  ErrorCodes.SANDBOX_MEMORY_LIMIT,
  ErrorCodes.SANDBOX_OUTPUT_LIMIT,
  ErrorCodes.SANDBOX_KILLED,
]);

/** Refusals of the tool policy at run time, and limits: the step tried something it may not. */
const SAFETY_CODES: ReadonlySet<string> = new Set([
  ...LIMIT_CODES,
  ErrorCodes.TOOL_URL_REJECTED,
  ErrorCodes.TOOL_PATH_REJECTED,
  ErrorCodes.TOOL_HEADER_REJECTED,
]);

/** How a failure changes the failing step's trust: null when it says nothing about the step. */
export function failureKind(code: string): TrustEventKind | null {
  // A human, a deadline, a cancel, a budget or the task's own deadline stopped it.
  if (code.startsWith('APPROVAL.') || code.startsWith('TASK.') || code.startsWith('BUDGET.')) return null;
  return LIMIT_CODES.has(code) ? 'limit' : 'failure';
}

/** Whether an outcome can change anything: a completed task without an agent cannot (nothing to read). */
export function outcomeMayChangeTrust(data: TaskOutcomeCloudEvent['data']): boolean {
  return !(data.status === 'completed' && (data.agentId === null || data.agentId === undefined));
}

/** One change of trust an outcome makes. */
export interface OutcomeTrustChange {
  agentId: string;
  actionClass: string;
  kind: TrustEventKind;
  /** Once per step: `step:<id>:finished`. */
  sourceEvent: string;
  reason: string;
}

/** What a task's outcome does to trust, and the false approvals it reveals (by error code). */
export function outcomeTrustChanges(
  data: TaskOutcomeCloudEvent['data'],
  requests: ReadonlyArray<{
    request: Pick<
      RequestRow,
      'id' | 'stepId' | 'tool' | 'mode' | 'status' | 'agentId' | 'actionClass' | 'trustAtDecision'
    >;
    key: string;
  }>,
): { changes: OutcomeTrustChange[]; falseApprovals: string[] } {
  const failure = data.status === 'failed' ? data.error : null;
  const changes: OutcomeTrustChange[] = [];
  const falseApprovals: string[] = [];
  for (const { request, key } of requests) {
    let kind: TrustEventKind | null = null;
    if (failure !== null) {
      if (failure.stepId !== key) continue;
      if (request.mode === 'auto' && request.status === 'approved' && SAFETY_CODES.has(failure.code)) {
        falseApprovals.push(failure.code);
      }
      kind = failureKind(failure.code);
    } else if (request.status === 'approved' || request.status === 'answered') {
      kind = 'success';
    }
    const subject = trustSubject(request);
    if (kind === null || subject === null) continue;
    changes.push({
      ...subject,
      kind,
      sourceEvent: `step:${request.stepId ?? request.id}:finished`,
      reason:
        kind === 'success'
          ? `step ${key} (${request.tool ?? 'unknown'}) completed in a completed task`
          : `step ${key} (${request.tool ?? 'unknown'}) failed: ${failure?.code ?? 'unknown'}`,
    });
  }
  return { changes, falseApprovals };
}
