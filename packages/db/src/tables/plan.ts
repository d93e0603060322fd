import type { PlanOrigin } from '@tandem/contracts';
import type { Selectable } from 'kysely';
import { json } from '../column-types.js';
import type { Plan as PlanTable } from '../generated/kysely.js';
import type { Tx } from '../transaction.js';
import { queryable, utcNow, type DbOrTx } from '../queryable.js';

// The only module that writes "Plan" (writer: planner). A task's plans are versions 1, 2, ...; the
// newest is `active` and every older one `superseded`.

/** Whether a plan version is the task's current one. */
export type PlanStatus = Selectable<PlanTable>['status'];

/** A plan version to store (always `active`). */
export interface NewPlan {
  id: string;
  taskId: string;
  version: number;
  strategy: string | null;
  models: readonly string[];
  qualityScore: number;
  attempts: number;
  origin: PlanOrigin;
  supersedesId: string | null;
  editedBy: string | null;
  editedByLabel: string | null;
  estimatedCostUsd: number;
}

/** Inserts a plan version as the task's active plan. */
export async function insertPlan(tx: Tx, plan: NewPlan): Promise<void> {
  await tx
    .insertInto('Plan')
    .values({
      id: plan.id,
      taskId: plan.taskId,
      version: plan.version,
      strategy: plan.strategy,
      modelsUsed: json(plan.models),
      qualityScore: plan.qualityScore,
      attempts: plan.attempts,
      status: 'active',
      origin: plan.origin,
      supersedesId: plan.supersedesId,
      editedBy: plan.editedBy,
      editedByLabel: plan.editedByLabel,
      estimatedCostUsd: plan.estimatedCostUsd,
      createdAt: utcNow(),
    })
    .execute();
}

/** Marks a plan version superseded, if it is still active. */
export async function supersedePlan(tx: Tx, planId: string): Promise<void> {
  await tx
    .updateTable('Plan')
    .set({ status: 'superseded' })
    .where('id', '=', planId)
    .where('status', '=', 'active')
    .execute();
}

/** A plan version's state and number, or null when it does not exist. */
export async function planState(
  db: DbOrTx,
  planId: string,
): Promise<{ status: PlanStatus; version: number } | null> {
  const row = await queryable(db)
    .selectFrom('Plan')
    .select(['status', 'version'])
    .where('id', '=', planId)
    .executeTakeFirst();
  return row ?? null;
}
