import { ErrorCodes } from '@tandem/contracts';
import { UTC_NOW, enqueueOutboxSql, sqlTransaction, type Db, type OutboxMessage, type Sql } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import { writeAudit } from './audit.js';
import { databaseNow, type LoadedPolicy } from './decisions.js';
import { parseDuration } from './domain/policy.js';
import type { ApprovalMetrics } from './metrics.js';
import { queueApproverWebhooks } from './notify.js';
import { REQUEST_SELECT, requestRows, stepContext, type RequestRow } from './requests.js';
import { decidedMessage, requestedMessage, verdictMessage } from './messages.js';
import type { WebhookEndpoint } from './webhooks/delivery.js';

/** What the deadline sweep needs. */
export interface DeadlineDeps {
  db: Db;
  prefix: string;
  /** Hands committed outbox rows to the relay. */
  kick: () => void;
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
 * reminders before deadlines. Rows are claimed with `FOR UPDATE SKIP LOCKED`, so replicas share the work
 * and a human decision racing an expiry either commits first (the sweep then skips the row) or waits
 * for it and gets `409`.
 */
export async function sweepDeadlines(deps: DeadlineDeps): Promise<SweepResult> {
  const result: SweepResult = { expired: 0, escalated: 0, reminded: 0 };
  const waits: Array<{ outcome: string; seconds: number }> = [];
  let queued = 0;
  await sqlTransaction(deps.db, async (sql) => {
    const due = requestRows(
      (
        await sql.query(
          `SELECT ${REQUEST_SELECT} FROM "ApprovalRequest" r
            WHERE r."status" = 'pending' AND r."deadline" <= ${UTC_NOW}
            ORDER BY r."deadline" LIMIT ${BATCH} FOR UPDATE SKIP LOCKED`,
          [],
        )
      ).rows,
    );
    const messages: OutboxMessage[] = [];
    // The database's clock for the wait metric, read only when something is due.
    const now = due.length > 0 ? await databaseNow(sql) : new Date();
    const { policy } = deps.policy();
    for (const request of due) {
      const step = request.stepId ? await stepContext(sql, request.stepId) : null;
      const escalation = policy.escalation;
      if (request.onExpiry === 'escalate' && request.escalationLevel === 0 && escalation) {
        const escalated = await escalate(sql, request, escalation.group, parseDuration(escalation.deadline));
        queued += await queueApproverWebhooks(
          sql,
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
      messages.push(...(await expire(deps, sql, request, step)));
      queued += await queueApproverWebhooks(
        sql,
        deps.endpoints(),
        'approval.expired',
        request,
        step,
        'expired',
      );
      waits.push({
        outcome: 'expired',
        seconds: Math.max(0, (now.getTime() - request.createdAt.getTime()) / 1000),
      });
      result.expired += 1;
    }
    const reminderMs = parseDuration(policy.defaults.reminderBefore ?? 0);
    if (reminderMs > 0) {
      const remind = requestRows(
        (
          await sql.query(
            `SELECT ${REQUEST_SELECT} FROM "ApprovalRequest" r
              WHERE r."status" = 'pending' AND r."remindedAt" IS NULL AND r."deadline" > ${UTC_NOW}
                AND r."deadline" <= ${UTC_NOW} + make_interval(secs => $1)
                -- only where the wait is longer than the reminder lead (as the policy's rules say)
                AND r."deadline" - r."updatedAt" > make_interval(secs => $1)
              ORDER BY r."deadline" LIMIT ${BATCH} FOR UPDATE SKIP LOCKED`,
            [reminderMs / 1000],
          )
        ).rows,
      );
      for (const request of remind) {
        await sql.query(
          `UPDATE "ApprovalRequest" SET "remindedAt" = ${UTC_NOW}, "updatedAt" = ${UTC_NOW} WHERE "id" = $1::uuid`,
          [request.id],
        );
        const step = request.stepId ? await stepContext(sql, request.stepId) : null;
        queued += await queueApproverWebhooks(
          sql,
          deps.endpoints(),
          'approval.reminder',
          request,
          step,
          `reminder:${request.escalationLevel}`,
        );
        result.reminded += 1;
      }
    }
    if (messages.length > 0) await enqueueOutboxSql(sql, messages);
  });
  if (result.expired + result.escalated > 0) deps.kick();
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

async function escalate(
  sql: Sql,
  request: RequestRow,
  group: string,
  deadlineMs: number,
): Promise<RequestRow> {
  const updated = await sql.query(
    `UPDATE "ApprovalRequest" r
        SET "escalationLevel" = r."escalationLevel" + 1, "approverGroup" = $2, "onExpiry" = 'reject',
            "deadline" = ${UTC_NOW} + make_interval(secs => $3), "remindedAt" = NULL, "updatedAt" = ${UTC_NOW}
      WHERE r."id" = $1::uuid AND r."status" = 'pending'
      RETURNING ${REQUEST_SELECT}`,
    [request.id, group, deadlineMs / 1000],
  );
  const row = requestRows(updated.rows)[0] ?? request;
  await writeAudit(sql, [
    {
      action: 'approval.escalated',
      subject: { type: 'step', id: request.stepId ?? request.id },
      actor: 'policy:deadline',
      reason: `no decision by ${request.approverGroup ?? 'the approvers'} before the deadline; escalated to ${group}`,
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
  sql: Sql,
  request: RequestRow,
  step: Awaited<ReturnType<typeof stepContext>>,
): Promise<OutboxMessage[]> {
  const reason = `no decision before the deadline (${request.deadline?.toISOString() ?? 'unknown'})`;
  await sql.query(
    `UPDATE "ApprovalRequest"
        SET "status" = 'expired', "decidedBy" = 'policy:expiry', "decidedAt" = ${UTC_NOW}, "reason" = $2,
            "updatedAt" = ${UTC_NOW}
      WHERE "id" = $1::uuid AND "status" = 'pending'`,
    [request.id, reason],
  );
  await writeAudit(sql, [
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
