import { sql } from 'kysely';
import type { Tx } from './transaction.js';

/**
 * Row and advisory locks, each defined once. A lock lasts until the end of the caller's transaction.
 *
 * The plan row lock keeps a plan edit and a step start from both winning
 * (docs/decisions/2026-11-26-plan-edit-row-lock.md): an edit (planner) takes the active plan FOR UPDATE,
 * every step start (executor) takes it FOR SHARE and goes on only while the plan is still active.
 */

/** The task's newest active plan, its row locked FOR UPDATE for an edit; null when it has none. */
export async function lockActivePlanForEdit(
  tx: Tx,
  taskId: string,
): Promise<{ id: string; version: number } | null> {
  const row = await tx
    .selectFrom('Plan')
    .select(['id', 'version'])
    .where('taskId', '=', taskId)
    .where('status', '=', 'active')
    .orderBy('version', 'desc')
    .limit(1)
    .forUpdate()
    .executeTakeFirst();
  return row ?? null;
}

/** Whether the plan is still `active`, holding a shared lock on its row for a step start. */
export async function lockPlanForStepStart(tx: Tx, planId: string): Promise<boolean> {
  const row = await tx
    .selectFrom('Plan')
    .select('status')
    .where('id', '=', planId)
    .forShare()
    .executeTakeFirst();
  return row?.status === 'active';
}

/** Takes a transaction-scoped advisory lock on a text key (hashed to Postgres' 64-bit lock space). */
async function advisoryLock(tx: Tx, key: string): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtextextended(${key}::text, 0))`.execute(tx);
}

/**
 * Serialises the approval service's writes for one task (plan versions, values, cancellation), so v1
 * and v2 of a plan, or a plan and a cancellation, handled at once by two consumers or two replicas, see
 * each other's rows. Approval owns the lock namespace `approval:task:`.
 */
export async function lockApprovalTask(tx: Tx, taskId: string): Promise<void> {
  await advisoryLock(tx, `approval:task:${taskId}`);
}

/** The advisory lock key of the set of admin tokens (wire-stable: replicas of every version take it). */
export const ADMIN_TOKENS_LOCK = 'approval:tokens:admins';

/**
 * Serialises changes to the set of admin tokens (revoke, bootstrap, the launcher's tokens), so two
 * admins revoking each other, or two replicas bootstrapping at once, cannot leave zero or two.
 */
export async function lockAdminTokens(tx: Tx): Promise<void> {
  await advisoryLock(tx, ADMIN_TOKENS_LOCK);
}
