import { prepared } from '../prepared.js';
import { json } from '../column-types.js';
import { utcNow, utcNowMinus, queryable, type DbOrTx } from '../queryable.js';
import { type TaskRunStatus } from '../reads/executor.js';
import type { Tx } from '../transaction.js';

/**
 * The only writer of TaskRun (executor): a task's run, the plan version it runs and its outcome. Every
 * change of state is a conditional update, so replicas racing on one task change it once.
 */

/** Run states in which a task has not ended. */
export const UNFINISHED_RUN_STATUSES: readonly TaskRunStatus[] = ['running', 'replanning'];

/** A run's state and the plan it runs. */
export interface TaskRunHead {
  status: TaskRunStatus;
  planId: string | null;
}

/** The task's run, or null when it has none. */
export async function taskRunOf(source: DbOrTx, taskId: string): Promise<TaskRunHead | null> {
  const row = await queryable(source)
    .selectFrom('TaskRun')
    .select(['status', 'planId'])
    .where('taskId', '=', taskId)
    .executeTakeFirst();
  return row ?? null;
}

/** The state of the task's run (read by the planner and the sandbox-runner too), or null before it has one. */
export async function taskRunStatus(source: DbOrTx, taskId: string): Promise<TaskRunStatus | null> {
  return (await taskRunOf(source, taskId))?.status ?? null;
}

/**
 * The task's run locked FOR UPDATE until the transaction ends, with the version of the plan it runs
 * (so two plan versions arriving at once switch the run one after the other); null when it has none.
 */
export async function lockTaskRun(
  tx: Tx,
  taskId: string,
): Promise<(TaskRunHead & { planVersion: number | null }) | null> {
  const [row] = (await selectRunForUpdate(tx, { taskId })).rows;
  return row ?? null;
}

const selectRunForUpdate = prepared((db, p: { taskId: string }) =>
  db
    .selectFrom('TaskRun as r')
    .leftJoin('Plan as p', 'p.id', 'r.planId')
    .select(['r.status', 'r.planId', 'p.version as planVersion'])
    .where('r.taskId', '=', p.taskId)
    .forUpdate('r'),
);

/** Creates the `running` run of a task's first plan version. */
export async function insertRunningRun(tx: Tx, input: { taskId: string; planId: string }): Promise<void> {
  await tx
    .insertInto('TaskRun')
    .values({
      taskId: input.taskId,
      planId: input.planId,
      status: 'running',
      replans: 0,
      startedAt: utcNow(),
      updatedAt: utcNow(),
    })
    .execute();
}

/** Switches an unfinished run to a newer plan version, `running` again. */
export async function switchRunPlan(tx: Tx, input: { taskId: string; planId: string }): Promise<void> {
  await tx
    .updateTable('TaskRun')
    .set({ planId: input.planId, status: 'running', updatedAt: utcNow() })
    .where('taskId', '=', input.taskId)
    .where('status', 'in', [...UNFINISHED_RUN_STATUSES])
    .execute();
}

/** Completes a running task with its result; false when it was no longer running. */
export async function completeRun(tx: Tx, taskId: string, result: unknown): Promise<boolean> {
  const updated = await tx
    .updateTable('TaskRun')
    .set({ status: 'completed', result: json(result), finishedAt: utcNow(), updatedAt: utcNow() })
    .where('taskId', '=', taskId)
    .where('status', '=', 'running')
    .executeTakeFirst();
  return updated.numUpdatedRows === 1n;
}

/** How a run ends other than completed: its state and stored error. */
export interface RunEnd {
  status: 'failed' | 'cancelled';
  error: unknown;
}

/** Ends an unfinished run failed or cancelled; false when it had ended already. */
export async function endRun(tx: Tx, taskId: string, end: RunEnd): Promise<boolean> {
  const now = new Date();
  const updated = await tx
    .updateTable('TaskRun')
    .set({ status: end.status, error: json(end.error), finishedAt: now, updatedAt: now })
    .where('taskId', '=', taskId)
    .where('status', 'in', [...UNFINISHED_RUN_STATUSES])
    .executeTakeFirst();
  return updated.numUpdatedRows === 1n;
}

/** Creates the run of a task that ends before it ran (failed or cancelled while being planned). */
export async function insertEndedRun(
  tx: Tx,
  input: { taskId: string; planId: string | null } & RunEnd,
): Promise<void> {
  const now = new Date();
  await tx
    .insertInto('TaskRun')
    .values({
      taskId: input.taskId,
      planId: input.planId,
      status: input.status,
      error: json(input.error),
      finishedAt: now,
      updatedAt: now,
    })
    .execute();
}

/**
 * Moves a running run of `planId` that has asked for `replans` re-plans so far to `replanning`, counting
 * one more; false when the run changed meanwhile.
 */
export async function startReplanning(
  tx: Tx,
  input: { taskId: string; planId: string; replans: number },
): Promise<boolean> {
  const updated = await tx
    .updateTable('TaskRun')
    .set((eb) => ({ status: 'replanning', replans: eb('replans', '+', 1), updatedAt: new Date() }))
    .where('taskId', '=', input.taskId)
    .where('status', '=', 'running')
    .where('planId', '=', input.planId)
    .where('replans', '=', input.replans)
    .executeTakeFirst();
  return updated.numUpdatedRows === 1n;
}

/**
 * Claims a re-plan to ask for again: a `replanning` run of `planId` not touched for `leaseMs` is touched;
 * false when another replica claimed it first or the run moved on.
 */
export async function claimStaleReplanning(
  tx: Tx,
  input: { taskId: string; planId: string; leaseMs: number },
): Promise<boolean> {
  const updated = await tx
    .updateTable('TaskRun')
    .set({ updatedAt: utcNow() })
    .where('taskId', '=', input.taskId)
    .where('status', '=', 'replanning')
    .where('planId', '=', input.planId)
    .where('updatedAt', '<', utcNowMinus(input.leaseMs))
    .executeTakeFirst();
  return updated.numUpdatedRows === 1n;
}

/** Marks a running run as looked at now (the stuck sweep judges it again after another quiet period). */
export async function touchRunningRun(source: DbOrTx, taskId: string): Promise<void> {
  await queryable(source)
    .updateTable('TaskRun')
    .set({ updatedAt: utcNow() })
    .where('taskId', '=', taskId)
    .where('status', '=', 'running')
    .execute();
}
