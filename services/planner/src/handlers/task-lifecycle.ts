import type { TaskCancelRequestedCloudEvent, TaskOutcomeCloudEvent } from '@tandem/contracts';
import { UTC_NOW as NOW, markProcessedSql, sqlTransaction, type Db } from '@tandem/db';
import { findCancelTarget, type Log } from '@tandem/service-kit';

/** Consumer of `task.cancel-requested.v1` (wire name). */
export const PLANNER_CANCEL_CONSUMER = 'planner-task-cancel-requested';
/** Consumers of the outcome subjects, one per subject (wire names). */
export const PLANNER_OUTCOME_CONSUMERS = {
  completed: 'planner-task-completed',
  failed: 'planner-task-failed',
  cancelled: 'planner-task-cancelled',
} as const;

/**
 * Stops planning a cancelled task: a task still being planned is marked `cancelled`, so no plan is
 * stored for it (planning checks the status before each model call and when it stores the plan).
 * The executor publishes the task's `task.cancelled` outcome.
 */
export async function handleCancelRequested(
  deps: { db: Db },
  event: TaskCancelRequestedCloudEvent,
  context: { messageId: string; log: Log },
): Promise<void> {
  const taskId = await findCancelTarget(deps.db, event.data);
  await sqlTransaction(deps.db, async (sql) => {
    if (!(await markProcessedSql(sql, PLANNER_CANCEL_CONSUMER, context.messageId))) return;
    if (taskId === null) return;
    await sql.query(
      `UPDATE "Task" SET "status" = 'cancelled', "updatedAt" = ${NOW}
        WHERE "id" = $1::uuid AND "status" IN ('accepted', 'planning')`,
      [taskId],
    );
  });
  if (taskId === null) context.log.warn({ eventId: event.id }, 'cancel requested for an unknown task');
}

/**
 * Stores a task's actual outcome beside the quality score of the plan version that ran, so the score can
 * be checked against outcomes.
 */
export async function handleTaskOutcome(
  deps: { db: Db },
  event: TaskOutcomeCloudEvent,
  context: { consumer: string; messageId: string },
): Promise<void> {
  const data = event.data;
  await sqlTransaction(deps.db, async (sql) => {
    if (!(await markProcessedSql(sql, context.consumer, context.messageId))) return;
    // The plan version that ran (the newest one when the event does not say).
    await sql.query(
      `UPDATE "PlanMetrics" SET "outcome" = $3, "outcomeAt" = $4::timestamptz AT TIME ZONE 'UTC'
        WHERE "outcome" IS NULL AND "planId" = (
          SELECT "id" FROM "Plan" WHERE "taskId" = $1::uuid AND ($2::int IS NULL OR "version" = $2::int)
           ORDER BY "version" DESC LIMIT 1)`,
      [data.taskId, data.planVersion ?? null, data.status, event.time],
    );
  });
}
