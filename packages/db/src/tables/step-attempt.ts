import { json } from '../column-types.js';
import { queryable, type DbOrTx } from '../queryable.js';
import type { DB } from '../generated/kysely.js';
import type { Tx } from '../transaction.js';

/**
 * The only writer of StepAttempt (executor): every attempt at a `run_code` step (given, generated or
 * fixed code), its sandbox key, how often its job was requested and how it ended.
 */

/** Where an attempt's code came from. */
export type StepAttemptOrigin = DB['StepAttempt']['origin'];
/** How an attempt ended (`running` while its job is out). */
export type StepAttemptOutcome = DB['StepAttempt']['outcome'];

/** An attempt to record. */
export interface NewStepAttempt {
  id: string;
  stepId: string;
  taskId: string;
  attempt: number;
  origin: StepAttemptOrigin;
  outcome: StepAttemptOutcome;
  code?: string | null;
  sandboxKey?: string | null;
  error?: unknown;
  finishedAt?: Date | null;
}

/** Records an attempt once: a second record of the same (step, attempt) changes nothing. */
export async function recordAttempt(source: DbOrTx, attempt: NewStepAttempt): Promise<void> {
  await queryable(source)
    .insertInto('StepAttempt')
    .values({
      id: attempt.id,
      stepId: attempt.stepId,
      taskId: attempt.taskId,
      attempt: attempt.attempt,
      origin: attempt.origin,
      outcome: attempt.outcome,
      code: attempt.code ?? null,
      sandboxKey: attempt.sandboxKey ?? null,
      error: attempt.error === undefined ? null : json(attempt.error),
      finishedAt: attempt.finishedAt ?? null,
    })
    .onConflict((conflict) => conflict.doNothing())
    .execute();
}

/** Stores how an attempt ended (and its error, when given). */
export async function finishAttempt(
  tx: Tx,
  input: { stepId: string; attempt: number; outcome: StepAttemptOutcome; error?: unknown; finishedAt: Date },
): Promise<void> {
  await tx
    .updateTable('StepAttempt')
    .set({
      outcome: input.outcome,
      ...(input.error === undefined ? {} : { error: json(input.error) }),
      finishedAt: input.finishedAt,
    })
    .where('stepId', '=', input.stepId)
    .where('attempt', '=', input.attempt)
    .execute();
}

/** Counts one more request of an attempt's sandbox job (a lost job requested again with the same key). */
export async function countSandboxRequest(tx: Tx, input: { stepId: string; attempt: number }): Promise<void> {
  await tx
    .updateTable('StepAttempt')
    .set((eb) => ({ requests: eb('requests', '+', 1) }))
    .where('stepId', '=', input.stepId)
    .where('attempt', '=', input.attempt)
    .execute();
}

/** Ends an attempt whose job is still out `lease_expired` (its step failed STEP.LEASE_EXPIRED). */
export async function expireAttempt(
  source: DbOrTx,
  input: { stepId: string; attempt: number; finishedAt: Date },
): Promise<void> {
  await queryable(source)
    .updateTable('StepAttempt')
    .set({ outcome: 'lease_expired', finishedAt: input.finishedAt })
    .where('stepId', '=', input.stepId)
    .where('attempt', '=', input.attempt)
    .where('outcome', '=', 'running')
    .execute();
}

/** What the stale-step sweep needs of an attempt whose job is out. */
export interface AttemptJob {
  requests: number;
  sandboxKey: string | null;
  code: string | null;
}

/** One attempt's job; null when the attempt was never recorded. */
export async function attemptJobOf(
  source: DbOrTx,
  input: { stepId: string; attempt: number },
): Promise<AttemptJob | null> {
  const row = await queryable(source)
    .selectFrom('StepAttempt')
    .select(['requests', 'sandboxKey', 'code'])
    .where('stepId', '=', input.stepId)
    .where('attempt', '=', input.attempt)
    .executeTakeFirst();
  return row ?? null;
}

/** When the newest sandbox result was stored (an attempt that ended with a sandbox outcome); null: never. */
export async function newestSandboxResultAt(source: DbOrTx): Promise<Date | null> {
  const row = await queryable(source)
    .selectFrom('StepAttempt')
    .select((eb) => eb.fn.max('finishedAt').as('newest'))
    .where('outcome', 'not in', ['running', 'generation_failed', 'lease_expired'])
    .executeTakeFirst();
  return row?.newest ?? null;
}
