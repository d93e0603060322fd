import { randomUUID } from 'node:crypto';
import { json, type Db } from '@tandem/db';

// Test set-up and inspection of stored rows through the typed query builder (tests may reach tables
// directly; the services go through @tandem/db's modules).

/** How many tasks are stored. */
export async function taskCount(db: Db): Promise<number> {
  const rows = await db.kysely.selectFrom('Task').select('id').execute();
  return rows.length;
}

/** The outbox rows whose subject ends with `suffix` (all rows without one), oldest first. */
export async function outboxRows(
  db: Db,
  suffix?: string,
): Promise<Array<{ subject: string; payload: unknown; publisher: string }>> {
  let query = db.kysely.selectFrom('Outbox').select(['subject', 'payload', 'publisher', 'seq']);
  if (suffix !== undefined) query = query.where('subject', 'like', `%${suffix}`);
  const rows = await query.orderBy('seq').execute();
  return rows.map(({ subject, payload, publisher }) => ({ subject, payload, publisher }));
}

/** Whether a JSON payload holds `value` at `path` (e.g. `['data', 'taskId']`). */
export function payloadAt(payload: unknown, path: readonly string[]): unknown {
  let value: unknown = payload;
  for (const key of path) {
    if (typeof value !== 'object' || value === null || !(key in value)) return undefined;
    value = Reflect.get(value, key);
  }
  return value;
}

/** The plan versions of a task, oldest first. */
export async function plansOf(db: Db, taskId: string) {
  return db.kysely.selectFrom('Plan').selectAll().where('taskId', '=', taskId).orderBy('version').execute();
}

/**
 * Makes a stored task wait for approval of plan version 1 (one `respond` step), as planning would have
 * left it; returns the plan's id.
 */
export async function planTask(db: Db, taskId: string): Promise<string> {
  const planId = randomUUID();
  await db.kysely
    .updateTable('Task')
    .set({ status: 'planned', updatedAt: new Date() })
    .where('id', '=', taskId)
    .execute();
  await db.kysely.insertInto('Plan').values({ id: planId, taskId, version: 1, status: 'active' }).execute();
  await db.kysely
    .insertInto('PlanStep')
    .values({
      id: randomUUID(),
      planId,
      stepKey: 's1',
      index: 0,
      dependsOn: [],
      tool: 'respond',
      arguments: json({ answer: 'draft' }),
      riskClass: 'read',
      idempotencyKey: `${planId}:s1`,
    })
    .execute();
  return planId;
}

/** A pending human approval request of the task's plan for `group` (null: no group), as approval stores it. */
export async function approvalRequest(
  db: Db,
  task: { taskId: string; planId: string },
  group: string | null = null,
): Promise<void> {
  await db.kysely
    .insertInto('ApprovalRequest')
    .values({
      id: randomUUID(),
      taskId: task.taskId,
      planId: task.planId,
      mode: 'human',
      status: 'pending',
      approverGroup: group,
      updatedAt: new Date(),
    })
    .execute();
}
