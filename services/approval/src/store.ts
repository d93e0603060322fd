import type { Sql, Tx } from '@tandem/db';
import type { StoredPlan } from './domain/plan-versions.js';

/** Audit action recording that a task's approvals were cancelled; plans arriving later create nothing. */
export const TASK_CANCELLED_ACTION = 'approval.task-cancelled';

/**
 * Serialises this service's writes for one task (plan versions, cancellation) until the transaction
 * ends, so v1 and v2 of a plan, or a plan and a cancellation, handled at once by two consumers or two
 * replicas, see each other's rows. Approval owns the lock namespace `approval:task:`.
 */
export async function lockTask(tx: Tx, taskId: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`approval:task:${taskId}`}::text, 0))`;
}

/**
 * The plans of a task that already have approval requests, with their versions read from the
 * planner's Plan rows (null when the row is missing).
 */
export async function storedPlans(tx: Tx, taskId: string): Promise<StoredPlan[]> {
  const rows = await tx.approvalRequest.findMany({
    where: { taskId },
    distinct: ['planId'],
    select: { planId: true },
  });
  if (rows.length === 0) return [];
  const plans = await tx.plan.findMany({
    where: { id: { in: rows.map((row) => row.planId) } },
    select: { id: true, version: true },
  });
  const versions = new Map(plans.map((plan) => [plan.id, plan.version]));
  return rows.map((row) => ({ planId: row.planId, version: versions.get(row.planId) ?? null }));
}

/** Whether this service has cancelled the task's approvals (a cancel request was handled for it). */
export async function isTaskCancelled(tx: Tx, taskId: string): Promise<boolean> {
  const row = await tx.auditLog.findFirst({
    where: { service: 'approval', subjectType: 'task', subjectId: taskId, action: TASK_CANCELLED_ACTION },
    select: { seq: true },
  });
  return row !== null;
}

/** {@link lockTask} on a plain-SQL transaction (the same lock, so both kinds of handler exclude each other). */
export async function lockTaskSql(sql: Sql, taskId: string): Promise<void> {
  await sql.query(`SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))`, [`approval:task:${taskId}`]);
}

/** {@link storedPlans} in one statement. */
export async function storedPlansSql(sql: Sql, taskId: string): Promise<StoredPlan[]> {
  const result = await sql.query(
    `SELECT DISTINCT a."planId"::text AS "planId", p."version"
       FROM "ApprovalRequest" a LEFT JOIN "Plan" p ON p."id" = a."planId" WHERE a."taskId" = $1::uuid`,
    [taskId],
  );
  return result.rows.map((row) => ({
    planId: String(row['planId']),
    version: typeof row['version'] === 'number' ? row['version'] : null,
  }));
}

/** {@link isTaskCancelled} in one statement. */
export async function isTaskCancelledSql(sql: Sql, taskId: string): Promise<boolean> {
  const result = await sql.query(
    `SELECT 1 FROM "AuditLog" WHERE "service" = 'approval' AND "subjectType" = 'task' AND "subjectId" = $1
        AND "action" = $2 LIMIT 1`,
    [taskId, TASK_CANCELLED_ACTION],
  );
  return result.rows.length > 0;
}
