import {
  ErrorCodes,
  TandemError,
  argumentsHash,
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
  toJsonText,
} from '@tandem/db';
import { maySeeApproverGroup } from '@tandem/service-kit';
import { writeAudit } from './audit.js';
import { evaluateStep, type StepDecision } from './domain/evaluate.js';
import { rejudge, type Rejudged } from './domain/rejudge.js';
import { humanOutcome, requestKindOf } from './domain/human-decision.js';
import type { loadPolicy } from './domain/policy.js';
import { parseQuestion } from './domain/question.js';
import type { ApprovalMetrics } from './metrics.js';
import { queueApproverWebhooks } from './notify.js';
import { argumentsOf, findRequest, stepContext, storedPlan, type RequestRow } from './requests.js';
import { readTaskContext } from './store.js';
import { applyTrustChange, type AppliedTrustChange } from './trust-store.js';
import { decidedMessage, requestedMessage, verdictMessage } from './messages.js';
import type { WebhookEndpoint } from './webhooks/delivery.js';
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
  /** The approver endpoints (a changed step that becomes a new request notifies its group). */
  endpoints: () => readonly WebhookEndpoint[];
  kickDeliveries: () => void;
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
 * Revalidates an approver's edited arguments like a model's call (schema, size, semantic checks), then
 * judges the edited step again like a model's step, in its plan and task: a deny refuses the edit
 * (`APPROVAL.INVALID_EDIT`, 422); an edit that now needs another group, or reaches the floor where the
 * step as planned did not, becomes a new request (see domain/rejudge.ts).
 */
async function checkEdit(
  sql: Sql,
  deps: DecisionDeps,
  request: RequestRow,
  step: { key: string; tool: string },
  edited: Record<string, JsonValue>,
): Promise<{ arguments: Record<string, JsonValue>; rejudged: Rejudged }> {
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
  const rejudged = await judgeChanged(sql, deps, request, checked.call.arguments);
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
 * Judges a request's step with changed arguments against the step as planned, both now and in the same
 * context (the stored plan, the task), as an agent without history: trust never makes a changed step
 * pass where the step as planned would not have.
 */
export async function judgeChanged(
  sql: Sql,
  deps: Pick<DecisionDeps, 'policy'>,
  request: RequestRow,
  changed: Record<string, JsonValue>,
): Promise<Rejudged> {
  const plan = await storedPlan(sql, request.planId);
  const task = await readTaskContext(sql, request.taskId);
  const planned = plan.steps.find((candidate) => candidate.stepId === request.stepId);
  const tool = toolRegistry.get(request.tool ?? '');
  const original: PlannedStep = planned ?? {
    stepId: request.stepId ?? request.id,
    key: 'edited',
    index: 0,
    tool: request.tool ?? 'unknown',
    arguments: {},
    riskClass: tool?.risk ?? 'destructive',
    sideEffects: tool?.sideEffects ?? true,
    dependsOn: [],
  };
  const changedStep: PlannedStep = { ...original, arguments: changed };
  const changedPlan = plan.steps.map((candidate) =>
    candidate.stepId === original.stepId ? changedStep : candidate,
  );
  const policy = deps.policy().policy;
  const context = {
    task: { kind: plan.kind, goal: task.goal, input: task.input, agentId: request.agentId },
    agentVerified: false,
    trust: null,
    policy,
  };
  const first = evaluateStep({ ...context, step: original, plan: plan.steps });
  return rejudge(first, evaluateStep({ ...context, step: changedStep, plan: changedPlan }));
}

/**
 * Turns a request whose step changed into a new pending request for the group the change needs: its
 * risk, basis, deadline and group are the second judgement's, and it is bound to the changed
 * arguments. Nothing is decided for the executor; the group is notified like for any new request.
 */
async function reRequest(
  sql: Sql,
  deps: DecisionDeps,
  request: RequestRow,
  change: {
    arguments: Record<string, JsonValue>;
    decision: StepDecision;
    why: string;
    by: string;
    label: string;
  },
): Promise<RequestRow> {
  const decision = change.decision;
  const reason = `${change.label}; judged again: ${change.why}`;
  const updated = await sql.query(
    `UPDATE "ApprovalRequest"
        SET "status" = 'pending', "mode" = 'human', "riskLevel" = $2, "riskReasons" = $3::jsonb,
            "basis" = $4, "reason" = $5, "approverGroup" = $6, "escalationLevel" = 0, "onExpiry" = $7,
            "deadline" = (now() AT TIME ZONE 'UTC') + ($8::text || ' milliseconds')::interval,
            "remindedAt" = NULL, "editedArguments" = $9::jsonb, "argumentsHash" = $10,
            "decidedBy" = NULL, "decidedAt" = NULL, "updatedAt" = ${UTC_NOW}
      WHERE "id" = $1::uuid AND "status" IN ('pending', 'awaiting-values')`,
    [
      request.id,
      decision.risk.level,
      toJsonText(decision.risk.reasons),
      decision.basis,
      reason,
      decision.group,
      decision.onExpiry,
      String(decision.deadlineMs),
      toJsonText(change.arguments),
      argumentsHash(change.arguments),
    ],
  );
  if (updated.rowCount !== 1) {
    throw new TandemError(ErrorCodes.APPROVAL_ALREADY_DECIDED, `approval ${request.id} is no longer pending`);
  }
  await writeAudit(sql, [
    {
      action: 'approval.re-requested',
      subject: { type: 'step', id: request.stepId ?? request.id },
      actor: change.by,
      reason,
      data: {
        approvalId: request.id,
        taskId: request.taskId,
        arguments: change.arguments,
        fromGroup: request.approverGroup,
        group: decision.group,
        riskLevel: decision.risk.level,
        riskReasons: decision.risk.reasons,
        basis: decision.basis,
        policyVersion: deps.policy().version,
      },
    },
  ]);
  const row = (await findRequest(sql, { id: request.id })) ?? request;
  const queued = await queueApproverWebhooks(
    sql,
    deps.endpoints(),
    'approval.requested',
    row,
    { arguments: change.arguments },
    `requested:${argumentsHash(change.arguments).slice(0, 16)}`,
  );
  await enqueueOutboxSql(sql, [requestedMessage(deps.prefix, row)]);
  afterCommit(sql, deps.kick);
  if (queued > 0) afterCommit(sql, deps.kickDeliveries);
  return row;
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
    if (body.decision === 'edit') {
      const edit = await checkEdit(sql, deps, request, step, body.arguments);
      if (edit.rejudged.kind === 'new-request') {
        outcomeLabel = 're-requested';
        const subject = trustSubject(request);
        if (subject) {
          trustChanges.push(
            await applyTrustChange(sql, {
              ...subject,
              kind: 'edit',
              sourceEvent: `approval:${request.id}`,
              reason: `arguments edited by ${decider.decidedBy}`,
              actor: decider.decidedBy,
            }),
          );
        }
        await enqueueOutboxSql(sql, [
          verdictMessage(deps.prefix, request, step, {
            verdict: 'edited',
            reason: body.reason ?? null,
            decidedBy: decider.decidedBy,
            editedArguments: edit.arguments,
          }),
        ]);
        return reRequest(sql, deps, request, {
          arguments: edit.arguments,
          decision: edit.rejudged.decision,
          why: edit.rejudged.why,
          by: decider.decidedBy,
          label: `edited by ${decider.decidedBy}${body.reason ? ` (${body.reason})` : ''}`,
        });
      }
      edited = edit.arguments;
    }
    const { status, reason, answer } = checked.outcome;
    const updated = await sql.query(
      `UPDATE "ApprovalRequest"
          SET "status" = $2, "mode" = 'human', "decidedBy" = $3, "decidedAt" = ${UTC_NOW}, "reason" = $4,
              "answer" = $5, "editedArguments" = coalesce($6::jsonb, "editedArguments"),
              "argumentsHash" = coalesce($7, "argumentsHash"), "updatedAt" = ${UTC_NOW}
        WHERE "id" = $1::uuid AND "status" = 'pending'`,
      [
        request.id,
        status,
        decider.decidedBy,
        reason,
        answer,
        edited === null ? null : toJsonText(edited),
        // The decision is bound to what will run: the edited arguments, when there are any.
        edited === null ? null : argumentsHash(edited),
      ],
    );
    if (updated.rowCount !== 1) {
      throw new TandemError(
        ErrorCodes.APPROVAL_ALREADY_DECIDED,
        `approval ${request.id} is no longer pending`,
      );
    }
    const verdict = edited !== null ? 'edited' : status;
    // What the step runs with: this edit, or the edit an earlier decision turned into this request.
    const runs = status === 'approved' ? (edited ?? argumentsOf(request.editedArguments)) : null;
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
          ...(runs === null ? {} : { arguments: runs }),
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
  if (row.status !== 'pending') {
    deps.metrics.timeToDecision.observe({ outcome: outcomeLabel }, decidedAfterSeconds);
  }
  reportTrust(deps.metrics, trustChanges);
  return row;
}

/** The database's clock (deadlines are compared with it, not with this process's clock). */
export async function databaseNow(sql: Sql): Promise<Date> {
  const result = await sql.query(`SELECT now() AS "now"`, []);
  const value = result.rows[0]?.['now'];
  return value instanceof Date ? value : new Date();
}
