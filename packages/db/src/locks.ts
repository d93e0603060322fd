import type { Tx } from './transaction.js';

/**
 * Row and advisory locks, each defined once. A lock lasts until the end of the caller's transaction.
 */

/**
 * Whether the plan is still `active`, holding a shared lock on its row until the transaction ends: every
 * step start takes it, and a plan edit takes the row FOR UPDATE, so an edit and a step start never both
 * win (docs/decisions/2026-11-26-plan-edit-row-lock.md).
 */
export async function lockActivePlan(tx: Tx, planId: string): Promise<boolean> {
  const row = await tx
    .selectFrom('Plan')
    .select('status')
    .where('id', '=', planId)
    .forShare()
    .executeTakeFirst();
  return row?.status === 'active';
}
