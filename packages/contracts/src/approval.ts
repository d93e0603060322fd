import { z } from 'zod';
import { defineEvent } from './envelope.js';
import { JsonValue } from './json.js';

/*
 * The approval service's public contracts: risk levels, tokens, trust, webhooks (both ways) and the
 * verdicts published for learning. HTTP bodies on security routes are strict objects without coercion:
 * unknown fields are rejected, not stripped.
 */

/** How risky one step is, from the deterministic rules (a model opinion may only raise it). */
export const RiskLevel = z.enum(['low', 'medium', 'high', 'critical']);
/** How risky one step is. */
export type RiskLevel = z.infer<typeof RiskLevel>;

/** Levels in order, lowest first. */
export const RISK_LEVELS: readonly RiskLevel[] = RiskLevel.options;

/** One reason a rule gave for a step's risk level. */
export const RiskReason = z.object({
  /** Stable id of the rule, e.g. `args.secret-path` or `plan.secret-then-network`. */
  rule: z.string(),
  level: RiskLevel,
  message: z.string(),
});
/** One reason a rule gave for a step's risk level. */
export type RiskReason = z.infer<typeof RiskReason>;

/** Roles of API tokens. `admin` may do everything an approver or submitter may. */
export const TokenRole = z.enum(['submitter', 'approver', 'admin']);
/** Roles of API tokens. */
export type TokenRole = z.infer<typeof TokenRole>;

const TokenName = z.string().trim().min(1).max(200);
const AgentName = z.string().trim().min(1).max(200);
const GroupName = z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/);

/** `POST /v1/tokens` body (admin). Submitter tokens name the agents they may submit for. */
export const CreateTokenBody = z.strictObject({
  name: TokenName,
  role: TokenRole,
  agents: z.array(AgentName).max(1000).optional(),
  /** Approver groups the token belongs to (escalations go to a group); empty: it may decide any request. */
  groups: z.array(GroupName).max(100).optional(),
});
/** `POST /v1/tokens` body. */
export type CreateTokenBody = z.infer<typeof CreateTokenBody>;

/** A token as the API shows it (never its hash). */
export const TokenView = z.object({
  id: z.uuid(),
  name: z.string(),
  role: TokenRole,
  agents: z.array(z.string()),
  groups: z.array(z.string()),
  createdAt: z.string(),
  createdBy: z.string().nullable(),
  revokedAt: z.string().nullable(),
});
/** A token as the API shows it. */
export type TokenView = z.infer<typeof TokenView>;

/** `201` answer of `POST /v1/tokens`: the secret is shown this once. */
export const CreatedToken = TokenView.extend({ token: z.string() });
/** `201` answer of `POST /v1/tokens`. */
export type CreatedToken = z.infer<typeof CreatedToken>;

/** Earned trust of one agent in one action class. */
export const TrustView = z.object({
  agentId: z.string(),
  actionClass: z.string(),
  score: z.number(),
  successes: z.number().int(),
  failures: z.number().int(),
  cap: z.number().nullable(),
  updatedAt: z.string(),
});
/** Earned trust of one agent in one action class. */
export type TrustView = z.infer<typeof TrustView>;

/** `POST /v1/agents/:id/trust/reset` and `.../cap` bodies (admin). */
export const ResetTrustBody = z.strictObject({
  actionClass: z.string().min(1).max(200).optional(),
  reason: z.string().trim().min(1).max(2000),
});
/** `POST /v1/agents/:id/trust/reset` body. */
export type ResetTrustBody = z.infer<typeof ResetTrustBody>;
export const CapTrustBody = z.strictObject({
  actionClass: z.string().min(1).max(200),
  /** null removes the cap. */
  cap: z.number().min(-1).max(1).nullable(),
  reason: z.string().trim().min(1).max(2000),
});
/** `POST /v1/agents/:id/trust/cap` body. */
export type CapTrustBody = z.infer<typeof CapTrustBody>;

/** `POST /v1/steps/:id/revert` body (approver or admin): the reason is required. */
export const RevertStepBody = z.strictObject({ reason: z.string().trim().min(1).max(2000) });
/** `POST /v1/steps/:id/revert` body. */
export type RevertStepBody = z.infer<typeof RevertStepBody>;

/**
 * A decision sent back as a signed webhook (`POST /v1/webhooks/decisions`, Standard Webhooks headers).
 * `decidedBy` names the person on the approver's side; the record says `webhook:<decidedBy>`.
 */
export const WebhookDecisionBody = z.discriminatedUnion('decision', [
  z.strictObject({
    approvalId: z.uuid(),
    decision: z.literal('approve'),
    decidedBy: z.string().trim().min(1).max(200),
    reason: z.string().max(2000).optional(),
  }),
  z.strictObject({
    approvalId: z.uuid(),
    decision: z.literal('reject'),
    decidedBy: z.string().trim().min(1).max(200),
    reason: z.string().trim().min(1).max(2000),
  }),
  z.strictObject({
    approvalId: z.uuid(),
    decision: z.literal('edit'),
    decidedBy: z.string().trim().min(1).max(200),
    arguments: z.record(z.string(), JsonValue),
    reason: z.string().max(2000).optional(),
  }),
  z.strictObject({
    approvalId: z.uuid(),
    decision: z.literal('answer'),
    decidedBy: z.string().trim().min(1).max(200),
    answer: z.string().trim().min(1).max(20_000),
  }),
]);
/** A decision sent back as a signed webhook. */
export type WebhookDecisionBody = z.infer<typeof WebhookDecisionBody>;

/** Types of the webhooks Tandem sends to approvers. */
export const ApproverWebhookType = z.enum([
  'approval.requested',
  'approval.reminder',
  'approval.escalated',
  'approval.expired',
]);
/** Types of the webhooks Tandem sends to approvers. */
export type ApproverWebhookType = z.infer<typeof ApproverWebhookType>;

/** The JSON body of a webhook sent to approvers (Standard Webhooks: `type`, `timestamp`, `data`). */
export const ApproverWebhookPayload = z.object({
  type: ApproverWebhookType,
  timestamp: z.string(),
  data: z.object({
    approvalId: z.uuid(),
    taskId: z.uuid(),
    stepId: z.uuid().nullable(),
    agentId: z.string().nullable(),
    tool: z.string().nullable(),
    arguments: JsonValue.nullable(),
    kind: z.enum(['approval', 'question']),
    question: z.string().nullable(),
    riskLevel: RiskLevel.nullable(),
    riskReasons: z.array(RiskReason),
    trust: z.number().nullable(),
    group: z.string().nullable(),
    deadline: z.string().nullable(),
    escalationLevel: z.number().int().nonnegative(),
  }),
});
/** The JSON body of a webhook sent to approvers. */
export type ApproverWebhookPayload = z.infer<typeof ApproverWebhookPayload>;

/** What a human (or a deadline) said about a step, for learning. */
export const Verdict = z.enum(['approved', 'rejected', 'edited', 'answered', 'expired', 'reverted']);
/** What a human (or a deadline) said about a step. */
export type Verdict = z.infer<typeof Verdict>;

/**
 * A human verdict on a step (approval -> learning): every human decision, expiry and revert, with the
 * step, the patterns that shaped its plan, and the risk and trust at the time.
 */
export const ApprovalVerdictRecorded = defineEvent({
  type: 'approval.verdict-recorded',
  version: 1,
  data: z.object({
    approvalId: z.uuid(),
    taskId: z.uuid(),
    planId: z.uuid(),
    stepId: z.uuid(),
    agentId: z.string().nullable(),
    tool: z.string(),
    actionClass: z.string(),
    verdict: Verdict,
    reason: z.string().nullable(),
    decidedBy: z.string().nullable(),
    arguments: z.record(z.string(), JsonValue),
    editedArguments: z.record(z.string(), JsonValue).nullable(),
    answer: z.string().nullable(),
    riskLevel: RiskLevel.nullable(),
    riskReasons: z.array(RiskReason),
    trustAtDecision: z.number().nullable(),
    /** `auto` when policy or trust approved the step (a later revert is a false approval). */
    mode: z.enum(['auto', 'human']),
    /** Learning patterns the planner used for the step's plan (ids), when known. */
    patternIds: z.array(z.string()),
  }),
});
