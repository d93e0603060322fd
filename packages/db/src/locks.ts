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
