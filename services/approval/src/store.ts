import { JsonValue } from '@tandem/contracts';
import type { Sql, PrismaTx } from '@tandem/db';
import type { StoredPlan } from './domain/plan-versions.js';

/** Audit action recording that a task's approvals were cancelled; plans arriving later create nothing. */
export const TASK_CANCELLED_ACTION = 'approval.task-cancelled';

/**
 * Serialises this service's writes for one task (plan versions, cancellation) until the transaction
 * ends, so v1 and v2 of a plan, or a plan and a cancellation, handled at once by two consumers or two
 * replicas, see each other's rows. Approval owns the lock namespace `approval:task:`.
 */
export async function lockTask(tx: PrismaTx, taskId: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`approval:task:${taskId}`}::text, 0))`;
}

/**
 * The plans of a task that already have approval requests, with their versions read from the
 * planner's Plan rows (null when the row is missing).
 */
export async function storedPlans(tx: PrismaTx, taskId: string): Promise<StoredPlan[]> {
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
export async function isTaskCancelled(tx: PrismaTx, taskId: string): Promise<boolean> {
  const row = await tx.auditLog.findFirst({
    where: { service: 'approval', subjectType: 'task', subjectId: taskId, action: TASK_CANCELLED_ACTION },
    select: { seq: true },
  });
  return row !== null;
}

/**
 * {@link lockTask} on a plain-SQL transaction (the same lock, so both kinds of handler exclude each other),
 * then the inbox row, in one statement: false when the message was handled before.
 */
export async function lockTaskAndMarkProcessed(
  sql: Sql,
  taskId: string,
  consumer: string,
  messageId: string,
): Promise<boolean> {
  const result = await sql.query(
    `WITH locked AS (SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0)))
     INSERT INTO "ProcessedMessage" ("consumer", "messageId", "processedAt")
     SELECT $2, $3, (now() AT TIME ZONE 'UTC') FROM locked
     ON CONFLICT DO NOTHING`,
    [`approval:task:${taskId}`, consumer, messageId],
  );
  return result.rowCount === 1;
}

/**
 * What the plan handler reads about a task, in one statement: whether its approvals were cancelled, the
 * plans that already have requests (with their versions), and which of `stepIds` already have a request.
 */
export async function taskApprovalState(
  sql: Sql,
  taskId: string,
  stepIds: readonly string[],
): Promise<{
  cancelled: boolean;
  plans: StoredPlan[];
  existingSteps: Set<string>;
  task: TaskContext;
}> {
  const result = await sql.query(
    `SELECT t."goal", t."input", t."submittedBy", t."source",
            EXISTS (SELECT 1 FROM "AuditLog" WHERE "service" = 'approval' AND "subjectType" = 'task'
                      AND "subjectId" = $1 AND "action" = $2) AS "cancelled",
            coalesce((SELECT json_agg(json_build_object('planId', x."planId", 'version', x."version"))
                        FROM (SELECT DISTINCT a."planId"::text AS "planId", p."version"
                                FROM "ApprovalRequest" a LEFT JOIN "Plan" p ON p."id" = a."planId"
                               WHERE a."taskId" = $1::uuid) x), '[]'::json) AS "plans",
            coalesce((SELECT array_agg("stepId"::text) FROM "ApprovalRequest" WHERE "stepId" = ANY($3::uuid[])),
                     '{}') AS "existing"
       FROM (SELECT 1) one LEFT JOIN "Task" t ON t."id" = $4::uuid`,
    [taskId, TASK_CANCELLED_ACTION, [...stepIds], taskId],
  );
  const row = result.rows[0];
  const plans = Array.isArray(row?.['plans']) ? row['plans'] : [];
  const existing = Array.isArray(row?.['existing']) ? row['existing'] : [];
  return {
    cancelled: row?.['cancelled'] === true,
    plans: plans.flatMap((plan: unknown) =>
      typeof plan === 'object' && plan !== null && 'planId' in plan && typeof plan.planId === 'string'
        ? [
            {
              planId: plan.planId,
              version: 'version' in plan && typeof plan.version === 'number' ? plan.version : null,
            },
          ]
        : [],
    ),
    existingSteps: new Set(existing.filter((id: unknown): id is string => typeof id === 'string')),
    task: taskContextOf(row),
  };
}

/** The task as submitted: context for risk, and who submitted it (whether it may act as its agent). */
export interface TaskContext {
  goal: string;
  input: JsonValue | null;
  submittedBy: string | null;
  source: string | null;
}

/** Reads the task columns of a row (missing or unreadable values read as empty). */
export function taskContextOf(row: Record<string, unknown> | undefined): TaskContext {
  const input = JsonValue.safeParse(row?.['input'] ?? null);
  return {
    goal: typeof row?.['goal'] === 'string' ? row['goal'] : '',
    input: input.success ? input.data : null,
    submittedBy: typeof row?.['submittedBy'] === 'string' ? row['submittedBy'] : null,
    source: typeof row?.['source'] === 'string' ? row['source'] : null,
  };
}

/** The task's context alone (for work done before the plan's transaction). */
export async function readTaskContext(sql: Sql, taskId: string): Promise<TaskContext> {
  const result = await sql.query(
    `SELECT "goal", "input", "submittedBy", "source" FROM "Task" WHERE "id" = $1::uuid`,
    [taskId],
  );
  return taskContextOf(result.rows[0]);
}
