import {
  ErrorCodes,
  TandemError,
  toolRegistry,
  validateToolArguments,
  type ApprovalDecisionBody,
  type JsonValue,
  type ToolCheckContext,
} from '@tandem/contracts';
import { matchChoice, parseQuestion } from './question.js';
import type { Rejudged } from './rejudge.js';

/** What an approval request asks of a human: a yes/no, or an answer to a question. */
export type RequestKind = 'approval' | 'question';

/** Reads a stored `kind`; anything but `question` is an approval request (the column's default). */
export function requestKindOf(stored: string | null | undefined): RequestKind {
  return stored === 'question' ? 'question' : 'approval';
}

/** The state a human decision moves a pending request to, and what `approval.decided` says. */
export interface HumanOutcome {
  status: 'approved' | 'rejected' | 'answered';
  reason: string | null;
  answer: string | null;
}

/** Why a decision does not fit the request (a caller's error: HTTP 422). */
export interface DecisionProblem {
  code: typeof ErrorCodes.APPROVAL_WRONG_DECISION | typeof ErrorCodes.APPROVAL_INVALID_ANSWER;
  message: string;
  details?: Record<string, unknown>;
}

/**
 * Checks a human's decision against what the request asks. An approval request takes `approve` or
 * `reject`; a question takes `answer` (one of its choices, when it has some) or `reject`.
 * Whether the request is still pending is not checked here: the conditional update decides that.
 */
export function humanOutcome(
  request: { kind: RequestKind; choices: readonly string[] | null },
  body: ApprovalDecisionBody,
): { ok: true; outcome: HumanOutcome } | { ok: false; problem: DecisionProblem } {
  switch (body.decision) {
    case 'approve':
      if (request.kind === 'question') {
        return wrongDecision('a question is answered (decision "answer") or rejected, not approved');
      }
      return { ok: true, outcome: { status: 'approved', reason: body.reason ?? null, answer: null } };
    case 'reject':
      return { ok: true, outcome: { status: 'rejected', reason: body.reason, answer: null } };
    case 'answer': {
      if (request.kind === 'approval') {
        return wrongDecision('an approval request is approved or rejected, not answered');
      }
      const answer = matchChoice(body.answer, request.choices);
      if (answer === null) {
        return {
          ok: false,
          problem: {
            code: ErrorCodes.APPROVAL_INVALID_ANSWER,
            message: "the answer must be one of the question's choices",
            details: { choices: request.choices },
          },
        };
      }
      return { ok: true, outcome: { status: 'answered', reason: null, answer } };
    }
    case 'edit':
      // An edit approves the step with new arguments (checked again by the caller).
      if (request.kind === 'question') {
        return wrongDecision('a question is answered (decision "answer") or rejected, not edited');
      }
      return { ok: true, outcome: { status: 'approved', reason: body.reason ?? null, answer: null } };
  }
}

function wrongDecision(message: string): { ok: false; problem: DecisionProblem } {
  return { ok: false, problem: { code: ErrorCodes.APPROVAL_WRONG_DECISION, message } };
}

/** Who decides: an API token (its name, role and groups) or a signed webhook. */
export interface Decider {
  /** Recorded as `decidedBy`: `token:<name>` or `webhook:<decidedBy>`. */
  decidedBy: string;
  /**
   * `admin` and a signed webhook may decide any request; an approver with groups only requests of those
   * groups, one without groups only requests without a group.
   */
  role: 'admin' | 'approver' | 'submitter' | 'webhook';
  groups: readonly string[];
}

/**
 * Whether a decider sees (and may decide) requests of `group`: a signed webhook and an admin all; an
 * approver with groups only those groups' requests, one without groups only requests without a group.
 */
export function deciderSees(decider: Pick<Decider, 'role' | 'groups'>, group: string | null): boolean {
  if (decider.role === 'webhook' || decider.role === 'admin') return true;
  if (decider.role !== 'approver') return false;
  if (decider.groups.length === 0) return group === null;
  return group !== null && decider.groups.includes(group);
}

/**
 * The request a decision is about, if the decider may decide it. One it does not see is answered like
 * an unknown one (APPROVAL.NOT_FOUND), before anything about its state is told.
 */
export function decidableRequest<
  T extends { id: string; stepId: string | null; approverGroup: string | null },
>(approvalId: string, request: T | null, decider: Pick<Decider, 'role' | 'groups'>): T & { stepId: string } {
  if (request === null || !deciderSees(decider, request.approverGroup))
    throw new TandemError(ErrorCodes.APPROVAL_NOT_FOUND, `approval ${approvalId} not found`);
  const { stepId } = request;
  if (stepId === null) throw new TandemError(ErrorCodes.INTERNAL, `approval ${request.id} has no step`);
  return { ...request, stepId };
}

/**
 * Checks a human decision against the request, in this order: the decision fits what the request asks
 * (422 APPROVAL.WRONG_DECISION / INVALID_ANSWER), the request is still pending (409
 * APPROVAL.ALREADY_DECIDED), and its deadline has not passed by the database's clock `now` (409
 * APPROVAL.EXPIRED). Returns the state the decision moves it to.
 */
export function checkHumanDecision(
  request: {
    id: string;
    kind: RequestKind;
    status: string;
    decidedBy: string | null;
    deadline: Date | null;
  },
  stepArguments: unknown,
  body: ApprovalDecisionBody,
  now: Date,
): HumanOutcome {
  const choices =
    request.kind === 'question' && body.decision === 'answer'
      ? (parseQuestion(stepArguments)?.choices ?? null)
      : null;
  const checked = humanOutcome({ kind: request.kind, choices }, body);
  if (!checked.ok) {
    throw new TandemError(checked.problem.code, checked.problem.message, {
      details: { kind: request.kind, ...checked.problem.details },
    });
  }
  if (request.status !== 'pending') {
    throw new TandemError(
      ErrorCodes.APPROVAL_ALREADY_DECIDED,
      `approval ${request.id} is already ${request.status}`,
      {
        details: { status: request.status, decidedBy: request.decidedBy },
      },
    );
  }
  if (request.deadline !== null && request.deadline.getTime() <= now.getTime()) {
    throw new TandemError(ErrorCodes.APPROVAL_EXPIRED, `approval ${request.id} passed its deadline`, {
      details: { deadline: request.deadline.toISOString() },
    });
  }
  return checked.outcome;
}

/**
 * Revalidates an approver's edited arguments like a model's call (schema, size, semantic checks), then
 * takes the second judgement of the edited step (see rejudge.ts): a deny refuses the edit
 * (`APPROVAL.INVALID_EDIT`, 422); otherwise the checked arguments and what the judgement makes of them.
 */
export function checkEdit(
  tool: string,
  edited: Record<string, JsonValue>,
  checkContext: ToolCheckContext,
  judge: (checked: Record<string, JsonValue>) => Rejudged,
): { arguments: Record<string, JsonValue>; rejudged: Exclude<Rejudged, { kind: 'denied' }> } {
  const checked = validateToolArguments(toolRegistry, tool, edited, undefined, checkContext);
  if (!checked.ok) {
    throw new TandemError(
      ErrorCodes.APPROVAL_INVALID_EDIT,
      `the edited call is invalid: ${checked.error.message}`,
      {
        details: {
          code: checked.error.code,
          ...(checked.error.details === undefined ? {} : { issues: checked.error.details }),
        },
      },
    );
  }
  const rejudged = judge(checked.call.arguments);
  if (rejudged.kind === 'denied') {
    throw new TandemError(
      ErrorCodes.APPROVAL_INVALID_EDIT,
      `the policy denies the edited call: ${rejudged.decision.reason}`,
      { details: { basis: rejudged.decision.basis } },
    );
  }
  return { arguments: checked.call.arguments, rejudged };
}

/**
 * The change of trust a human decision makes, or null (an answer says nothing about the agent): a
 * rejection, an edit, or an approval without edits.
 */
export function decisionTrustChange(
  outcome: Pick<HumanOutcome, 'status' | 'reason'>,
  edited: boolean,
  decidedBy: string,
): { kind: 'rejection' | 'edit' | 'approval'; reason: string } | null {
  if (outcome.status === 'answered') return null;
  if (outcome.status === 'rejected')
    return { kind: 'rejection', reason: `rejected by ${decidedBy}: ${outcome.reason ?? ''}` };
  if (edited) return { kind: 'edit', reason: `arguments edited by ${decidedBy}` };
  return { kind: 'approval', reason: `approved by ${decidedBy} without edits` };
}
