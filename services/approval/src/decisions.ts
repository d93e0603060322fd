import {
  ErrorCodes,
  TandemError,
  toolRegistry,
  validateToolArguments,
  type ApprovalDecisionBody,
  type JsonValue,
  type PlannedStep,
  type ToolCheckContext,
} from '@tandem/contracts';
import {
  UTC_NOW,
  afterCommit,
  enqueueOutboxSql,
  sqlTransaction,
  type Db,
  type OutboxMessage,
  type Sql,
} from '@tandem/db';
import { maySeeApproverGroup } from '@tandem/service-kit';
import { writeAudit } from './audit.js';
import { evaluateStep } from './domain/evaluate.js';
import { humanOutcome, requestKindOf } from './domain/human-decision.js';
import type { loadPolicy } from './domain/policy.js';
import { parseQuestion } from './domain/question.js';
import type { ApprovalMetrics } from './metrics.js';
import { findRequest, stepContext, type RequestRow } from './requests.js';
import { applyTrustChange, type AppliedTrustChange } from './trust-store.js';
import { decidedMessage, verdictMessage } from './messages.js';
import { claimWebhookId } from './webhooks/received.js';

/** The loaded policy file with its version and hash. */
export type LoadedPolicy = ReturnType<typeof loadPolicy>;

/** Who decides: an API token (its name and groups) or a signed webhook. */
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

/** What a decision needs besides the database. */
export interface DecisionDeps {
  db: Db;
  prefix: string;
  kick: () => void;
  policy: () => LoadedPolicy;
  checkContext: ToolCheckContext;
  metrics: ApprovalMetrics;
}

/** A request's trust-relevant identity: trust counts only for an agent the submitter could act as. */
export function trustSubject(request: RequestRow): { agentId: string; actionClass: string } | null {
  if (request.agentId === null || request.actionClass === null || request.trustAtDecision === null)
    return null;
  return { agentId: request.agentId, actionClass: request.actionClass };
}

/** Records the trust gauge for applied changes (after commit). */
export function reportTrust(metrics: ApprovalMetrics, changes: readonly (AppliedTrustChange | null)[]): void {
  for (const change of changes) {
    if (change) metrics.trust.set({ agent: change.agentId, class: change.actionClass }, change.after);
  }
}

/**
 * Revalidates an approver's edited arguments like a model's call (schema, size, semantic checks) and
 * against the policy's deny rules; throws `APPROVAL.INVALID_EDIT` (422) with the problems.
 */
function checkEdit(
  deps: DecisionDeps,
  request: RequestRow,
  step: { key: string; tool: string },
  edited: Record<string, JsonValue>,
): Record<string, JsonValue> {
  const checked = validateToolArguments(toolRegistry, step.tool, edited, undefined, deps.checkContext);
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
  const tool = toolRegistry.get(step.tool);
  const plannedStep: PlannedStep = {
    stepId: request.stepId ?? request.id,
    key: step.key,
    index: 0,
    tool: step.tool,
    arguments: checked.call.arguments,
    riskClass: tool?.risk ?? 'destructive',
    sideEffects: tool?.sideEffects ?? true,
    dependsOn: [],
  };
  const loaded = deps.policy();
  const verdict = evaluateStep({
    step: plannedStep,
    plan: [plannedStep],
    task: { kind: 'general', agentId: request.agentId },
    agentVerified: false,
    trust: null,
    policy: loaded.policy,
  });
  if (verdict.outcome === 'rejected') {
    throw new TandemError(
      ErrorCodes.APPROVAL_INVALID_EDIT,
      `the policy denies the edited call: ${verdict.reason}`,
      {
        details: { basis: verdict.basis },
      },
    );
  }
  return checked.call.arguments;
}

/**
 * Applies one human decision exactly once: the request row is locked, must still be pending and inside
 * its deadline, and the decider must be in its approver group. The request, audit row, trust change,
 * `approval.decided` (for the executor) and `approval.verdict-recorded` (for learning) commit together.
 * A decision arriving as a webhook also claims its `webhook-id` in the same transaction.
 */
export async function applyHumanDecision(
  deps: DecisionDeps,
  approvalId: string,
  body: ApprovalDecisionBody,
  decider: Decider,
  options: { webhookId?: string } = {},
): Promise<RequestRow> {
  let decidedAfterSeconds = 0;
  let outcomeLabel = '';
  const trustChanges: (AppliedTrustChange | null)[] = [];
  const row = await sqlTransaction(deps.db, async (sql) => {
    if (options.webhookId !== undefined && !(await claimWebhookId(sql, options.webhookId))) {
      throw new TandemError(
        ErrorCodes.WEBHOOK_SIGNATURE_INVALID,
        'webhook-id was received before (a replay): nothing changed',
      );
    }
    const request = await findRequest(sql, { id: approvalId }, true);
    // A token decides only the requests it sees (its groups; without groups, requests without a group);
    // any other is answered like an unknown one, before anything about its state is told.
    const sees =
      decider.role === 'webhook' ||
      (request !== null &&
        maySeeApproverGroup({ role: decider.role, groups: decider.groups }, request.approverGroup));
    if (!request || !sees)
      throw new TandemError(ErrorCodes.APPROVAL_NOT_FOUND, `approval ${approvalId} not found`);
    if (!request.stepId) throw new TandemError(ErrorCodes.INTERNAL, `approval ${request.id} has no step`);
    const step = await stepContext(sql, request.stepId);
    if (!step) throw new TandemError(ErrorCodes.INTERNAL, `the step of approval ${request.id} is missing`);
    const kind = requestKindOf(request.kind);
    const choices =
      kind === 'question' && body.decision === 'answer'
        ? (parseQuestion(step.arguments)?.choices ?? null)
        : null;
    // Whether the decision fits the request (an edit or approval of a question does not), before state.
    const checked = humanOutcome({ kind, choices }, body);
    if (!checked.ok) {
      throw new TandemError(checked.problem.code, checked.problem.message, {
        details: { kind, ...checked.problem.details },
      });
    }
    let edited: Record<string, JsonValue> | null = null;
    if (request.status !== 'pending') {
      throw new TandemError(
        ErrorCodes.APPROVAL_ALREADY_DECIDED,
        `approval ${request.id} is already ${request.status}`,
        {
          details: { status: request.status, decidedBy: request.decidedBy },
        },
      );
    }
    const now = await databaseNow(sql);
    if (request.deadline !== null && request.deadline.getTime() <= now.getTime()) {
      throw new TandemError(ErrorCodes.APPROVAL_EXPIRED, `approval ${request.id} passed its deadline`, {
        details: { deadline: request.deadline.toISOString() },
      });
    }
    if (body.decision === 'edit') edited = checkEdit(deps, request, step, body.arguments);
    const { status, reason, answer } = checked.outcome;
    const updated = await sql.query(
      `UPDATE "ApprovalRequest"
          SET "status" = $2, "mode" = 'human', "decidedBy" = $3, "decidedAt" = ${UTC_NOW}, "reason" = $4,
              "answer" = $5, "editedArguments" = $6::jsonb, "updatedAt" = ${UTC_NOW}
        WHERE "id" = $1::uuid AND "status" = 'pending'`,
      [
        request.id,
        status,
        decider.decidedBy,
        reason,
        answer,
        edited === null ? null : JSON.stringify(edited),
      ],
    );
    if (updated.rowCount !== 1) {
      throw new TandemError(
        ErrorCodes.APPROVAL_ALREADY_DECIDED,
        `approval ${request.id} is no longer pending`,
      );
    }
    const verdict = edited !== null ? 'edited' : status;
    await writeAudit(sql, [
      {
        action: `approval.${verdict}`,
        subject: { type: 'step', id: request.stepId },
        actor: decider.decidedBy,
        reason,
        data: {
          approvalId: request.id,
          taskId: request.taskId,
          kind,
          via: options.webhookId === undefined ? 'api' : 'webhook',
          // A person named in the body is kept for the record; who decided is the token (or webhook).
          ...(body.decidedBy === undefined ? {} : { statedBy: body.decidedBy }),
          ...(options.webhookId === undefined ? {} : { webhookId: options.webhookId }),
          ...(answer === null ? {} : { answer }),
          ...(edited === null ? {} : { editedArguments: edited }),
          riskLevel: request.riskLevel,
          trustAtDecision: request.trustAtDecision,
          policyVersion: deps.policy().version,
        },
      },
    ]);
    const subject = trustSubject(request);
    if (subject && status !== 'answered') {
      trustChanges.push(
        await applyTrustChange(sql, {
          ...subject,
          kind: status === 'rejected' ? 'rejection' : edited !== null ? 'edit' : 'approval',
          sourceEvent: `approval:${request.id}`,
          reason:
            status === 'rejected'
              ? `rejected by ${decider.decidedBy}: ${reason ?? ''}`
              : edited !== null
                ? `arguments edited by ${decider.decidedBy}`
                : `approved by ${decider.decidedBy} without edits`,
          actor: decider.decidedBy,
        }),
      );
    }
    const messages: OutboxMessage[] = [
      decidedMessage(
        deps.prefix,
        { ...request, stepId: request.stepId },
        {
          decision: status,
          mode: 'human',
          decidedBy: decider.decidedBy,
          reason,
          ...(answer === null ? {} : { answer }),
          ...(edited === null ? {} : { arguments: edited }),
        },
      ),
      verdictMessage(deps.prefix, request, step, {
        verdict,
        reason,
        decidedBy: decider.decidedBy,
        editedArguments: edited,
        answer,
      }),
    ];
    await enqueueOutboxSql(sql, messages);
    decidedAfterSeconds = Math.max(0, (now.getTime() - request.createdAt.getTime()) / 1000);
    outcomeLabel = verdict;
    afterCommit(sql, deps.kick);
    return (await findRequest(sql, { id: request.id })) ?? request;
  });
  deps.metrics.decisions.inc({ mode: 'human', outcome: outcomeLabel });
  deps.metrics.timeToDecision.observe({ outcome: outcomeLabel }, decidedAfterSeconds);
  reportTrust(deps.metrics, trustChanges);
  return row;
}

/** The database's clock (deadlines are compared with it, not with this process's clock). */
export async function databaseNow(sql: Sql): Promise<Date> {
  const result = await sql.query(`SELECT now() AS "now"`, []);
  const value = result.rows[0]?.['now'];
  return value instanceof Date ? value : new Date();
}
