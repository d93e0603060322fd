import { ErrorCodes, type ErrorShape } from '@tandem/contracts';
import { nextAction, type StepState } from './progress.js';

/** The leases of the stale-step sweep. */
export interface StepLeases {
  /** TANDEM_STEP_LEASE_MS: a step not renewed for this long lost the replica that ran it. */
  leaseMs: number;
  /** How often a lost sandbox job is requested again (same idempotency key) before its step fails. */
  leaseRetries: number;
  /** The sandbox job's own time limit, added to the lease of a `run_code` step. */
  sandboxTimeoutMs: number;
  /** The HTTP client's time limit, added to the lease of an `http_request` step. */
  httpTimeoutMs: number;
}

/** What the sweep does with a step that has not changed for `ageMs`. */
export type StaleStepAction =
  { kind: 'none' } | { kind: 'take_over' } | { kind: 'resend' } | { kind: 'fail'; error: ErrorShape };

/**
 * The rule for a stale step, per tool:
 * - `generating` (a code-model call): its replica renews the claim, so a stale one is taken over;
 * - `run_code` `running` (a sandbox job out): past the lease + the job's time limit, and while no sandbox
 *   result arrived for a lease (a runner draining a queue answers everything in time), the job is requested
 *   again with the SAME idempotency key (the sandbox-runner answers a finished run from its store instead
 *   of running it again), at most `leaseRetries` times, then the step fails STEP.LEASE_EXPIRED;
 * - `http_request` `running`: past the lease + the request's time limit the replica that sent it is
 *   gone; the request may have had its effect, so the step fails (HTTP.REQUEST_FAILED), never resent;
 * - any other tool `running` (inline tools never stay there): past the lease it fails STEP.LEASE_EXPIRED.
 */
export function staleStepAction(
  step: { status: string; tool: string; ageMs: number; requests: number },
  leases: StepLeases,
  /** A sandbox result arrived within the last lease: the runner is working through its queue. */
  sandboxDraining = false,
): StaleStepAction {
  if (step.status === 'generating')
    return step.ageMs > leases.leaseMs ? { kind: 'take_over' } : { kind: 'none' };
  if (step.status !== 'running') return { kind: 'none' };
  if (step.tool === 'run_code') {
    // While results keep coming, an unanswered job is most likely queued behind others, not lost.
    if (sandboxDraining || step.ageMs <= leases.leaseMs + leases.sandboxTimeoutMs) return { kind: 'none' };
    if (step.requests <= leases.leaseRetries) return { kind: 'resend' };
    return {
      kind: 'fail',
      error: {
        code: ErrorCodes.STEP_LEASE_EXPIRED,
        message: `the sandbox job was requested ${step.requests} times and never answered`,
        retryable: false,
        details: { tool: step.tool, requests: step.requests },
      },
    };
  }
  if (step.tool === 'http_request') {
    if (step.ageMs <= leases.leaseMs + leases.httpTimeoutMs) return { kind: 'none' };
    return {
      kind: 'fail',
      error: {
        code: ErrorCodes.HTTP_REQUEST_FAILED,
        message:
          'the request was interrupted (the executor that sent it stopped); it is not sent again because it may have had its effect',
        retryable: false,
      },
    };
  }
  if (step.ageMs <= leases.leaseMs) return { kind: 'none' };
  return {
    kind: 'fail',
    error: {
      code: ErrorCodes.STEP_LEASE_EXPIRED,
      message: `the ${step.tool} step stayed running past its lease`,
      retryable: false,
      details: { tool: step.tool },
    },
  };
}

/** Approval states in which a decision is still to come (a human's, after an escalation too). */
const STILL_TO_DECIDE = new Set(['pending', 'escalated']);

/**
 * Why a running task that was quiet for the stuck period (and that `advanceTask` just could not move)
 * can never move on, or null while something can still move it: a step out (`generating`, `running`),
 * a step that can start, or a step waiting for a decision not made yet (a human's, or the approval
 * service's on its way). A decision that was made but never reached the executor, a step ended behind
 * the run's back, or a plan that is no longer active leave the task stuck.
 */
export function stuckReason(
  state: {
    plan: { status: string };
    steps: readonly StepState[];
    dependsOn: ReadonlyMap<string, readonly string[]>;
  } | null,
): string | null {
  if (state === null) return 'the run has no plan';
  if (state.plan.status !== 'active') return `the run's plan is ${state.plan.status}`;
  for (const step of state.steps) {
    if (step.status === 'generating' || step.status === 'running') return null;
    if (step.status === 'waiting' && (step.approval === null || STILL_TO_DECIDE.has(step.approval.status)))
      return null;
  }
  const action = nextAction(state.steps, state.dependsOn);
  const statuses = state.steps.map((step) => `${step.key}: ${step.status}`).join(', ');
  if (action.kind === 'wait') return `nothing can move it on (${action.reason}; steps ${statuses})`;
  return `the executor could not ${action.kind === 'start' ? `start ${action.step.key}` : `${action.kind} it`} (steps ${statuses})`;
}

/** How a task ends whose planning outcome never reached the executor (it has no run). */
export type UnrunOutcome =
  { status: 'cancelled'; reason: string; requestedBy: null } | { status: 'failed'; error: ErrorShape };

/**
 * The end of a task the planner finished but whose outcome never reached the executor: cancelled as the
 * planner cancelled it, failed with the planner's error, or TASK.STUCK (planned, or failed without an
 * error stored).
 */
export function unrunOutcome(status: string, plannerError: ErrorShape | null): UnrunOutcome {
  if (status === 'cancelled')
    return { status: 'cancelled', reason: 'cancelled while it was being planned', requestedBy: null };
  if (status === 'failed' && plannerError !== null)
    return { status: 'failed', error: { ...plannerError, retryable: false } };
  return {
    status: 'failed',
    error: {
      code: ErrorCodes.TASK_STUCK,
      message:
        status === 'planned'
          ? 'the task was planned but its plan never reached the executor'
          : 'planning ended but its outcome never reached the executor',
      retryable: false,
    },
  };
}
