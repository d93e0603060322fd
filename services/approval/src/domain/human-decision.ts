import type { ApprovalDecisionBody } from '@tandem/contracts';
import { ErrorCodes } from '@tandem/contracts';
import { matchChoice } from './question.js';

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
