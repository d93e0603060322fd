import { sql } from 'kysely';
import { jsonArrayFrom, jsonObjectFrom } from 'kysely/helpers/postgres';
import { queryable, type DbOrTx } from '../queryable.js';

// Reads of the approval service (and of the service-kit auth code it owns) on tables other services
// write: the planner's Task, Plan, PlanStep, PlanMetrics and the executor's StepRun. Json columns come
// back as `unknown`: the caller parses them (parseStored).

/** The task as submitted, its input unparsed. */
export interface StoredTaskContext {
  goal: string;
  input: unknown;
  submittedBy: string | null;
  source: string | null;
  kind: string;
}

/** The task's context for judging its steps, or null when the planner's row is missing. */
export async function approvalTaskContext(source: DbOrTx, taskId: string): Promise<StoredTaskContext | null> {
  const row = await queryable(source)
    .selectFrom('Task')
    .select(['goal', 'input', 'submittedBy', 'source', 'kind'])
    .where('id', '=', taskId)
    .executeTakeFirst();
  return row ?? null;
}

/** What the plan handler reads about a task before creating its requests (one statement). */
export interface TaskApprovalState {
  /** Whether this service cancelled the task's approvals (its task-level audit row exists). */
  cancelled: boolean;
  /** The plans that already have requests, with their versions (null: the Plan row is missing). */
  plans: Array<{ planId: string; version: number | null }>;
  /** Which of the asked steps already have a request. */
  existingSteps: Set<string>;
  /** The task (null when the planner's row is missing). */
  task: StoredTaskContext | null;
}

/**
 * In one statement: whether the task's approvals were cancelled (an AuditLog row of `service` with
 * `cancelledAction` on the task), the plans that already have requests with their versions, which of
 * `stepIds` already have a request, and the task's context.
 */
export async function taskApprovalState(
  source: DbOrTx,
  input: { taskId: string; stepIds: readonly string[]; service: string; cancelledAction: string },
): Promise<TaskApprovalState> {
  const { taskId, stepIds } = input;
  const row = await queryable(source)
    .selectNoFrom((eb) => [
      eb
        .exists(
          eb
            .selectFrom('AuditLog')
            .select('seq')
            .where('service', '=', input.service)
            .where('subjectType', '=', 'task')
            .where('subjectId', '=', taskId)
            .where('action', '=', input.cancelledAction),
        )
        .as('cancelled'),
      jsonArrayFrom(
        eb
          .selectFrom('ApprovalRequest as a')
          .leftJoin('Plan as p', 'p.id', 'a.planId')
          .select(['a.planId', 'p.version'])
          .distinct()
          .where('a.taskId', '=', taskId),
      ).as('plans'),
      (stepIds.length === 0
        ? sql<string[]>`'{}'::text[]`
        : eb
            .selectFrom('ApprovalRequest')
            .select(sql<string[]>`coalesce(array_agg("stepId"::text), '{}')`.as('ids'))
            .where('stepId', 'in', [...stepIds])
      ).as('existing'),
      jsonObjectFrom(
        eb
          .selectFrom('Task')
          .select(['goal', 'input', 'submittedBy', 'source', 'kind'])
          .where('id', '=', taskId),
      ).as('task'),
    ])
    .executeTakeFirstOrThrow();
  return {
    cancelled: row.cancelled === true,
    plans: row.plans.map((plan) => ({ planId: plan.planId, version: plan.version })),
    existingSteps: new Set(row.existing ?? []),
    task: row.task,
  };
}

/** A stored planned step, its arguments unparsed. */
export interface StoredPlanStep {
  stepId: string;
  key: string;
  index: number;
  tool: string;
  arguments: unknown;
  riskClass: 'read' | 'compute' | 'write' | 'network' | 'destructive';
  dependsOn: string[];
}

/**
 * The steps of a stored plan in order, with its task's kind (null when the plan has no steps): what an
 * edited or resolved step is judged again against.
 */
export async function storedPlanSteps(
  source: DbOrTx,
  planId: string,
): Promise<{ kind: string | null; steps: StoredPlanStep[] }> {
  const rows = await queryable(source)
    .selectFrom('PlanStep as s')
    .innerJoin('Plan as p', 'p.id', 's.planId')
    .innerJoin('Task as t', 't.id', 'p.taskId')
    .select([
      's.id as stepId',
      's.stepKey as key',
      's.index',
      's.tool',
      's.arguments',
      's.riskClass',
      's.dependsOn',
      't.kind',
    ])
    .where('s.planId', '=', planId)
    .orderBy('s.index')
    .execute();
  return {
    kind: rows[0]?.kind ?? null,
    steps: rows.map((row) => ({
      stepId: row.stepId,
      key: row.key,
      index: row.index,
      tool: row.tool,
      arguments: row.arguments,
      riskClass: row.riskClass,
      dependsOn: row.dependsOn,
    })),
  };
}

/** One planned step with the learned pattern ids its plan used (unparsed), or null. */
export async function planStepContext(
  source: DbOrTx,
  stepId: string,
): Promise<{ key: string; tool: string; arguments: unknown; qualityFactors: unknown } | null> {
  const row = await queryable(source)
    .selectFrom('PlanStep as s')
    .leftJoin('PlanMetrics as m', 'm.planId', 's.planId')
    .select(['s.stepKey as key', 's.tool', 's.arguments', 'm.qualityFactors'])
    .where('s.id', '=', stepId)
    .executeTakeFirst();
  return row ?? null;
}

/** The steps of plans in plan and step order, each with its request's risk level, for the API view. */
export async function planStepsForViews(
  source: DbOrTx,
  planIds: readonly string[],
): Promise<
  Array<{
    planId: string;
    stepId: string;
    key: string;
    tool: string;
    arguments: unknown;
    riskClass: string;
    riskLevel: string | null;
  }>
> {
  if (planIds.length === 0) return [];
  return queryable(source)
    .selectFrom('PlanStep as s')
    .leftJoin('ApprovalRequest as a', 'a.stepId', 's.id')
    .select([
      's.planId',
      's.id as stepId',
      's.stepKey as key',
      's.tool',
      's.arguments',
      's.riskClass',
      'a.riskLevel',
    ])
    .where('s.planId', 'in', [...planIds])
    .orderBy('s.planId')
    .orderBy('s.index')
    .execute();
}

/** The stored results (unparsed) of a plan's completed steps, by step key. */
export async function completedStepResults(
  source: DbOrTx,
  planId: string,
): Promise<Array<{ key: string; stepId: string; result: unknown }>> {
  return queryable(source)
    .selectFrom('PlanStep as s')
    .innerJoin('StepRun as r', 'r.stepId', 's.id')
    .select(['s.stepKey as key', 's.id as stepId', 'r.result'])
    .where('s.planId', '=', planId)
    .where('r.status', '=', 'completed')
    .execute();
}

/** The executor's state of a step (StepRun.status), or null when it has no run. */
export async function stepRunStatus(source: DbOrTx, stepId: string): Promise<string | null> {
  const row = await queryable(source)
    .selectFrom('StepRun')
    .select('status')
    .where('stepId', '=', stepId)
    .executeTakeFirst();
  return row?.status ?? null;
}

/**
 * The task a cancel request names, for the approval service: by id (the planner's row, or else any
 * approval request naming it: enough to cancel them without the planner's row), or by the CloudEvent
 * that requested it (source and id, the task's idempotency key). Null when none is known.
 */
export async function approvalCancelTarget(
  source: DbOrTx,
  by: { taskId: string } | { source: string; externalId: string },
): Promise<string | null> {
  const db = queryable(source);
  if ('taskId' in by) {
    const task = await db.selectFrom('Task').select('id').where('id', '=', by.taskId).executeTakeFirst();
    if (task) return task.id;
    const request = await db
      .selectFrom('ApprovalRequest')
      .select('taskId')
      .where('taskId', '=', by.taskId)
      .limit(1)
      .executeTakeFirst();
    return request?.taskId ?? null;
  }
  const task = await db
    .selectFrom('Task')
    .select('id')
    .where('source', '=', by.source)
    .where('externalId', '=', by.externalId)
    .executeTakeFirst();
  return task?.id ?? null;
}

/**
 * What decides who may act on a task (service-kit's `reachesTask`): its agent and submitting token,
 * or null when the task does not exist.
 */
export async function taskOwnership(
  source: DbOrTx,
  taskId: string,
): Promise<{ agentId: string | null; submittedBy: string | null } | null> {
  const row = await queryable(source)
    .selectFrom('Task')
    .select(['agentId', 'submittedBy'])
    .where('id', '=', taskId)
    .executeTakeFirst();
  return row ?? null;
}

/** The database's clock (deadlines are compared with it, not with a process's clock). */
export async function databaseNow(source: DbOrTx): Promise<Date> {
  const row = await queryable(source)
    .selectNoFrom(sql<Date>`now()`.as('now'))
    .executeTakeFirstOrThrow();
  return row.now;
}
