import { ErrorCodes } from '@tandem/contracts';
import {
  claimApprovalRequestsToRemind,
  claimDueApprovalRequests,
  databaseNow,
  enqueueOutbox,
  escalateApprovalRequest,
  expireApprovalRequest,
  markApprovalReminded,
  transaction,
  type Db,
  type OutboxMessage,
  type Tx,
} from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import { writeAudit } from './audit.js';
import { deadlineAction, escalationReason, reminderLeadMs, waitedSeconds } from './domain/deadlines.js';
import type { LoadedPolicy } from './domain/policy.js';
import type { RequestRow } from './domain/request.js';
import type { ApprovalMetrics } from './metrics.js';
import { queueApproverWebhooks } from './notify.js';
import { requestRowOf, stepContext, type StepContext } from './requests.js';
import { decidedMessage, requestedMessage, verdictMessage } from './messages.js';
import type { WebhookEndpoint } from './webhooks/delivery.js';

/** What the deadline sweep needs. */
export interface DeadlineDeps {
  db: Db;
  prefix: string;
  /** Wakes the webhook delivery loop. */
  kickDeliveries: () => void;
  policy: () => LoadedPolicy;
  endpoints: () => readonly WebhookEndpoint[];
  metrics: ApprovalMetrics;
  log: Log;
}

/** What one sweep did. */
export interface SweepResult {
  expired: number;
  escalated: number;
  reminded: number;
}

const BATCH = 50;

/**
 * Handles pending requests past their deadline — escalated once to the policy's escalation group with a
 * new deadline when their policy says so, otherwise rejected with `APPROVAL.EXPIRED` — and sends
 * reminders before deadlines. Rows are claimed with skip-locked row locks (claimDueApprovalRequests in
 * @tandem/db), so replicas share the work and a human decision racing an expiry either commits first
 * (the sweep then skips the row) or waits for it and gets `409`.
 */
export async function sweepDeadlines(deps: DeadlineDeps): Promise<SweepResult> {
  const result: SweepResult = { expired: 0, escalated: 0, reminded: 0 };
  const waits: Array<{ outcome: string; seconds: number }> = [];
  let queued = 0;
  await transaction(deps.db, async (tx) => {
    const due = (await claimDueApprovalRequests(tx, BATCH)).map(requestRowOf);
    const messages: OutboxMessage[] = [];
    // The database's clock for the wait metric, read only when something is due.
    const now = due.length > 0 ? await databaseNow(tx) : new Date();
    const { policy } = deps.policy();
    for (const request of due) {
      const step = request.stepId ? await stepContext(tx, request.stepId) : null;
      const action = deadlineAction(request, policy);
      if (action.kind === 'escalate') {
        const escalated = await escalate(tx, request, action.group, action.deadlineMs);
        queued += await queueApproverWebhooks(
          tx,
          deps.endpoints(),
          'approval.escalated',
          escalated,
          step,
          'escalated:1',
        );
        messages.push(requestedMessage(deps.prefix, escalated));
        result.escalated += 1;
        continue;
      }
      messages.push(...(await expire(deps, tx, request, step, action.reason)));
      queued += await queueApproverWebhooks(
        tx,
        deps.endpoints(),
        'approval.expired',
        request,
        step,
        'expired',
      );
      waits.push({ outcome: 'expired', seconds: waitedSeconds(request.createdAt, now) });
      result.expired += 1;
    }
    const leadMs = reminderLeadMs(policy);
    if (leadMs > 0) {
      const remind = (await claimApprovalRequestsToRemind(tx, { leadMs, limit: BATCH })).map(requestRowOf);
      for (const request of remind) {
        await markApprovalReminded(tx, request.id);
        const step = request.stepId ? await stepContext(tx, request.stepId) : null;
        queued += await queueApproverWebhooks(
          tx,
          deps.endpoints(),
          'approval.reminder',
          request,
          step,
          `reminder:${request.escalationLevel}`,
        );
        result.reminded += 1;
      }
    }
    if (messages.length > 0) await enqueueOutbox(tx, messages);
  });
  if (queued > 0) deps.kickDeliveries();
  for (const wait of waits) deps.metrics.timeToDecision.observe({ outcome: wait.outcome }, wait.seconds);
  if (result.expired > 0) {
    deps.metrics.expiries.inc(result.expired);
    deps.metrics.decisions.inc({ mode: 'auto', outcome: 'expired' }, result.expired);
  }
  if (result.escalated > 0) deps.metrics.escalations.inc(result.escalated);
  if (result.reminded > 0) deps.metrics.reminders.inc(result.reminded);
  if (result.expired + result.escalated + result.reminded > 0)
    deps.log.info(result, 'approval deadlines handled');
  return result;
}

async function escalate(tx: Tx, request: RequestRow, group: string, deadlineMs: number): Promise<RequestRow> {
  const updated = await escalateApprovalRequest(tx, { id: request.id, group, deadlineMs });
  const row = updated === null ? request : requestRowOf(updated);
  await writeAudit(tx, [
    {
      action: 'approval.escalated',
      subject: { type: 'step', id: request.stepId ?? request.id },
      actor: 'policy:deadline',
      reason: escalationReason(request.approverGroup, group),
      data: {
        approvalId: request.id,
        taskId: request.taskId,
        from: request.approverGroup,
        to: group,
        previousDeadline: request.deadline?.toISOString() ?? null,
        deadline: row.deadline?.toISOString() ?? null,
      },
    },
  ]);
  return row;
}

async function expire(
  deps: DeadlineDeps,
  tx: Tx,
  request: RequestRow,
  step: StepContext | null,
  reason: string,
): Promise<OutboxMessage[]> {
  await expireApprovalRequest(tx, { id: request.id, reason });
  await writeAudit(tx, [
    {
      action: 'approval.expired',
      subject: { type: 'step', id: request.stepId ?? request.id },
      actor: 'policy:expiry',
      reason,
      data: {
        approvalId: request.id,
        taskId: request.taskId,
        group: request.approverGroup,
        escalationLevel: request.escalationLevel,
        policyVersion: deps.policy().version,
      },
    },
  ]);
  if (!request.stepId) return [];
  const messages: OutboxMessage[] = [
    decidedMessage(
      deps.prefix,
      { ...request, stepId: request.stepId },
      {
        decision: 'rejected',
        mode: 'auto',
        decidedBy: 'policy:expiry',
        reason,
        code: ErrorCodes.APPROVAL_EXPIRED,
      },
    ),
  ];
  if (step) {
    messages.push(
      verdictMessage(deps.prefix, request, step, { verdict: 'expired', reason, decidedBy: 'policy:expiry' }),
    );
  }
  return messages;
}

/** Runs {@link sweepDeadlines} every `intervalMs` until stopped; errors are logged, the loop goes on. */
export function startDeadlineSweep(deps: DeadlineDeps, intervalMs: number): { stop(): Promise<void> } {
  let stopped = false;
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    if (stopped) return;
    running = running.then(() =>
      sweepDeadlines(deps).catch((error: unknown) => deps.log.warn({ err: error }, 'deadline sweep failed')),
    );
  }, intervalMs);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
