import {
  ErrorCodes,
  TandemError,
  type ApprovalsDecided,
  type Envelope,
  type EventData,
} from '@tandem/contracts';
import { UTC_NOW as NOW, markProcessedSql, sqlTransaction } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import { advanceTask, type AdvanceDeps } from '../advance.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const EXECUTOR_APPROVALS_CONSUMER = 'executor-approval-batch-decided';

/**
 * Records the decisions policy made for a plan's steps (one message per plan) in one transaction, then
 * moves the task forward: every approved step that can run now runs in one pass. Decisions may arrive
 * before the plan, so missing step rows are created without overwriting an earlier decision.
 *
 * What is recorded comes from the approval service's request rows (decided by policy: mode `auto`,
 * approved or rejected), not from the event: a step the event names without such a row is left as it
 * is, and an event no row backs at all is dead-lettered as `APPROVAL.UNVERIFIED`.
 */
export async function handleApprovalsDecided(
  deps: AdvanceDeps,
  envelope: Envelope<EventData<typeof ApprovalsDecided>>,
  context: { messageId: string; deliveryCount: number; log: Log },
): Promise<void> {
  const batch = envelope.data;
  const stepIds = batch.decisions.map((decision) => decision.stepId);
  await sqlTransaction(deps.db, async (sql) => {
    if (!(await markProcessedSql(sql, EXECUTOR_APPROVALS_CONSUMER, context.messageId))) return;
    // One statement: each stored policy decision of the named steps, on a step that still waits — a step
    // row the plan did not create yet is created with its decision.
    const applied = await sql.query(
      `WITH decided AS (
         SELECT a."stepId",
                CASE WHEN a."status" = 'approved' THEN 'approved' ELSE 'rejected' END AS "status",
                CASE WHEN a."status" = 'approved' THEN NULL
                     ELSE jsonb_build_object('code', $4::text, 'message', coalesce(a."reason", 'rejected by policy'),
                                             'retryable', false) END AS "error"
           FROM "ApprovalRequest" a
          WHERE a."taskId" = $1::uuid AND a."planId" = $2::uuid AND a."stepId" = ANY($3::uuid[])
            AND a."mode" = 'auto' AND a."status" IN ('approved', 'rejected')),
       upserted AS (
         INSERT INTO "StepRun" ("stepId", "taskId", "status", "approval", "error", "attempts", "updatedAt")
         SELECT d."stepId", $1::uuid, d."status", 'auto', d."error", 0, ${NOW} FROM decided d
         ON CONFLICT ("stepId") DO UPDATE
            SET "status" = EXCLUDED."status", "approval" = EXCLUDED."approval", "error" = EXCLUDED."error",
                "updatedAt" = EXCLUDED."updatedAt"
          WHERE "StepRun"."status" = 'waiting'
         RETURNING 1)
       SELECT (SELECT count(*)::int FROM decided) AS "backed"`,
      [batch.taskId, batch.planId, stepIds, ErrorCodes.APPROVAL_REJECTED],
    );
    const backed = Number(applied.rows[0]?.['backed'] ?? 0);
    if (backed === 0) {
      throw new TandemError(
        ErrorCodes.APPROVAL_UNVERIFIED,
        `no stored policy decision backs approval.batch-decided for plan ${batch.planId}`,
      );
    }
    if (backed < stepIds.length) {
      context.log.warn(
        { taskId: batch.taskId, named: stepIds.length, backed },
        'approval.batch-decided names steps without a stored policy decision; those are left as they are',
      );
    }
  });
  await advanceTask(deps, batch.taskId, context.log, {
    lastDelivery: context.deliveryCount >= deps.maxDeliver,
  });
}
