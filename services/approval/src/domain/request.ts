import type { JsonValue, RiskClass, RiskLevel, RiskReason } from '@tandem/contracts';
import type { RequestKind } from './human-decision.js';
import type { OnExpiry } from './policy.js';

/*
 * An approval request as the decisions see it: a stored `ApprovalRequest` row with its JSON columns
 * parsed (requests.ts reads and parses them; a row that does not parse is an error, never a default).
 */

/** A request's state. `escalated` is only a filter of the API: an escalated request stays `pending`. */
export type RequestStatus =
  | 'pending'
  | 'approved'
  | 'rejected'
  | 'expired'
  | 'escalated'
  | 'answered'
  | 'superseded'
  | 'cancelled'
  | 'awaiting-values';

/** An approval request. */
export interface RequestRow {
  id: string;
  taskId: string;
  planId: string;
  stepId: string | null;
  agentId: string | null;
  tool: string | null;
  riskClass: RiskClass | null;
  riskLevel: RiskLevel | null;
  /** Empty when none were stored. */
  riskReasons: RiskReason[];
  trustAtDecision: number | null;
  kind: RequestKind;
  question: string | null;
  mode: 'auto' | 'human';
  status: RequestStatus;
  deadline: Date | null;
  decidedBy: string | null;
  decidedAt: Date | null;
  reason: string | null;
  editedArguments: Record<string, JsonValue> | null;
  resolvedArguments: Record<string, JsonValue> | null;
  argumentsHash: string | null;
  answer: string | null;
  actionClass: string | null;
  basis: string | null;
  approverGroup: string | null;
  escalationLevel: number;
  onExpiry: OnExpiry | null;
  remindedAt: Date | null;
  revertedAt: Date | null;
  createdAt: Date;
}

/** A request's trust-relevant identity: trust counts only for an agent the submitter could act as. */
export function trustSubject(
  request: Pick<RequestRow, 'agentId' | 'actionClass' | 'trustAtDecision'>,
): { agentId: string; actionClass: string } | null {
  if (request.agentId === null || request.actionClass === null || request.trustAtDecision === null)
    return null;
  return { agentId: request.agentId, actionClass: request.actionClass };
}
