import { sql } from 'kysely';
import { jsonArrayFrom } from 'kysely/helpers/postgres';
import type { DB } from '../generated/kysely.js';
import { queryable, utcNowMinus, type DbOrTx } from '../queryable.js';

/**
 * The executor's reads of tables other services write (Task, Plan, PlanStep, ApprovalRequest,
 * SandboxRun, SandboxRunFile, Outbox), and of its own tables joined with them. Json columns come back
 * as `unknown`: the executor parses them with `parseStored`.
 */

/** A TaskRun's state. */
export type TaskRunStatus = DB['TaskRun']['status'];
/** A StepRun's state. */
export type StepRunStatus = DB['StepRun']['status'];

/** One step of a run as {@link loadRunState} reads it (Json columns unparsed). */
export interface RunStepRow {
  stepId: string;
  key: string;
  index: number;
  tool: string;
  /** The approver's edited arguments if any, else the planned ones. */
  arguments: unknown;
  dependsOn: string[];
  /** Null while the step has no StepRun row. */
  status: StepRunStatus | null;
  result: unknown;
  error: unknown;
  /** The approval service's stored decision (null: no request row). */
  approvalStatus: string | null;
  argumentsHash: string | null;
}

/** A task's run, the task as submitted and the steps of the plan version it runs (Json columns unparsed). */
export interface RunStateRow {
  run: { status: TaskRunStatus; planId: string; replans: number };
  task: {
    id: string;
    goal: string;
    input: unknown;
    kind: string;
    agentId: string | null;
    source: string;
    externalId: string;
    budget: unknown;
    preferences: unknown;
    deadline: Date | null;
  };
  plan: { id: string; version: number; status: string };
  steps: RunStepRow[];
}

/**
 * Loads what advancing a task needs in one statement: its run, the task, the plan version it runs and
 * every step of it (in plan order) with its run state and stored decision. Null when the task has no run
 * or the run no plan.
 */
export async function loadRunState(source: DbOrTx, taskId: string): Promise<RunStateRow | null> {
  const row = await queryable(source)
    .selectFrom('TaskRun as r')
    .innerJoin('Task as t', 't.id', 'r.taskId')
    .leftJoin('Plan as p', 'p.id', 'r.planId')
    .select((eb) => [
      'r.status as runStatus',
      'r.planId',
      'r.replans',
      't.id as taskId',
      't.goal',
      't.input',
      't.kind',
      't.agentId',
      't.source',
      't.externalId',
      't.budget',
      't.preferences',
      't.deadline',
      'p.version as planVersion',
      'p.status as planStatus',
      jsonArrayFrom(
        eb
          .selectFrom('PlanStep as s')
          .leftJoin('StepRun as sr', 'sr.stepId', 's.id')
          .leftJoin('ApprovalRequest as a', (join) =>
            join.onRef('a.stepId', '=', 's.id').onRef('a.planId', '=', 's.planId'),
          )
          .select((step) => [
            's.id as stepId',
            's.stepKey as key',
            's.index',
            's.tool',
            step.fn.coalesce('sr.arguments', 's.arguments').as('arguments'),
            's.dependsOn',
            'sr.status',
            'sr.result',
            'sr.error',
            'a.status as approvalStatus',
            'a.argumentsHash',
          ])
          .whereRef('s.planId', '=', 'r.planId')
          .orderBy('s.index'),
      ).as('steps'),
    ])
    .where('r.taskId', '=', taskId)
    .executeTakeFirst();
  if (row === undefined) return null;
  if (row.planId === null || row.planVersion === null || row.planStatus === null) return null;
  return {
    run: { status: row.runStatus, planId: row.planId, replans: row.replans },
    task: {
      id: row.taskId,
      goal: row.goal,
      input: row.input,
      kind: row.kind,
      agentId: row.agentId,
      source: row.source,
      externalId: row.externalId,
      budget: row.budget,
      preferences: row.preferences,
      deadline: row.deadline,
    },
    plan: { id: row.planId, version: row.planVersion, status: row.planStatus },
    steps: row.steps.map((step) => ({
      stepId: step.stepId,
      key: step.key,
      index: step.index,
      tool: step.tool,
      arguments: step.arguments,
      dependsOn: step.dependsOn,
      status: step.status,
      result: step.result,
      error: step.error,
      approvalStatus: step.approvalStatus,
      argumentsHash: step.argumentsHash,
    })),
  };
}

/** A task as its outcome event names it. */
export interface TaskOutcomeRef {
  id: string;
  kind: string;
  agentId: string | null;
  source: string;
  externalId: string;
  deadline: Date | null;
}

/** The task's identity for its outcome event (kind, agent, submitter's request); null when not stored. */
export async function taskOutcomeRef(source: DbOrTx, taskId: string): Promise<TaskOutcomeRef | null> {
  const row = await queryable(source)
    .selectFrom('Task')
    .select(['id', 'kind', 'agentId', 'source', 'externalId', 'deadline'])
    .where('id', '=', taskId)
    .executeTakeFirst();
  return row ?? null;
}

/**
 * The stored task a cancel request names: by Tandem's task id when it gives one, else by the submitting
 * CloudEvent's `source` + `id`; null when no such task is stored (yet).
 */
export async function cancelTargetOf(
  source: DbOrTx,
  names: { taskId?: string | undefined; request?: { source: string; id: string } | undefined },
): Promise<string | null> {
  const db = queryable(source);
  if (names.taskId !== undefined) {
    const row = await db.selectFrom('Task').select('id').where('id', '=', names.taskId).executeTakeFirst();
    return row?.id ?? null;
  }
  if (names.request === undefined) return null;
  const row = await db
    .selectFrom('Task')
    .select('id')
    .where('source', '=', names.request.source)
    .where('externalId', '=', names.request.id)
    .executeTakeFirst();
  return row?.id ?? null;
}

/** The task's submitted input (Json, unparsed); undefined when the task is not stored. */
export async function taskInput(source: DbOrTx, taskId: string): Promise<{ input: unknown } | null> {
  const row = await queryable(source)
    .selectFrom('Task')
    .select('input')
    .where('id', '=', taskId)
    .executeTakeFirst();
  return row ?? null;
}

/** A plan's version and the tools of its steps in plan order; null when there is no such plan. */
export async function planSummary(
  source: DbOrTx,
  planId: string,
): Promise<{ version: number; tools: string[] } | null> {
  const db = queryable(source);
  const plan = await db.selectFrom('Plan').select('version').where('id', '=', planId).executeTakeFirst();
  if (plan === undefined) return null;
  const steps = await db
    .selectFrom('PlanStep')
    .select('tool')
    .where('planId', '=', planId)
    .orderBy('index')
    .execute();
  return { version: plan.version, tools: steps.map((step) => step.tool) };
}

/** A planned step's key and tool; null when there is no such step. */
export async function planStepOf(
  source: DbOrTx,
  stepId: string,
): Promise<{ stepKey: string; tool: string } | null> {
  const row = await queryable(source)
    .selectFrom('PlanStep')
    .select(['stepKey', 'tool'])
    .where('id', '=', stepId)
    .executeTakeFirst();
  return row ?? null;
}

/** The approval service's request row for one step, as the executor trusts a decision (Json unparsed). */
export interface StoredApprovalDecision {
  status: string;
  mode: string;
  reason: string | null;
  answer: string | null;
  editedArguments: unknown;
}

/** The request row an `approval.decided` event names (all four ids must match); null when there is none. */
export async function approvalDecisionOf(
  source: DbOrTx,
  ids: { approvalId: string; stepId: string; taskId: string; planId: string },
): Promise<StoredApprovalDecision | null> {
  const row = await queryable(source)
    .selectFrom('ApprovalRequest')
    .select(['status', 'mode', 'reason', 'answer', 'editedArguments'])
    .where('id', '=', ids.approvalId)
    .where('stepId', '=', ids.stepId)
    .where('taskId', '=', ids.taskId)
    .where('planId', '=', ids.planId)
    .executeTakeFirst();
  return row ?? null;
}

/** A policy decision stored for one step of a plan. */
export interface StoredPolicyDecision {
  stepId: string;
  status: 'approved' | 'rejected';
  reason: string | null;
}

/**
 * The policy decisions (mode `auto`, approved or rejected) stored for the named steps of one plan: what
 * an `approval.batch-decided` event may apply.
 */
export async function policyDecisionsOf(
  source: DbOrTx,
  input: { taskId: string; planId: string; stepIds: readonly string[] },
): Promise<StoredPolicyDecision[]> {
  if (input.stepIds.length === 0) return [];
  const rows = await queryable(source)
    .selectFrom('ApprovalRequest')
    .select(['stepId', 'status', 'reason'])
    .where('taskId', '=', input.taskId)
    .where('planId', '=', input.planId)
    .where('stepId', 'in', [...input.stepIds])
    .where('mode', '=', 'auto')
    .where('status', 'in', ['approved', 'rejected'])
    .execute();
  return rows.flatMap((row) =>
    row.stepId === null
      ? []
      : [
          {
            stepId: row.stepId,
            status: row.status === 'approved' ? 'approved' : 'rejected',
            reason: row.reason,
          },
        ],
  );
}

/** The value of a stored sandbox run (Json, unparsed): what a result event too large to carry it names. */
export async function sandboxRunValue(source: DbOrTx, runId: string): Promise<{ value: unknown } | null> {
  const row = await queryable(source)
    .selectFrom('SandboxRun')
    .select('value')
    .where('id', '=', runId)
    .executeTakeFirst();
  return row ?? null;
}

/** A file a sandbox run wrote or deleted. */
export interface SandboxFileChange {
  path: string;
  content: Uint8Array | null;
  size: number;
  deleted: boolean;
}

/** The files a sandbox run wrote or deleted, by path. */
export async function sandboxRunFiles(source: DbOrTx, runId: string): Promise<SandboxFileChange[]> {
  return queryable(source)
    .selectFrom('SandboxRunFile')
    .select(['path', 'content', 'size', 'deleted'])
    .where('runId', '=', runId)
    .orderBy('path')
    .execute();
}

/**
 * Tasks whose deadline is at or before `now` and that have not ended: still being planned (no run) or
 * running or re-planning; earliest deadline first.
 */
export async function tasksPastDeadline(source: DbOrTx, now: Date, limit: number): Promise<string[]> {
  const rows = await queryable(source)
    .selectFrom('Task as t')
    .leftJoin('TaskRun as r', 'r.taskId', 't.id')
    .select('t.id')
    .where('t.deadline', '<=', now)
    .where('t.status', 'not in', ['failed', 'cancelled'])
    .where((eb) => eb.or([eb('r.taskId', 'is', null), eb('r.status', 'in', ['running', 'replanning'])]))
    .orderBy('t.deadline')
    .limit(limit)
    .execute();
  return rows.map((row) => row.id);
}

/** Publishers whose unpublished outbox rows may still move a task on. */
const TASK_PUBLISHERS = ['planner', 'approval', 'executor', 'sandbox-runner'];

/**
 * `running` runs whose row and steps have not changed for `quietMs` (on the database's clock), with no
 * step `generating` or `running` and no message of the task still waiting in an outbox; oldest first.
 */
export async function quietRunningTasks(source: DbOrTx, quietMs: number, limit: number): Promise<string[]> {
  const before = utcNowMinus(quietMs);
  const rows = await queryable(source)
    .selectFrom('TaskRun as r')
    .select('r.taskId')
    .where('r.status', '=', 'running')
    .where('r.updatedAt', '<', before)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('StepRun as s')
            .select(sql.lit(1).as('one'))
            .whereRef('s.taskId', '=', 'r.taskId')
            .where((step) =>
              step.or([step('s.status', 'in', ['generating', 'running']), step('s.updatedAt', '>=', before)]),
            ),
        ),
      ),
    )
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('Outbox as o')
            .select(sql.lit(1).as('one'))
            .where('o.publisher', 'in', TASK_PUBLISHERS)
            .where('o.publishedAt', 'is', null)
            .where('o.deadLetteredAt', 'is', null)
            .where(payloadTaskId(), '=', sql<string>`${sql.ref('r.taskId')}::text`),
        ),
      ),
    )
    .orderBy('r.updatedAt')
    .limit(limit)
    .execute();
  return rows.map((row) => row.taskId);
}

/** A task with no run whose planning outcome may never have reached the executor. */
export interface UnrunTask {
  taskId: string;
  /** The planner's state: planned, failed or cancelled. */
  status: string;
  /** The planner's error (Json, unparsed). */
  error: unknown;
}

/**
 * Tasks the planner finished (planned, failed or cancelled) that have no run, have not changed for
 * `quietMs` and have no message still waiting in an outbox; oldest first.
 */
export async function quietUnrunTasks(source: DbOrTx, quietMs: number, limit: number): Promise<UnrunTask[]> {
  return queryable(source)
    .selectFrom('Task as t')
    .select(['t.id as taskId', 't.status', 't.error'])
    .where('t.status', 'in', ['planned', 'failed', 'cancelled'])
    .where('t.updatedAt', '<', utcNowMinus(quietMs))
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('TaskRun as r').select(sql.lit(1).as('one')).whereRef('r.taskId', '=', 't.id'))),
    )
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('Outbox as o')
            .select(sql.lit(1).as('one'))
            .where('o.publisher', 'in', TASK_PUBLISHERS)
            .where('o.publishedAt', 'is', null)
            .where('o.deadLetteredAt', 'is', null)
            .where(payloadTaskId(), '=', sql<string>`${sql.ref('t.id')}::text`),
        ),
      ),
    )
    .orderBy('t.updatedAt')
    .limit(limit)
    .execute();
}

/** The JSON path an outbox row's payload names its task by (`data.taskId`), as text. */
function payloadTaskId() {
  return sql<string>`${sql.ref('o.payload')}->'data'->>'taskId'`;
}

/**
 * `replanning` runs whose row and whose task row (the planner renews it while it plans) are both older
 * than `leaseMs` on the database's clock; oldest first.
 */
export async function staleReplanningTasks(
  source: DbOrTx,
  leaseMs: number,
  limit: number,
): Promise<string[]> {
  const before = utcNowMinus(leaseMs);
  const rows = await queryable(source)
    .selectFrom('TaskRun as r')
    .innerJoin('Task as t', 't.id', 'r.taskId')
    .select('r.taskId')
    .where('r.status', '=', 'replanning')
    .where('r.updatedAt', '<', before)
    .where('t.updatedAt', '<', before)
    .orderBy('r.updatedAt')
    .limit(limit)
    .execute();
  return rows.map((row) => row.taskId);
}
