import { sql } from 'kysely';
import { prepared } from '../prepared.js';
import {
  JsonValue,
  TaskBudget,
  TaskModelPreference,
  type ErrorShape as ErrorShapeType,
  type JsonValue as JsonValueType,
  type TaskBudget as TaskBudgetType,
  type TaskModelPreference as TaskModelPreferenceType,
} from '@tandem/contracts';
import { json } from '../column-types.js';
import type { Task as TaskTable } from '../generated/kysely.js';
import { parseStored } from '../rows.js';
import { toText } from '../text.js';
import type { Tx } from '../transaction.js';
import { queryable, utcNow, utcNowMinus, type DbOrTx } from '../queryable.js';

// The only module that writes "Task" (writer: planner). Every status change is a conditional update
// (`from` -> `to`), so two writers racing on one task move it once.

/** A task's planning state (the run's own state is TaskRun's, the executor's). */
export type TaskStatus = TaskTable['status'];

/** A task to store on acceptance (always `accepted`). */
export interface NewTask {
  id: string;
  source: string;
  externalId: string;
  requestHash: string;
  agentId: string | null;
  kind: string;
  goal: string;
  input: JsonValueType | null;
  budget: TaskBudgetType | null;
  preferences: TaskModelPreferenceType | null;
  deadline: Date | null;
  submittedBy: string | null;
}

/**
 * Inserts an accepted task unless its idempotency key (source, externalId) is taken; true when it was
 * inserted. The goal is made storable (a CloudEvent's text may hold NUL or lone surrogates).
 */
export async function insertTask(tx: Tx, task: NewTask): Promise<boolean> {
  const result = await tx
    .insertInto('Task')
    .values({
      id: task.id,
      source: task.source,
      externalId: task.externalId,
      requestHash: task.requestHash,
      agentId: task.agentId,
      kind: task.kind,
      goal: toText(task.goal),
      input: task.input === null ? null : json(task.input),
      status: 'accepted',
      budget: task.budget === null ? null : json(task.budget),
      preferences: task.preferences === null ? null : json(task.preferences),
      deadline: task.deadline,
      submittedBy: task.submittedBy,
      correlationId: task.id,
      createdAt: utcNow(),
      updatedAt: utcNow(),
    })
    .onConflict((conflict) => conflict.columns(['source', 'externalId']).doNothing())
    .executeTakeFirst();
  return result.numInsertedOrUpdatedRows === 1n;
}

/** The task stored under an idempotency key: its id and request fingerprint, or null. */
export async function findTaskByKey(
  db: DbOrTx,
  key: { source: string; externalId: string },
): Promise<{ id: string; requestHash: string } | null> {
  const row = await queryable(db)
    .selectFrom('Task')
    .select(['id', 'requestHash'])
    .where('source', '=', key.source)
    .where('externalId', '=', key.externalId)
    .executeTakeFirst();
  return row ?? null;
}

/**
 * Moves a task from one of the `from` states to `to` (and stores `error` with it when given), renewing
 * its `updatedAt`; false when the task is in none of them (it moved on, or does not exist).
 */
export async function moveTask(
  tx: DbOrTx,
  taskId: string,
  move: { from: readonly TaskStatus[]; to: TaskStatus; error?: ErrorShapeType },
): Promise<boolean> {
  const params = { taskId, from: [...move.from], to: move.to };
  const result =
    move.error === undefined
      ? await updateStatus(tx, params)
      : await updateStatusWithError(tx, { ...params, error: move.error });
  return (result.numAffectedRows ?? 0n) > 0n;
}

type Move = { taskId: string; from: TaskStatus[]; to: TaskStatus };

const updateStatus = prepared((db, p: Move) =>
  db
    .updateTable('Task')
    .set({ status: p.to, updatedAt: utcNow() })
    .where('id', '=', p.taskId)
    .where('status', '=', sql<TaskStatus>`any(${p.from}::text[])`),
);

const updateStatusWithError = prepared((db, p: Move & { error: ErrorShapeType }) =>
  db
    .updateTable('Task')
    .set({ status: p.to, updatedAt: utcNow(), error: json(p.error) })
    .where('id', '=', p.taskId)
    .where('status', '=', sql<TaskStatus>`any(${p.from}::text[])`),
);

/** The states in which a task's planning lease is held (renewed while a planner works on it). */
const LEASED: readonly TaskStatus[] = ['accepted', 'planning', 'planned'];

/** Renews a task's planning lease (its `updatedAt`, on the database's clock) while it is being planned. */
export async function renewPlanningLease(tx: Tx, taskId: string): Promise<void> {
  await tx
    .updateTable('Task')
    .set({ updatedAt: utcNow() })
    .where('id', '=', taskId)
    .where('status', 'in', [...LEASED])
    .execute();
}

/**
 * Claims up to `limit` tasks whose planning lease ran out (`updatedAt` older than `leaseMs`): tasks
 * `planning`, and with `withAccepted` tasks still `accepted`, oldest first. One statement: the claim
 * renews the lease, rows another planner is claiming are skipped (`FOR UPDATE SKIP LOCKED`) and the
 * age is checked again on the locked row, so one task goes to one planner.
 */
export async function claimStalePlanning(
  db: DbOrTx,
  options: { leaseMs: number; limit: number; withAccepted: boolean },
): Promise<string[]> {
  const statuses: TaskStatus[] = options.withAccepted ? ['planning', 'accepted'] : ['planning'];
  const rows = await queryable(db)
    .updateTable('Task')
    .set({ updatedAt: utcNow() })
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('Task')
        .select('id')
        .where('status', 'in', statuses)
        .where('updatedAt', '<', utcNowMinus(options.leaseMs))
        .orderBy('updatedAt')
        .limit(options.limit)
        .forUpdate()
        .skipLocked(),
    )
    .where('updatedAt', '<', utcNowMinus(options.leaseMs))
    .returning('id')
    .execute();
  return rows.map((row) => row.id);
}

/** The state of a task, or null when it does not exist. */
export async function taskStatus(db: DbOrTx, taskId: string): Promise<TaskStatus | null> {
  const row = await queryable(db)
    .selectFrom('Task')
    .select('status')
    .where('id', '=', taskId)
    .executeTakeFirst();
  return row?.status ?? null;
}

/** A stored task as planning sees it, its JSON columns parsed. */
export interface PlanningTask {
  id: string;
  source: string;
  externalId: string;
  agentId: string | null;
  kind: string;
  goal: string;
  input: JsonValueType | null;
  status: TaskStatus;
  budget: TaskBudgetType | undefined;
  preferences: TaskModelPreferenceType | undefined;
  deadline: Date | null;
  /** Whether the inbox asked about already holds that message (false without an inbox). */
  processed: boolean;
}

const StoredInput = JsonValue.nullable();
const StoredBudget = TaskBudget.nullable();
const StoredPreferences = TaskModelPreference.nullable();

/**
 * Reads the task fields planning needs, parsed with their contracts' schemas (a value that does not
 * parse is DB.ROW_INVALID); with `inbox`, also whether that consumer already handled that message, in
 * the same statement.
 */
export async function loadPlanningTask(
  db: DbOrTx,
  taskId: string,
  inbox?: { consumer: string; messageId: string },
): Promise<PlanningTask | null> {
  const row = await queryable(db)
    .selectFrom('Task')
    .select((eb) => [
      'id',
      'source',
      'externalId',
      'agentId',
      'kind',
      'goal',
      'input',
      'status',
      'budget',
      'preferences',
      'deadline',
      eb
        .exists(
          eb
            .selectFrom('ProcessedMessage')
            .select('messageId')
            .where('consumer', '=', inbox?.consumer ?? '')
            .where('messageId', '=', inbox?.messageId ?? ''),
        )
        .as('processed'),
    ])
    .where('id', '=', taskId)
    .executeTakeFirst();
  if (row === undefined) return null;
  return {
    id: row.id,
    source: row.source,
    externalId: row.externalId,
    agentId: row.agentId,
    kind: row.kind,
    goal: row.goal,
    input: parseStored(StoredInput, row.input, 'Task.input'),
    status: row.status,
    budget: parseStored(StoredBudget, row.budget, 'Task.budget') ?? undefined,
    preferences: parseStored(StoredPreferences, row.preferences, 'Task.preferences') ?? undefined,
    deadline: row.deadline,
    processed: inbox !== undefined && row.processed === true,
  };
}
