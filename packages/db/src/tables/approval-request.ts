import { sql, type Selectable } from 'kysely';
import { json } from '../column-types.js';
import type { ApprovalRequest as ApprovalRequestTable } from '../generated/kysely.js';
import { prepared } from '../prepared.js';
import { utcNow, utcNowPlus, queryable, type DbOrTx } from '../queryable.js';
import type { Tx } from '../transaction.js';

// The only module that writes "ApprovalRequest" (writer: approval). One request per planned step; every
// change of state is conditional on the state it leaves, so a human decision, an expiry, a newer plan
// and a cancellation racing for one request never both win.

/** A request's state (`escalated` is allowed for the API's filter, never stored). */
export type ApprovalStatus = Selectable<ApprovalRequestTable>['status'];
/** approval | question. */
export type ApprovalKind = Selectable<ApprovalRequestTable>['kind'];
/** auto | human. */
export type ApprovalMode = Selectable<ApprovalRequestTable>['mode'];
/** reject | escalate. */
export type ApprovalOnExpiry = NonNullable<Selectable<ApprovalRequestTable>['onExpiry']>;
/** A risk level as stored (contracts' RiskLevel). */
export type StoredRiskLevel = NonNullable<Selectable<ApprovalRequestTable>['riskLevel']>;

/** A stored request: its Json columns (`riskReasons`, `editedArguments`, `resolvedArguments`) unparsed. */
export type StoredApprovalRequest = Pick<
  Selectable<ApprovalRequestTable>,
  | 'id'
  | 'taskId'
  | 'planId'
  | 'stepId'
  | 'agentId'
  | 'tool'
  | 'riskClass'
  | 'riskLevel'
  | 'riskReasons'
  | 'trustAtDecision'
  | 'kind'
  | 'question'
  | 'mode'
  | 'status'
  | 'deadline'
  | 'decidedBy'
  | 'decidedAt'
  | 'reason'
  | 'editedArguments'
  | 'resolvedArguments'
  | 'argumentsHash'
  | 'answer'
  | 'actionClass'
  | 'basis'
  | 'approverGroup'
  | 'escalationLevel'
  | 'onExpiry'
  | 'remindedAt'
  | 'revertedAt'
  | 'createdAt'
>;

const COLUMNS = [
  'r.id',
  'r.taskId',
  'r.planId',
  'r.stepId',
  'r.agentId',
  'r.tool',
  'r.riskClass',
  'r.riskLevel',
  'r.riskReasons',
  'r.trustAtDecision',
  'r.kind',
  'r.question',
  'r.mode',
  'r.status',
  'r.deadline',
  'r.decidedBy',
  'r.decidedAt',
  'r.reason',
  'r.editedArguments',
  'r.resolvedArguments',
  'r.argumentsHash',
  'r.answer',
  'r.actionClass',
  'r.basis',
  'r.approverGroup',
  'r.escalationLevel',
  'r.onExpiry',
  'r.remindedAt',
  'r.revertedAt',
  'r.createdAt',
] as const;

function requests(source: DbOrTx) {
  return queryable(source).selectFrom('ApprovalRequest as r').select(COLUMNS);
}

/**
 * Requests by status (`escalated`: pending after an escalation), task and limit, oldest first. `groups`
 * limits them to what an approver token sees: those groups' requests, or with no groups the requests
 * without a group; absent, every request.
 */
export async function listApprovalRequests(
  source: DbOrTx,
  filter: { status?: ApprovalStatus; taskId?: string; limit: number; groups?: readonly string[] },
): Promise<StoredApprovalRequest[]> {
  let query = requests(source);
  if (filter.groups !== undefined && filter.groups.length === 0)
    query = query.where('r.approverGroup', 'is', null);
  else if (filter.groups !== undefined) query = query.where('r.approverGroup', 'in', [...filter.groups]);
  if (filter.status === 'escalated')
    query = query.where('r.status', '=', 'pending').where('r.escalationLevel', '>', 0);
  else if (filter.status !== undefined) query = query.where('r.status', '=', filter.status);
  if (filter.taskId !== undefined) query = query.where('r.taskId', '=', filter.taskId);
  return query.orderBy('r.createdAt', 'asc').orderBy('r.id', 'asc').limit(filter.limit).execute();
}

/** One request by its id or its step's id, or null. */
export async function findApprovalRequest(
  source: DbOrTx,
  by: { id: string } | { stepId: string },
): Promise<StoredApprovalRequest | null> {
  const query =
    'id' in by
      ? requests(source).where('r.id', '=', by.id)
      : requests(source).where('r.stepId', '=', by.stepId);
  return (await query.executeTakeFirst()) ?? null;
}

/** {@link findApprovalRequest}, the row locked (FOR UPDATE) until the transaction ends. */
export async function lockApprovalRequest(
  tx: Tx,
  by: { id: string } | { stepId: string },
): Promise<StoredApprovalRequest | null> {
  const query =
    'id' in by ? requests(tx).where('r.id', '=', by.id) : requests(tx).where('r.stepId', '=', by.stepId);
  return (await query.forUpdate().executeTakeFirst()) ?? null;
}

/** Whether any request of the task waits for the values it references (one indexed read). */
export async function hasRequestAwaitingValues(source: DbOrTx, taskId: string): Promise<boolean> {
  return (await selectAwaitingValues(source, { taskId })).rows.length > 0;
}

const selectAwaitingValues = prepared((db, p: { taskId: string }) =>
  db
    .selectFrom('ApprovalRequest')
    .select('id')
    .where('taskId', '=', p.taskId)
    .where('status', '=', 'awaiting-values')
    .limit(1),
);

/** The task's requests that wait for values, oldest first. */
export async function requestsAwaitingValues(tx: Tx, taskId: string): Promise<StoredApprovalRequest[]> {
  return requests(tx)
    .where('r.taskId', '=', taskId)
    .where('r.status', '=', 'awaiting-values')
    .orderBy('r.createdAt')
    .execute();
}

/** The task's requests still open (pending or awaiting values), oldest first: what a cancel ends. */
export async function openApprovalRequests(tx: Tx, taskId: string): Promise<StoredApprovalRequest[]> {
  return requests(tx)
    .where('r.taskId', '=', taskId)
    .where('r.status', 'in', ['pending', 'awaiting-values'])
    .orderBy('r.createdAt', 'asc')
    .execute();
}

/**
 * The requests of one plan version of a task (`planVersion`, or the task's newest when null), each with
 * its step's key: what a task's outcome is counted against.
 */
export async function approvalRequestsOfPlanVersion(
  source: DbOrTx,
  taskId: string,
  planVersion: number | null,
): Promise<Array<StoredApprovalRequest & { stepKey: string }>> {
  return requests(source)
    .innerJoin('Plan as p', 'p.id', 'r.planId')
    .innerJoin('PlanStep as s', 's.id', 'r.stepId')
    .select('s.stepKey')
    .where('r.taskId', '=', taskId)
    .where((eb) =>
      eb(
        'p.version',
        '=',
        planVersion ??
          eb
            .selectFrom('Plan')
            .select((inner) => inner.fn.max('version').as('max'))
            .where('taskId', '=', taskId),
      ),
    )
    .execute();
}

/** The approver group of each of a task's requests (distinct; null: a request without a group). */
export async function approverGroupsOfTask(source: DbOrTx, taskId: string): Promise<Array<string | null>> {
  const rows = await queryable(source)
    .selectFrom('ApprovalRequest')
    .select('approverGroup')
    .distinct()
    .where('taskId', '=', taskId)
    .execute();
  return rows.map((row) => row.approverGroup);
}

/** A request to create. */
export interface NewApprovalRequest {
  id: string;
  taskId: string;
  planId: string;
  stepId: string;
  agentId: string | null;
  tool: string;
  riskClass: NonNullable<StoredApprovalRequest['riskClass']>;
  riskLevel: StoredRiskLevel;
  /** The risk reasons (JSON). */
  riskReasons: unknown;
  trustAtDecision: number | null;
  actionClass: string;
  basis: string;
  kind: ApprovalKind;
  question: string | null;
  mode: ApprovalMode;
  status: ApprovalStatus;
  reason: string;
  deadline: Date | null;
  approverGroup: string | null;
  onExpiry: ApprovalOnExpiry | null;
  decidedAt: Date | null;
  decidedBy: string | null;
  argumentsHash: string;
  createdAt: Date;
}

/** Inserts requests in the caller's transaction, one statement. */
export async function insertApprovalRequests(tx: Tx, rows: readonly NewApprovalRequest[]): Promise<void> {
  if (rows.length === 0) return;
  await tx
    .insertInto('ApprovalRequest')
    .values(
      rows.map((row) => ({
        id: row.id,
        taskId: row.taskId,
        planId: row.planId,
        stepId: row.stepId,
        agentId: row.agentId,
        tool: row.tool,
        riskClass: row.riskClass,
        riskLevel: row.riskLevel,
        riskReasons: json(row.riskReasons),
        trustAtDecision: row.trustAtDecision,
        actionClass: row.actionClass,
        basis: row.basis,
        kind: row.kind,
        question: row.question,
        mode: row.mode,
        status: row.status,
        reason: row.reason,
        deadline: row.deadline,
        approverGroup: row.approverGroup,
        onExpiry: row.onExpiry,
        decidedAt: row.decidedAt,
        decidedBy: row.decidedBy,
        argumentsHash: row.argumentsHash,
        createdAt: row.createdAt,
        updatedAt: row.createdAt,
      })),
    )
    .execute();
}

/**
 * Marks the task's still open requests of the replaced plans `superseded` (a decision that committed
 * first keeps its request); returns the requests it changed.
 */
export async function supersedeApprovalRequests(
  tx: Tx,
  input: { taskId: string; planIds: readonly string[]; decidedBy: string; reason: string; at: Date },
): Promise<Array<{ id: string; stepId: string | null; planId: string }>> {
  if (input.planIds.length === 0) return [];
  return tx
    .updateTable('ApprovalRequest')
    .set({
      status: 'superseded',
      decidedAt: input.at,
      decidedBy: input.decidedBy,
      reason: input.reason,
      updatedAt: input.at,
    })
    .where('taskId', '=', input.taskId)
    .where('planId', 'in', [...input.planIds])
    .where('status', 'in', ['pending', 'awaiting-values'])
    .returning(['id', 'stepId', 'planId'])
    .execute();
}

/** Cancels one request if it is still in `from` (a decision that committed first keeps it). */
export async function cancelApprovalRequest(
  tx: Tx,
  input: { id: string; from: ApprovalStatus; at: Date; decidedBy: string | null; reason: string },
): Promise<boolean> {
  const result = await tx
    .updateTable('ApprovalRequest')
    .set({
      status: 'cancelled',
      decidedAt: input.at,
      decidedBy: input.decidedBy,
      reason: input.reason,
      updatedAt: input.at,
    })
    .where('id', '=', input.id)
    .where('status', '=', input.from)
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

/**
 * Turns a request whose step changed into a new pending request for a human (the second judgement's
 * risk, basis, group and deadline, bound to the changed arguments), if it is still open.
 */
export async function reRequestApproval(
  tx: Tx,
  input: {
    id: string;
    riskLevel: StoredRiskLevel;
    riskReasons: unknown;
    basis: string;
    reason: string;
    approverGroup: string | null;
    onExpiry: ApprovalOnExpiry;
    deadlineMs: number;
    editedArguments: unknown;
    argumentsHash: string;
  },
): Promise<boolean> {
  const result = await tx
    .updateTable('ApprovalRequest')
    .set({
      status: 'pending',
      mode: 'human',
      riskLevel: input.riskLevel,
      riskReasons: json(input.riskReasons),
      basis: input.basis,
      reason: input.reason,
      approverGroup: input.approverGroup,
      escalationLevel: 0,
      onExpiry: input.onExpiry,
      deadline: utcNowPlus(input.deadlineMs),
      remindedAt: null,
      editedArguments: json(input.editedArguments),
      argumentsHash: input.argumentsHash,
      decidedBy: null,
      decidedAt: null,
      updatedAt: utcNow(),
    })
    .where('id', '=', input.id)
    .where('status', 'in', ['pending', 'awaiting-values'])
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

/**
 * Records a human decision on a pending request. Edited arguments (and their hash) replace the stored
 * ones; without, the stored ones stay. False when the request is no longer pending.
 */
export async function decideApprovalRequest(
  tx: Tx,
  input: {
    id: string;
    status: 'approved' | 'rejected' | 'answered';
    decidedBy: string;
    reason: string | null;
    answer: string | null;
    edited: { arguments: unknown; argumentsHash: string } | null;
  },
): Promise<boolean> {
  const result = await tx
    .updateTable('ApprovalRequest')
    .set({
      status: input.status,
      mode: 'human',
      decidedBy: input.decidedBy,
      decidedAt: utcNow(),
      reason: input.reason,
      answer: input.answer,
      ...(input.edited === null
        ? {}
        : { editedArguments: json(input.edited.arguments), argumentsHash: input.edited.argumentsHash }),
      updatedAt: utcNow(),
    })
    .where('id', '=', input.id)
    .where('status', '=', 'pending')
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

/**
 * Records the judgement of a request that waited for values, if it still waits: decided by policy
 * (`human` null), or pending for a human with a group, an expiry action and a deadline.
 */
export async function judgeApprovalWithValues(
  tx: Tx,
  input: {
    id: string;
    status: 'approved' | 'rejected' | 'pending';
    resolvedArguments: unknown;
    argumentsHash: string;
    riskLevel: StoredRiskLevel;
    riskReasons: unknown;
    basis: string;
    reason: string;
    trustAtDecision: number | null;
    actionClass: string;
    decidedBy: string | null;
    human: { approverGroup: string | null; onExpiry: ApprovalOnExpiry; deadlineMs: number } | null;
  },
): Promise<void> {
  await tx
    .updateTable('ApprovalRequest')
    .set({
      status: input.status,
      mode: input.human === null ? 'auto' : 'human',
      resolvedArguments: json(input.resolvedArguments),
      argumentsHash: input.argumentsHash,
      riskLevel: input.riskLevel,
      riskReasons: json(input.riskReasons),
      basis: input.basis,
      reason: input.reason,
      trustAtDecision: input.trustAtDecision,
      actionClass: input.actionClass,
      decidedBy: input.decidedBy,
      decidedAt: input.decidedBy === null ? null : utcNow(),
      approverGroup: input.human?.approverGroup ?? null,
      onExpiry: input.human?.onExpiry ?? null,
      deadline: input.human === null ? null : utcNowPlus(input.human.deadlineMs),
      updatedAt: utcNow(),
    })
    .where('id', '=', input.id)
    .where('status', '=', 'awaiting-values')
    .execute();
}

/**
 * Claims up to `limit` pending requests past their deadline, earliest first, skipping rows another
 * transaction holds (FOR UPDATE SKIP LOCKED): replicas share the sweep, and a human decision racing an
 * expiry either commits first or waits for it.
 */
export async function claimDueApprovalRequests(tx: Tx, limit: number): Promise<StoredApprovalRequest[]> {
  return requests(tx)
    .where('r.status', '=', 'pending')
    .where('r.deadline', '<=', utcNow())
    .orderBy('r.deadline')
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .execute();
}

/**
 * Claims up to `limit` pending requests not yet reminded whose deadline is within `leadMs` and whose
 * wait is longer than the lead (FOR UPDATE SKIP LOCKED).
 */
export async function claimApprovalRequestsToRemind(
  tx: Tx,
  input: { leadMs: number; limit: number },
): Promise<StoredApprovalRequest[]> {
  const lead = sql<string>`${input.leadMs / 1000}::float8 * interval '1 second'`;
  return requests(tx)
    .where('r.status', '=', 'pending')
    .where('r.remindedAt', 'is', null)
    .where('r.deadline', '>', utcNow())
    .where(sql<boolean>`r."deadline" <= (now() AT TIME ZONE 'UTC') + ${lead}`)
    .where(sql<boolean>`r."deadline" - r."updatedAt" > ${lead}`)
    .orderBy('r.deadline')
    .limit(input.limit)
    .forUpdate()
    .skipLocked()
    .execute();
}

/** Records that a request's reminder was queued. */
export async function markApprovalReminded(tx: Tx, id: string): Promise<void> {
  await tx
    .updateTable('ApprovalRequest')
    .set({ remindedAt: utcNow(), updatedAt: utcNow() })
    .where('id', '=', id)
    .execute();
}

/**
 * Escalates a pending request once to `group` with a new deadline (`deadlineMs` from now; it is then
 * rejected at its deadline); returns the row as changed, or null when it is no longer pending.
 */
export async function escalateApprovalRequest(
  tx: Tx,
  input: { id: string; group: string; deadlineMs: number },
): Promise<StoredApprovalRequest | null> {
  const updated = await tx
    .updateTable('ApprovalRequest as r')
    .set((eb) => ({
      escalationLevel: eb('r.escalationLevel', '+', 1),
      approverGroup: input.group,
      onExpiry: 'reject' as const,
      deadline: utcNowPlus(input.deadlineMs),
      remindedAt: null,
      updatedAt: utcNow(),
    }))
    .where('r.id', '=', input.id)
    .where('r.status', '=', 'pending')
    .returning(COLUMNS)
    .executeTakeFirst();
  return updated ?? null;
}

/** Expires a pending request (decided by `policy:expiry`). */
export async function expireApprovalRequest(tx: Tx, input: { id: string; reason: string }): Promise<void> {
  await tx
    .updateTable('ApprovalRequest')
    .set({
      status: 'expired',
      decidedBy: 'policy:expiry',
      decidedAt: utcNow(),
      reason: input.reason,
      updatedAt: utcNow(),
    })
    .where('id', '=', input.id)
    .where('status', '=', 'pending')
    .execute();
}

/** Marks a request's step reverted, once; returns when, or null when it was reverted before. */
export async function revertApprovalRequest(
  tx: Tx,
  input: { id: string; revertedBy: string; reason: string },
): Promise<Date | null> {
  const row = await tx
    .updateTable('ApprovalRequest')
    .set({
      revertedAt: utcNow(),
      revertedBy: input.revertedBy,
      revertReason: input.reason,
      updatedAt: utcNow(),
    })
    .where('id', '=', input.id)
    .where('revertedAt', 'is', null)
    .returning('revertedAt')
    .executeTakeFirst();
  return row?.revertedAt ?? null;
}
