import {
  ErrorCodes,
  TandemError,
  argumentsHash,
  type ApprovalDecisionBody,
  type JsonValue,
  type ToolCheckContext,
} from '@tandem/contracts';
import {
  afterCommit,
  claimWebhookId,
  databaseNow,
  decideApprovalRequest,
  enqueueOutbox,
  reRequestApproval,
  transaction,
  type Db,
  type OutboxMessage,
  type Tx,
} from '@tandem/db';
import { writeAudit } from './audit.js';
import type { StepDecision } from './domain/evaluate.js';
import {
  checkEdit,
  checkHumanDecision,
  decidableRequest,
  decisionTrustChange,
  type Decider,
} from './domain/human-decision.js';
import type { LoadedPolicy } from './domain/policy.js';
import { trustSubject, type RequestRow } from './domain/request.js';
import { judgeChanged } from './domain/step-judgement.js';
import type { ApprovalMetrics } from './metrics.js';
import { queueApproverWebhooks } from './notify.js';
import { findRequest, lockRequest, readTaskContext, stepContext, storedPlan } from './requests.js';
import { applyTrustChange, type AppliedTrustChange } from './trust-store.js';
import { decidedMessage, requestedMessage, verdictMessage } from './messages.js';
import type { WebhookEndpoint } from './webhooks/delivery.js';

export type { LoadedPolicy } from './domain/policy.js';
export type { Decider } from './domain/human-decision.js';
export { trustSubject } from './domain/request.js';

/** What a decision needs besides the database. */
export interface DecisionDeps {
  db: Db;
  prefix: string;
  /** The approver endpoints (a changed step that becomes a new request notifies its group). */
  endpoints: () => readonly WebhookEndpoint[];
  /** Wakes the webhook delivery loop (after rows were queued). */
  kickDeliveries: () => void;
  policy: () => LoadedPolicy;
  checkContext: ToolCheckContext;
  metrics: ApprovalMetrics;
}

/** Records the trust gauge for applied changes (after commit). */
export function reportTrust(metrics: ApprovalMetrics, changes: readonly (AppliedTrustChange | null)[]): void {
  for (const change of changes) {
    if (change) metrics.trust.set({ agent: change.agentId, class: change.actionClass }, change.after);
  }
}

/**
 * Turns a request whose step changed into a new pending request for the group the change needs: its
 * risk, basis, deadline and group are the second judgement's, and it is bound to the changed
 * arguments. Nothing is decided for the executor; the group is notified like for any new request.
 */
async function reRequest(
  tx: Tx,
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
  const updated = await reRequestApproval(tx, {
    id: request.id,
    riskLevel: decision.risk.level,
    riskReasons: decision.risk.reasons,
    basis: decision.basis,
    reason,
    approverGroup: decision.group,
    onExpiry: decision.onExpiry,
    deadlineMs: decision.deadlineMs,
    editedArguments: change.arguments,
    argumentsHash: argumentsHash(change.arguments),
  });
  if (!updated) {
    throw new TandemError(ErrorCodes.APPROVAL_ALREADY_DECIDED, `approval ${request.id} is no longer pending`);
  }
  await writeAudit(tx, [
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
  const row = (await findRequest(tx, { id: request.id })) ?? request;
  const queued = await queueApproverWebhooks(
    tx,
    deps.endpoints(),
    'approval.requested',
    row,
    { arguments: change.arguments },
    `requested:${argumentsHash(change.arguments).slice(0, 16)}`,
  );
  await enqueueOutbox(tx, [requestedMessage(deps.prefix, row)]);
  if (queued > 0) afterCommit(tx, deps.kickDeliveries);
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
  const row = await transaction(deps.db, async (tx) => {
    if (options.webhookId !== undefined && !(await claimWebhookId(tx, options.webhookId))) {
      throw new TandemError(
        ErrorCodes.WEBHOOK_SIGNATURE_INVALID,
        'webhook-id was received before (a replay): nothing changed',
      );
    }
    // A token decides only the requests it sees (its groups; without groups, requests without a group);
    // any other is answered like an unknown one, before anything about its state is told.
    const request = decidableRequest(approvalId, await lockRequest(tx, { id: approvalId }), decider);
    const step = await stepContext(tx, request.stepId);
    if (!step) throw new TandemError(ErrorCodes.INTERNAL, `the step of approval ${request.id} is missing`);
    const now = await databaseNow(tx);
    const { status, reason, answer } = checkHumanDecision(request, step.arguments, body, now);
    let edited: Record<string, JsonValue> | null = null;
    if (body.decision === 'edit') {
      const plan = await storedPlan(tx, request.planId);
      const task = await readTaskContext(tx, request.taskId);
      const edit = checkEdit(step.tool, body.arguments, deps.checkContext, (changed) =>
        judgeChanged({ request, plan, task, policy: deps.policy().policy, changed }),
      );
      if (edit.rejudged.kind === 'new-request') {
        outcomeLabel = 're-requested';
        const subject = trustSubject(request);
        if (subject) {
          trustChanges.push(
            await applyTrustChange(tx, {
              ...subject,
              kind: 'edit',
              sourceEvent: `approval:${request.id}`,
              reason: `arguments edited by ${decider.decidedBy}`,
              actor: decider.decidedBy,
            }),
          );
        }
        await enqueueOutbox(tx, [
          verdictMessage(deps.prefix, request, step, {
            verdict: 'edited',
            reason: body.reason ?? null,
            decidedBy: decider.decidedBy,
            editedArguments: edit.arguments,
          }),
        ]);
        return reRequest(tx, deps, request, {
          arguments: edit.arguments,
          decision: edit.rejudged.decision,
          why: edit.rejudged.why,
          by: decider.decidedBy,
          label: `edited by ${decider.decidedBy}${body.reason ? ` (${body.reason})` : ''}`,
        });
      }
      edited = edit.arguments;
    }
    const updated = await decideApprovalRequest(tx, {
      id: request.id,
      status,
      decidedBy: decider.decidedBy,
      reason,
      answer,
      // The decision is bound to what will run: the edited arguments, when there are any.
      edited: edited === null ? null : { arguments: edited, argumentsHash: argumentsHash(edited) },
    });
    if (!updated) {
      throw new TandemError(
        ErrorCodes.APPROVAL_ALREADY_DECIDED,
        `approval ${request.id} is no longer pending`,
      );
    }
    const verdict = edited !== null ? 'edited' : status;
    // What the step runs with: this edit, or the edit an earlier decision turned into this request.
    const runs = status === 'approved' ? (edited ?? request.editedArguments) : null;
    await writeAudit(tx, [
      {
        action: `approval.${verdict}`,
        subject: { type: 'step', id: request.stepId },
        actor: decider.decidedBy,
        reason,
        data: {
          approvalId: request.id,
          taskId: request.taskId,
          kind: request.kind,
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
    const trust = decisionTrustChange({ status, reason }, edited !== null, decider.decidedBy);
    if (subject && trust) {
      trustChanges.push(
        await applyTrustChange(tx, {
          ...subject,
          ...trust,
          sourceEvent: `approval:${request.id}`,
          actor: decider.decidedBy,
        }),
      );
    }
    const messages: OutboxMessage[] = [
      decidedMessage(deps.prefix, request, {
        decision: status,
        mode: 'human',
        decidedBy: decider.decidedBy,
        reason,
        ...(answer === null ? {} : { answer }),
        ...(runs === null ? {} : { arguments: runs }),
      }),
      verdictMessage(deps.prefix, request, step, {
        verdict,
        reason,
        decidedBy: decider.decidedBy,
        editedArguments: edited,
        answer,
      }),
    ];
    await enqueueOutbox(tx, messages);
    decidedAfterSeconds = Math.max(0, (now.getTime() - request.createdAt.getTime()) / 1000);
    outcomeLabel = verdict;
    return (await findRequest(tx, { id: request.id })) ?? request;
  });
  deps.metrics.decisions.inc({ mode: 'human', outcome: outcomeLabel });
  if (row.status !== 'pending') {
    deps.metrics.timeToDecision.observe({ outcome: outcomeLabel }, decidedAfterSeconds);
  }
  reportTrust(deps.metrics, trustChanges);
  return row;
}
