import type { Envelope, EventData, PlanProposed } from '@tandem/contracts';
import { UTC_NOW as NOW, markProcessedSql, sqlTransaction } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import { advanceTask, UNFINISHED_RUN, type AdvanceDeps } from '../advance.js';
import { applyEarlyCancels } from '../early-cancels.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const EXECUTOR_PLAN_CONSUMER = 'executor-plan-proposed';

/**
 * Starts the run of a plan version: the task's run row and a waiting state per step. Approvals may arrive
 * before the plan (another consumer), so step rows are created without overwriting an earlier decision.
 * A newer version (a human edit or a re-plan) replaces the running one; the old version's unfinished steps
 * are superseded. An older version arriving late changes nothing.
 */
export async function handlePlanProposed(
  deps: AdvanceDeps,
  envelope: Envelope<EventData<typeof PlanProposed>>,
  context: { messageId: string; deliveryCount: number; log: Log },
): Promise<void> {
  const plan = envelope.data;
  // A cancel that came before the task ends it now, before a step of this plan can start.
  await applyEarlyCancels(deps, context.log, { taskId: plan.taskId });
  const outcome = await sqlTransaction(deps.db, async (sql) => {
    if (!(await markProcessedSql(sql, EXECUTOR_PLAN_CONSUMER, context.messageId))) return 'duplicate';
    const existing = await sql.query(
      `SELECT r."status", r."planId"::text AS "planId", p."version"
         FROM "TaskRun" r LEFT JOIN "Plan" p ON p."id" = r."planId" WHERE r."taskId" = $1::uuid FOR UPDATE OF r`,
      [plan.taskId],
    );
    const run = existing.rows[0];
    let switched = false;
    if (!run) {
      await sql.query(
        `INSERT INTO "TaskRun" ("taskId", "planId", "status", "replans", "startedAt", "updatedAt")
         VALUES ($1::uuid, $2::uuid, 'running', 0, ${NOW}, ${NOW})`,
        [plan.taskId, plan.planId],
      );
    } else {
      const status = String(run['status']);
      const planId = run['planId'] === null ? null : String(run['planId']);
      if (planId !== plan.planId) {
        if (!UNFINISHED_RUN.includes(status)) return 'ended';
        if (typeof run['version'] === 'number' && run['version'] >= plan.version) return 'older';
        await sql.query(
          `UPDATE "TaskRun" SET "planId" = $2::uuid, "status" = 'running', "updatedAt" = ${NOW}
            WHERE "taskId" = $1::uuid AND "status" = ANY($3::text[])`,
          [plan.taskId, plan.planId, UNFINISHED_RUN],
        );
        if (planId !== null) {
          await sql.query(
            `UPDATE "StepRun" SET "status" = 'superseded', "finishedAt" = ${NOW}, "updatedAt" = ${NOW}
              WHERE "stepId" IN (SELECT "id" FROM "PlanStep" WHERE "planId" = $1::uuid)
                AND "status" IN ('waiting', 'approved', 'fixing')`,
            [planId],
          );
        }
        switched = true;
      }
    }
    const created = await sql.query(
      `INSERT INTO "StepRun" ("stepId", "taskId", "status", "attempts", "updatedAt")
       SELECT id, $2::uuid, 'waiting', 0, ${NOW} FROM unnest($1::uuid[]) AS id
       ON CONFLICT ("stepId") DO NOTHING`,
      [plan.steps.map((step) => step.stepId), plan.taskId],
    );
    if (switched) return 'switched';
    // Every step row is new and waiting: nothing can run until its decisions arrive.
    return created.rowCount === plan.steps.length ? 'waiting' : 'decided';
  });
  if (outcome === 'switched')
    context.log.info(
      { taskId: plan.taskId, version: plan.version, origin: plan.origin },
      'plan version replaced',
    );
  if (outcome === 'waiting' || outcome === 'older') return;
  await advanceTask(deps, plan.taskId, context.log, {
    lastDelivery: context.deliveryCount >= deps.maxDeliver,
  });
}
