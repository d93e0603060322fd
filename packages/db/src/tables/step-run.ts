import { sql } from 'kysely';
import { json, type JsonInput } from '../column-types.js';
import { lockPlanForStepStart } from '../locks.js';
import { utcNow, utcNowMinus, queryable, type DbOrTx } from '../queryable.js';
import { type StepRunStatus } from '../reads/executor.js';
import { toJsonText } from '../text.js';
import type { Tx } from '../transaction.js';

/**
 * The only writer of StepRun (executor): one planned step's execution state. Every transition is a
 * conditional update on the state it leaves, so two replicas never do a step twice.
 */

/** Step states in which a step has not ended. */
export const UNFINISHED_STEP_STATUSES: readonly StepRunStatus[] = [
  'waiting',
  'approved',
  'generating',
  'running',
  'fixing',
];

/** How a step ended: its value, or its error. */
export type StepEnd = { status: 'completed'; value: unknown } | { status: 'failed'; error: unknown };

/**
 * Creates a `waiting` row for every step of a new plan version that has none yet (a decision may have
 * arrived first and created it); returns how many it created.
 */
export async function createWaitingSteps(
  tx: Tx,
  input: { taskId: string; stepIds: readonly string[] },
): Promise<number> {
  if (input.stepIds.length === 0) return 0;
  const result = await tx
    .insertInto('StepRun')
    .values(
      input.stepIds.map((stepId) => ({
        stepId,
        taskId: input.taskId,
        status: 'waiting' as const,
        attempts: 0,
        updatedAt: utcNow(),
      })),
    )
    .onConflict((conflict) => conflict.column('stepId').doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n);
}

/** Marks the steps of a replaced plan version that had not started `superseded`. */
export async function supersedeSteps(tx: Tx, planId: string): Promise<void> {
  await tx
    .updateTable('StepRun')
    .set({ status: 'superseded', finishedAt: utcNow(), updatedAt: utcNow() })
    .where('stepId', 'in', (eb) => eb.selectFrom('PlanStep').select('id').where('planId', '=', planId))
    .where('status', 'in', ['waiting', 'approved', 'fixing'])
    .execute();
}

/** A decision to record on a step. */
export interface StepDecision {
  stepId: string;
  status: 'approved' | 'rejected';
  approval: 'auto' | 'human';
  /** The rejection's error; null clears it. */
  error: unknown;
}

/**
 * Records policy decisions on a task's steps in one statement: a step that still waits takes its
 * decision; a step row the plan did not create yet is created with it; a step already decided or started
 * is left alone.
 */
export async function applyPolicyDecisions(
  tx: Tx,
  taskId: string,
  decisions: readonly StepDecision[],
): Promise<void> {
  if (decisions.length === 0) return;
  await tx
    .insertInto('StepRun')
    .values(
      decisions.map((decision) => ({
        stepId: decision.stepId,
        taskId,
        status: decision.status,
        approval: decision.approval,
        error: decision.error === null ? null : json(decision.error),
        attempts: 0,
        updatedAt: utcNow(),
      })),
    )
    .onConflict((conflict) =>
      conflict
        .column('stepId')
        .doUpdateSet((eb) => ({
          status: eb.ref('excluded.status'),
          approval: eb.ref('excluded.approval'),
          error: eb.ref('excluded.error'),
          updatedAt: eb.ref('excluded.updatedAt'),
        }))
        .where('StepRun.status', '=', 'waiting'),
    )
    .execute();
}

/**
 * Records a human's decision on one step: on a step that still waits (or has no row yet); a step already
 * decided or started is left alone. `result` (an answer) and `arguments` (an approver's edit) are set
 * only when given, `error` only when not null.
 */
export async function applyHumanDecision(
  tx: Tx,
  input: StepDecision & { taskId: string; result?: unknown; arguments?: unknown },
): Promise<void> {
  const now = new Date();
  const fields = {
    status: input.status,
    approval: input.approval,
    ...(input.error === null ? {} : { error: json(input.error) }),
    ...(input.result === undefined ? {} : { result: json(input.result) }),
    ...(input.arguments === undefined ? {} : { arguments: json(input.arguments) }),
    updatedAt: now,
  };
  await tx
    .insertInto('StepRun')
    .values({ stepId: input.stepId, taskId: input.taskId, attempts: 0, ...fields })
    .onConflict((conflict) =>
      conflict.column('stepId').doUpdateSet(fields).where('StepRun.status', '=', 'waiting'),
    )
    .execute();
}

/**
 * Claims a step for work that leaves the database (an HTTP call, the code model), holding the plan lock:
 * `from` -> `to`, or a `generating` claim older than `staleAfterMs` (a crashed replica's) when given.
 * `startRun` also stamps the start and counts an attempt. False when the plan was replaced or another
 * replica holds the step.
 */
export async function claimStep(
  tx: Tx,
  input: {
    planId: string;
    stepId: string;
    from: StepRunStatus;
    to: StepRunStatus;
    staleAfterMs?: number;
    startRun?: boolean;
  },
): Promise<boolean> {
  if (!(await lockPlanForStepStart(tx, input.planId))) return false;
  const stale = input.staleAfterMs;
  const updated = await tx
    .updateTable('StepRun')
    .set((eb) => ({
      status: input.to,
      updatedAt: utcNow(),
      ...(input.startRun === true ? { startedAt: utcNow(), attempts: eb('attempts', '+', 1) } : {}),
    }))
    .where('stepId', '=', input.stepId)
    .where((eb) =>
      stale === undefined
        ? eb('status', '=', input.from)
        : eb.or([
            eb('status', '=', input.from),
            eb.and([eb('status', '=', 'generating'), eb('updatedAt', '<', utcNowMinus(stale))]),
          ]),
    )
    .executeTakeFirst();
  return updated.numUpdatedRows === 1n;
}

/** An inline step's end, for {@link finishApprovedSteps}. */
export interface ApprovedStepEnd {
  stepId: string;
  end: StepEnd;
}

/**
 * Moves approved steps to their end states with their results or errors, in one statement; returns how
 * many were still approved (the caller compares it with how many it meant to finish). A completed step's
 * result is `{ value, stdout: '' }`, and it counts an attempt.
 */
export async function finishApprovedSteps(tx: Tx, steps: readonly ApprovedStepEnd[]): Promise<number> {
  if (steps.length === 0) return 0;
  const ends = sql<{
    stepId: string;
    status: 'completed' | 'failed';
    result: JsonInput | null;
    error: JsonInput | null;
  }>`unnest(
      ${steps.map((step) => step.stepId)}::uuid[],
      ${steps.map((step) => step.end.status)}::text[],
      ${steps.map((step) => (step.end.status === 'completed' ? toJsonText({ value: step.end.value, stdout: '' }) : null))}::jsonb[],
      ${steps.map((step) => (step.end.status === 'failed' ? toJsonText(step.end.error) : null))}::jsonb[])`.as<'v'>(
    sql`v("stepId", "status", "result", "error")`,
  );
  const updated = await tx
    .updateTable('StepRun as r')
    .from(ends)
    .set((eb) => ({
      status: eb.ref('v.status'),
      result: eb.ref('v.result'),
      error: eb.ref('v.error'),
      startedAt: utcNow(),
      finishedAt: utcNow(),
      updatedAt: utcNow(),
      attempts: sql<number>`${eb.ref('r.attempts')} + CASE WHEN ${eb.ref('v.status')} = 'completed' THEN 1 ELSE 0 END`,
    }))
    .whereRef('r.stepId', '=', 'v.stepId')
    .where('r.status', '=', 'approved')
    .executeTakeFirst();
  return Number(updated.numUpdatedRows);
}

/**
 * Moves a step from one of `from` to completed (result `{ value, stdout: '' }`) or failed, in the caller's
 * transaction; false when another replica moved it first.
 */
export async function finishStep(
  tx: Tx,
  input: { stepId: string; from: readonly StepRunStatus[]; end: StepEnd },
): Promise<boolean> {
  const now = new Date();
  const end = input.end;
  const updated = await tx
    .updateTable('StepRun')
    .set(
      end.status === 'completed'
        ? {
            status: 'completed',
            result: json({ value: end.value, stdout: '' }),
            finishedAt: now,
            updatedAt: now,
          }
        : { status: 'failed', error: json(end.error), finishedAt: now, updatedAt: now },
    )
    .where('stepId', '=', input.stepId)
    .where('status', 'in', [...input.from])
    .executeTakeFirst();
  return updated.numUpdatedRows === 1n;
}

/** What a `run_code` step needs of its row before a code-model call (Json columns unparsed). */
export interface CodeStepRow {
  status: StepRunStatus;
  code: string | null;
  attempts: number;
  error: unknown;
  result: unknown;
}

/** The step's row as a `run_code` start reads it; null when it has none. */
export async function codeStepOf(source: DbOrTx, stepId: string): Promise<CodeStepRow | null> {
  const row = await queryable(source)
    .selectFrom('StepRun')
    .select(['status', 'code', 'attempts', 'error', 'result'])
    .where('stepId', '=', stepId)
    .executeTakeFirst();
  return row ?? null;
}

/** Hands a `generating` claim back (`approved` or `fixing`), so a redelivered message can claim it again. */
export async function handBackStep(source: DbOrTx, stepId: string, to: 'approved' | 'fixing'): Promise<void> {
  await queryable(source)
    .updateTable('StepRun')
    .set({ status: to, updatedAt: new Date() })
    .where('stepId', '=', stepId)
    .where('status', '=', 'generating')
    .execute();
}

/** Renews a `generating` claim (its replica is still working on it). */
export async function renewStepClaim(source: DbOrTx, stepId: string): Promise<void> {
  await queryable(source)
    .updateTable('StepRun')
    .set({ updatedAt: utcNow() })
    .where('stepId', '=', stepId)
    .where('status', '=', 'generating')
    .execute();
}

/** A `generating` step becomes `running` with the code sent to the sandbox; false when the claim was lost. */
export async function startCodeRun(
  tx: Tx,
  input: { stepId: string; code: string; attempt: number },
): Promise<boolean> {
  const now = new Date();
  const updated = await tx
    .updateTable('StepRun')
    .set({ status: 'running', code: input.code, attempts: input.attempt, startedAt: now, updatedAt: now })
    .where('stepId', '=', input.stepId)
    .where('status', '=', 'generating')
    .executeTakeFirst();
  return updated.numUpdatedRows === 1n;
}

/** Which running attempt of a `run_code` step a sandbox result is for (null: whichever is running). */
export interface RunningAttempt {
  stepId: string;
  attempt: number | null;
}

/** Completes the running attempt of a `run_code` step with its result; false when it was not running. */
export async function completeCodeStep(
  tx: Tx,
  input: RunningAttempt & { result: unknown },
): Promise<boolean> {
  const now = new Date();
  const attempt = input.attempt;
  const updated = await tx
    .updateTable('StepRun')
    .set({ status: 'completed', result: json(input.result), finishedAt: now, updatedAt: now })
    .where('stepId', '=', input.stepId)
    .where('status', '=', 'running')
    .$if(attempt !== null, (query) => query.where('attempts', '=', attempt ?? 0))
    .executeTakeFirst();
  return updated.numUpdatedRows === 1n;
}

/**
 * Stores a failed sandbox result on the running attempt of a `run_code` step: `fixing` (the code model
 * is asked for a fix) or `failed`; false when it was not running.
 */
export async function settleFailedCodeStep(
  tx: Tx,
  input: RunningAttempt & { fix: boolean; error: unknown; result: unknown },
): Promise<boolean> {
  const now = new Date();
  const attempt = input.attempt;
  const updated = await tx
    .updateTable('StepRun')
    .set({
      status: input.fix ? 'fixing' : 'failed',
      error: json(input.error),
      result: json(input.result),
      ...(input.fix ? {} : { finishedAt: now }),
      updatedAt: now,
    })
    .where('stepId', '=', input.stepId)
    .where('status', '=', 'running')
    .$if(attempt !== null, (query) => query.where('attempts', '=', attempt ?? 0))
    .executeTakeFirst();
  return updated.numUpdatedRows === 1n;
}

/** Fails a step whose result was just stored (its files did not fit the workspace), in the same transaction. */
export async function failStoredStep(tx: Tx, stepId: string, error: unknown): Promise<void> {
  await tx
    .updateTable('StepRun')
    .set({ status: 'failed', error: json(error), updatedAt: new Date() })
    .where('stepId', '=', stepId)
    .execute();
}

/** Cancels every unfinished step of a task (the task ended). */
export async function cancelUnfinishedSteps(tx: Tx, taskId: string): Promise<void> {
  const now = new Date();
  await tx
    .updateTable('StepRun')
    .set({ status: 'cancelled', finishedAt: now, updatedAt: now })
    .where('taskId', '=', taskId)
    .where('status', 'in', [...UNFINISHED_STEP_STATUSES])
    .execute();
}

/** A step the stale-step sweep looks at (Json columns unparsed). */
export interface StaleStepRow {
  stepId: string;
  taskId: string;
  status: StepRunStatus;
  attempts: number;
  updatedAt: Date;
  code: string | null;
  /** The approver's edited arguments if any, else the planned ones. */
  arguments: unknown;
  stepKey: string;
  tool: string;
}

/**
 * Steps not changed since their lease ran out, oldest first: `generating` before `generatingBefore`; a
 * `running` `http_request` before `httpBefore`; a `running` `run_code` before `codeBefore` (null: none,
 * a sandbox is draining its queue); any other `running` step before `generatingBefore`.
 */
export async function staleSteps(
  source: DbOrTx,
  input: { before: Date; httpBefore: Date; codeBefore: Date | null; limit: number },
): Promise<StaleStepRow[]> {
  const codeBefore = input.codeBefore;
  return queryable(source)
    .selectFrom('StepRun as r')
    .innerJoin('PlanStep as s', 's.id', 'r.stepId')
    .select((eb) => [
      'r.stepId',
      'r.taskId',
      'r.status',
      'r.attempts',
      'r.updatedAt',
      'r.code',
      eb.fn.coalesce('r.arguments', 's.arguments').as('arguments'),
      's.stepKey',
      's.tool',
    ])
    .where((eb) =>
      eb.or([
        eb.and([eb('r.status', '=', 'generating'), eb('r.updatedAt', '<', input.before)]),
        eb.and([
          eb('r.status', '=', 'running'),
          eb('s.tool', 'not in', ['run_code', 'http_request']),
          eb('r.updatedAt', '<', input.before),
        ]),
        eb.and([
          eb('r.status', '=', 'running'),
          eb('s.tool', '=', 'http_request'),
          eb('r.updatedAt', '<', input.httpBefore),
        ]),
        ...(codeBefore === null
          ? []
          : [
              eb.and([
                eb('r.status', '=', 'running'),
                eb('s.tool', '=', 'run_code'),
                eb('r.updatedAt', '<', codeBefore),
              ]),
            ]),
      ]),
    )
    .orderBy('r.updatedAt')
    .limit(input.limit)
    .execute();
}

/**
 * Claims a lost sandbox job for a re-request: the running step, still at `attempts` and unchanged since
 * `updatedAt`, is touched (`now`); false when another replica claimed it or it moved on.
 */
export async function touchRunningCodeStep(
  tx: Tx,
  input: { stepId: string; attempts: number; updatedAt: Date; now: Date },
): Promise<boolean> {
  const updated = await tx
    .updateTable('StepRun')
    .set({ updatedAt: input.now })
    .where('stepId', '=', input.stepId)
    .where('status', '=', 'running')
    .where('attempts', '=', input.attempts)
    .where('updatedAt', '=', input.updatedAt)
    .executeTakeFirst();
  return updated.numUpdatedRows === 1n;
}
