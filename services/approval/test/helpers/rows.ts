import { json, type Db, type StepRunStatus } from '@tandem/db';

// Test set-up and inspection of stored rows through the typed query builder (tests may reach tables
// directly; the service goes through @tandem/db's modules).

/** Which approval requests to read. */
export interface RequestFilter {
  id?: string;
  taskId?: string;
  planId?: string;
  stepId?: string;
  tool?: string;
}

/** The approval requests matching `filter`, ordered by `orderBy` (default: creation, then id). */
export async function requestsWhere(
  db: Db,
  filter: RequestFilter,
  orderBy: 'createdAt' | 'id' | 'tool' = 'createdAt',
) {
  let query = db.kysely.selectFrom('ApprovalRequest').selectAll();
  if (filter.id !== undefined) query = query.where('id', '=', filter.id);
  if (filter.taskId !== undefined) query = query.where('taskId', '=', filter.taskId);
  if (filter.planId !== undefined) query = query.where('planId', '=', filter.planId);
  if (filter.stepId !== undefined) query = query.where('stepId', '=', filter.stepId);
  if (filter.tool !== undefined) query = query.where('tool', '=', filter.tool);
  return query.orderBy(orderBy).orderBy('id').execute();
}

/** The first approval request matching `filter`; throws when there is none. */
export async function requestWhere(db: Db, filter: RequestFilter) {
  const [row] = await requestsWhere(db, filter);
  if (row === undefined) throw new Error(`no approval request matches ${JSON.stringify(filter)}`);
  return row;
}

/** Audit rows in the order written: of one subject, of some actions, or all. */
export async function auditRows(db: Db, filter: { subjectId?: string; actions?: readonly string[] } = {}) {
  let query = db.kysely.selectFrom('AuditLog').selectAll();
  if (filter.subjectId !== undefined) query = query.where('subjectId', '=', filter.subjectId);
  if (filter.actions !== undefined) query = query.where('action', 'in', [...filter.actions]);
  return query.orderBy('seq').execute();
}

/** How many audit rows exist (of `filter`). */
export async function auditCount(
  db: Db,
  filter: { subjectId?: string; actions?: readonly string[] } = {},
): Promise<number> {
  return (await auditRows(db, filter)).length;
}

/** Outbox rows of a publisher (all without one), oldest first. */
export async function outboxRows(db: Db, publisher?: string) {
  let query = db.kysely.selectFrom('Outbox').select(['id', 'subject', 'payload', 'publisher', 'seq']);
  if (publisher !== undefined) query = query.where('publisher', '=', publisher);
  return query.orderBy('seq').execute();
}

/** How many inbox rows a consumer has (for one message id, when given). */
export async function processedCount(db: Db, consumer: string, messageId?: string): Promise<number> {
  let query = db.kysely.selectFrom('ProcessedMessage').select('messageId').where('consumer', '=', consumer);
  if (messageId !== undefined) query = query.where('messageId', '=', messageId);
  return (await query.execute()).length;
}

/** The dead letters of a consumer, in stream order. */
export async function deadLettersOf(db: Db, consumer: string) {
  return db.kysely
    .selectFrom('DeadLetter')
    .selectAll()
    .where('consumer', '=', consumer)
    .orderBy('streamSeq')
    .execute();
}

/** An agent's trust in one action class, or undefined. */
export async function trustOf(db: Db, agentId: string, actionClass: string) {
  return db.kysely
    .selectFrom('AgentTrust')
    .selectAll()
    .where('agentId', '=', agentId)
    .where('actionClass', '=', actionClass)
    .executeTakeFirst();
}

/** An agent's trust events in one class, oldest first. */
export async function trustEventsOf(db: Db, agentId: string, actionClass: string) {
  return db.kysely
    .selectFrom('TrustEvent')
    .selectAll()
    .where('agentId', '=', agentId)
    .where('actionClass', '=', actionClass)
    .orderBy('createdAt')
    .execute();
}

/** Stores (or overwrites) an agent's trust in one class, as earned trust would have left it. */
export async function setTrust(
  db: Db,
  agentId: string,
  actionClass: string,
  state: { score: number; successes: number },
): Promise<void> {
  await db.kysely
    .insertInto('Agent')
    .values({ id: agentId })
    .onConflict((oc) => oc.doNothing())
    .execute();
  await db.kysely
    .insertInto('AgentTrust')
    .values({ agentId, actionClass, ...state, updatedAt: new Date() })
    .onConflict((oc) => oc.columns(['agentId', 'actionClass']).doUpdateSet(state))
    .execute();
}

/** A StepRun row (the executor's) for a step, e.g. `completed` with its result. */
export async function storeStepRun(
  db: Db,
  row: { stepId: string; taskId: string; status: StepRunStatus; result?: unknown },
): Promise<void> {
  await db.kysely
    .insertInto('StepRun')
    .values({
      stepId: row.stepId,
      taskId: row.taskId,
      status: row.status,
      result: row.result === undefined ? null : json(row.result),
      updatedAt: new Date(),
    })
    .execute();
}

/** An API token row by id or hash; throws when there is none. */
export async function tokenWhere(db: Db, by: { id: string } | { tokenHash: string }) {
  const query = db.kysely.selectFrom('ApiToken').selectAll();
  return (
    'id' in by ? query.where('id', '=', by.id) : query.where('tokenHash', '=', by.tokenHash)
  ).executeTakeFirstOrThrow();
}

/** How many API tokens exist: of a role, revoked or not (absent: either). */
export async function tokenCount(
  db: Db,
  filter: { role?: 'admin' | 'approver' | 'submitter'; revoked?: boolean } = {},
): Promise<number> {
  let query = db.kysely.selectFrom('ApiToken').select('id');
  if (filter.role !== undefined) query = query.where('role', '=', filter.role);
  if (filter.revoked === true) query = query.where('revokedAt', 'is not', null);
  if (filter.revoked === false) query = query.where('revokedAt', 'is', null);
  return (await query.execute()).length;
}

/** Deletes every API token. */
export async function deleteTokens(db: Db): Promise<void> {
  await db.kysely.deleteFrom('ApiToken').execute();
}

/** Revokes every token of a role (as if an operator had). */
export async function revokeRole(db: Db, role: 'admin' | 'approver' | 'submitter'): Promise<void> {
  await db.kysely.updateTable('ApiToken').set({ revokedAt: new Date() }).where('role', '=', role).execute();
}
