import { ErrorCodes, type ApprovalsDecided, type Envelope, type EventData } from '@tandem/contracts';
import { markProcessedSql, sqlTransaction } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import { advanceTask, type AdvanceDeps } from '../advance.js';
import { NOW } from '../store.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const EXECUTOR_APPROVALS_CONSUMER = 'executor-approval-batch-decided';

/**
 * Records the decisions policy made for a plan's steps (one message per plan) in one transaction, then
 * moves the task forward: every approved step that can run now runs in one pass. Decisions may arrive
 * before the plan, so missing step rows are created without overwriting an earlier decision.
 */
export async function handleApprovalsDecided(
  deps: AdvanceDeps,
  envelope: Envelope<EventData<typeof ApprovalsDecided>>,
  context: { messageId: string; deliveryCount: number; log: Log },
): Promise<void> {
  const batch = envelope.data;
  await sqlTransaction(deps.db, async (sql) => {
    if (!(await markProcessedSql(sql, EXECUTOR_APPROVALS_CONSUMER, context.messageId))) return;
    const stepIds = batch.decisions.map((decision) => decision.stepId);
    await sql.query(
      `INSERT INTO "StepRun" ("stepId", "taskId", "status", "attempts", "updatedAt")
       SELECT id, $2::uuid, 'waiting', 0, ${NOW} FROM unnest($1::uuid[]) AS id
       ON CONFLICT ("stepId") DO NOTHING`,
      [stepIds, batch.taskId],
    );
    const approved = batch.decisions.filter((decision) => decision.decision === 'approved');
    if (approved.length > 0) {
      await sql.query(
        `UPDATE "StepRun" SET "status" = 'approved', "approval" = 'auto', "updatedAt" = ${NOW}
          WHERE "stepId" = ANY($1::uuid[]) AND "status" = 'waiting'`,
        [approved.map((decision) => decision.stepId)],
      );
    }
    for (const decision of batch.decisions.filter((candidate) => candidate.decision === 'rejected')) {
      await sql.query(
        `UPDATE "StepRun" SET "status" = 'rejected', "approval" = 'auto', "error" = $2::jsonb, "updatedAt" = ${NOW}
          WHERE "stepId" = $1::uuid AND "status" = 'waiting'`,
        [
          decision.stepId,
          JSON.stringify({
            code: ErrorCodes.APPROVAL_REJECTED,
            message: decision.reason ?? 'rejected by policy',
            retryable: false,
          }),
        ],
      );
    }
  });
  await advanceTask(deps, batch.taskId, context.log, {
    lastDelivery: context.deliveryCount >= deps.maxDeliver,
  });
}
