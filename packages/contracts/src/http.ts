import { z } from 'zod';
import { TaskRequestedData } from './cloud-events.js';
import { ErrorShape } from './errors.js';
import { JsonValue } from './json.js';
import { RiskLevel, RiskReason } from './approval.js';

/** `POST /v1/tasks` body (public contract): the same fields as a CloudEvent's data; unknown fields rejected. */
export const CreateTaskBody = TaskRequestedData;
/** `POST /v1/tasks` body. */
export type CreateTaskBody = z.infer<typeof CreateTaskBody>;

/** `202` answer of `POST /v1/tasks`. */
export const CreateTaskResponse = z.object({ taskId: z.uuid() });
/** `202` answer of `POST /v1/tasks`. */
export type CreateTaskResponse = z.infer<typeof CreateTaskResponse>;

/** A step as `GET /v1/tasks/:id` shows it. */
export const TaskStepView = z.object({
  id: z.uuid(),
  key: z.string(),
  index: z.number().int(),
  tool: z.string(),
  arguments: z.record(z.string(), JsonValue),
  riskClass: z.string(),
  dependsOn: z.array(z.string()),
  /** Why the planning model chose the step (null for human-edited plans). */
  rationale: z.string().nullable().optional(),
  status: z.string(),
  result: JsonValue.nullable(),
  error: ErrorShape.nullable(),
});
/** A step as `GET /v1/tasks/:id` shows it. */
export type TaskStepView = z.infer<typeof TaskStepView>;

/** `GET /v1/tasks/:id` answer. */
export const TaskView = z.object({
  taskId: z.uuid(),
  status: z.enum([
    'accepted',
    'planning',
    'planned',
    'running',
    'replanning',
    'completed',
    'failed',
    'cancelled',
  ]),
  goal: z.string(),
  kind: z.string(),
  agentId: z.string().nullable(),
  request: z.object({ source: z.string(), id: z.string() }),
  createdAt: z.string(),
  deadline: z.string().nullable().optional(),
  plan: z
    .object({
      id: z.uuid(),
      version: z.number().int(),
      origin: z.string().optional(),
      /** Who made a human edit: the authenticated token, `token:<ApiToken.id>`. */
      editedBy: z.string().nullable().optional(),
      /** The name the edit's body gave (`editedBy`): a label only, never who edited. */
      editedByLabel: z.string().nullable().optional(),
      qualityScore: z.number().nullable().optional(),
      steps: z.array(TaskStepView),
    })
    .nullable(),
  result: JsonValue.nullable(),
  error: ErrorShape.nullable(),
});
/** `GET /v1/tasks/:id` answer. */
export type TaskView = z.infer<typeof TaskView>;

/** One step of `PUT /v1/tasks/:id/plan` (fixed contract). */
export const EditPlanStep = z.strictObject({
  id: z.string().min(1).max(64),
  tool: z.string().min(1).max(100),
  arguments: z.record(z.string(), JsonValue),
  dependsOn: z.array(z.string().min(1).max(64)).max(1000).optional(),
});
/** One step of `PUT /v1/tasks/:id/plan`. */
export type EditPlanStep = z.infer<typeof EditPlanStep>;

/**
 * `PUT /v1/tasks/:id/plan` body (fixed contract): the whole new plan. Validated exactly like a model's;
 * the step cap is a validation rule (422), the array bound here only keeps a request's work finite.
 */
export const EditPlanBody = z.strictObject({
  steps: z.array(EditPlanStep).min(1).max(10_000),
  /** A person's name for the record, kept as the plan's `editedByLabel`; the editor is the token. */
  editedBy: z.string().min(1).max(200).optional(),
});
/** `PUT /v1/tasks/:id/plan` body. */
export type EditPlanBody = z.infer<typeof EditPlanBody>;

/** `POST /v1/tasks/:id/cancel` body (may be empty). */
export const CancelTaskBody = z.strictObject({
  reason: z.string().max(2000).optional(),
  /** A person's name for the record, sent as the event's `requestedByLabel`; the canceller is the token. */
  requestedBy: z.string().max(200).optional(),
});
/** `POST /v1/tasks/:id/cancel` body. */
export type CancelTaskBody = z.infer<typeof CancelTaskBody>;

/** `202` answer of `POST /v1/tasks/:id/cancel`. */
export const CancelTaskResponse = z.object({ taskId: z.uuid(), status: z.literal('cancel-requested') });
/** `202` answer of `POST /v1/tasks/:id/cancel`. */
export type CancelTaskResponse = z.infer<typeof CancelTaskResponse>;

/** Query of `GET /v1/approvals`. */
export const ListApprovalsQuery = z.strictObject({
  status: z
    .enum(['pending', 'approved', 'rejected', 'expired', 'escalated', 'answered', 'superseded', 'cancelled'])
    .optional(),
  taskId: z.uuid().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
/** Query of `GET /v1/approvals`. */
export type ListApprovalsQuery = z.infer<typeof ListApprovalsQuery>;

/** An approval request as the approval API shows it. */
export const ApprovalView = z.object({
  id: z.uuid(),
  taskId: z.uuid(),
  planId: z.uuid(),
  stepId: z.uuid().nullable(),
  tool: z.string().nullable(),
  arguments: JsonValue.nullable(),
  riskClass: z.string().nullable(),
  agentId: z.string().nullable(),
  kind: z.enum(['approval', 'question']).optional(),
  question: z.string().nullable().optional(),
  answer: z.string().nullable().optional(),
  mode: z.enum(['auto', 'human']),
  status: z.string(),
  decidedBy: z.string().nullable(),
  decidedAt: z.string().nullable(),
  reason: z.string().nullable(),
  createdAt: z.string(),
  riskLevel: RiskLevel.nullable().optional(),
  riskReasons: z.array(RiskReason).optional(),
  /** The agent's trust in the step's action class when the request was made (null: no agent). */
  trust: z.number().nullable().optional(),
  actionClass: z.string().nullable().optional(),
  /** Which policy rule, floor or trust comparison produced the first decision. */
  basis: z.string().nullable().optional(),
  deadline: z.string().nullable().optional(),
  group: z.string().nullable().optional(),
  escalationLevel: z.number().int().optional(),
  editedArguments: JsonValue.nullable().optional(),
  /** A step approved with its values: the arguments with earlier results filled in (what would run). */
  resolvedArguments: JsonValue.nullable().optional(),
  /** The steps of the plan around it, in order. */
  plan: z
    .array(
      z.object({
        stepId: z.uuid(),
        key: z.string(),
        tool: z.string(),
        arguments: JsonValue,
        riskClass: z.string(),
        riskLevel: z.string().nullable(),
      }),
    )
    .optional(),
});
/** An approval request as the approval API shows it. */
export type ApprovalView = z.infer<typeof ApprovalView>;

/** `POST /v1/approvals/:id/decision` body; a rejection needs a reason. */
export const ApprovalDecisionBody = z.discriminatedUnion('decision', [
  z.strictObject({
    decision: z.literal('approve'),
    reason: z.string().max(2000).optional(),
    decidedBy: z.string().max(200).optional(),
  }),
  z.strictObject({
    decision: z.literal('reject'),
    reason: z.string().trim().min(1).max(2000),
    decidedBy: z.string().max(200).optional(),
  }),
  z.strictObject({
    decision: z.literal('answer'),
    answer: z.string().trim().min(1).max(20_000),
    decidedBy: z.string().max(200).optional(),
  }),
  z.strictObject({
    decision: z.literal('edit'),
    /** The whole new arguments of the step; validated again like a model's call. */
    arguments: z.record(z.string(), JsonValue),
    reason: z.string().max(2000).optional(),
    decidedBy: z.string().max(200).optional(),
  }),
]);
/** `POST /v1/approvals/:id/decision` body. */
export type ApprovalDecisionBody = z.infer<typeof ApprovalDecisionBody>;

/** The body of every HTTP error answer. */
export const HttpErrorBody = z.object({
  error: ErrorShape.extend({ issues: z.array(z.unknown()).optional(), stepId: z.string().optional() }),
});
/** The body of every HTTP error answer. */
export type HttpErrorBody = z.infer<typeof HttpErrorBody>;
