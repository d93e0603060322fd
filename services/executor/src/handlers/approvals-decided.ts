import { ErrorCodes, type ApprovalsDecided, type Envelope, type EventData } from '@tandem/contracts';
import { UTC_NOW as NOW, poolSql } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import { advanceTask, type AdvanceDeps } from '../advance.js';

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
  // One statement (so one transaction): the inbox row, and each decision on a step that still waits — a
  // step row the plan did not create yet is created with its decision.
  await poolSql(deps.db).query(
    `WITH processed AS (
       INSERT INTO "ProcessedMessage" ("consumer", "messageId", "processedAt") VALUES ($1, $2, ${NOW})
       ON CONFLICT DO NOTHING RETURNING 1)
     INSERT INTO "StepRun" ("stepId", "taskId", "status", "approval", "error", "attempts", "updatedAt")
     SELECT v."stepId", $3::uuid, v."status", 'auto', v."error"::jsonb, 0, ${NOW}
       FROM unnest($4::uuid[], $5::text[], $6::text[]) AS v("stepId", "status", "error")
      WHERE EXISTS (SELECT 1 FROM processed)
     ON CONFLICT ("stepId") DO UPDATE
        SET "status" = EXCLUDED."status", "approval" = EXCLUDED."approval", "error" = EXCLUDED."error",
            "updatedAt" = EXCLUDED."updatedAt"
      WHERE "StepRun"."status" = 'waiting'`,
    [
      EXECUTOR_APPROVALS_CONSUMER,
      context.messageId,
      batch.taskId,
      batch.decisions.map((decision) => decision.stepId),
      batch.decisions.map((decision) => decision.decision),
      batch.decisions.map((decision) =>
        decision.decision === 'rejected'
          ? JSON.stringify({
              code: ErrorCodes.APPROVAL_REJECTED,
              message: decision.reason ?? 'rejected by policy',
              retryable: false,
            })
          : null,
      ),
    ],
  );
  await advanceTask(deps, batch.taskId, context.log, {
    lastDelivery: context.deliveryCount >= deps.maxDeliver,
  });
}
