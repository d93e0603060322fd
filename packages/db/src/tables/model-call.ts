import { sql } from 'kysely';
import type { DB } from '../generated/kysely.js';
import { queryable, type DbOrTx } from '../queryable.js';

/*
 * The ModelCall table: the one module that writes it. Every model call a service makes is stored after
 * it completed (writer: the service that made the call, through service-kit's recorder).
 */

/** The roles ModelCall.role takes (its CHECK constraint). */
export type ModelCallRole = DB['ModelCall']['role'];
/** The outcomes ModelCall.outcome takes (its CHECK constraint). */
export type ModelCallOutcome = DB['ModelCall']['outcome'];

/** One completed model call, as stored. */
export interface ModelCallInput {
  id: string;
  /** Null for calls outside a task, or when the caller's task id is not a UUID. */
  taskId: string | null;
  role: ModelCallRole;
  model: string;
  endpoint: string;
  candidateId: string | null;
  tier: string | null;
  attempt: number;
  fallback: boolean;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  costUsd: number;
  latencyMs: number;
  outcome: ModelCallOutcome;
  errorCode: string | null;
  idempotencyKey: string | null;
}

/** Stores one model call (one INSERT, its own commit; createdAt is the database's default). */
export async function recordModelCall(db: DbOrTx, call: ModelCallInput): Promise<void> {
  await queryable(db).insertInto('ModelCall').values(call).execute();
}

/** How many calls of one role and candidate ended with one outcome. */
export interface ModelCallOutcomeCount {
  role: ModelCallRole;
  candidateId: string;
  outcome: ModelCallOutcome;
  count: number;
}

/** Calls with a candidate since `since`, counted by role, candidate and outcome (learned success). */
export async function modelCallOutcomesSince(db: DbOrTx, since: Date): Promise<ModelCallOutcomeCount[]> {
  const rows = await queryable(db)
    .selectFrom('ModelCall')
    .select(['role', 'candidateId', 'outcome', sql<number>`count(*)::int`.as('count')])
    .where('createdAt', '>=', since)
    .where('candidateId', 'is not', null)
    .groupBy(['role', 'candidateId', 'outcome'])
    .execute();
  return rows.flatMap((row) => (row.candidateId === null ? [] : [{ ...row, candidateId: row.candidateId }]));
}

/** Model use of one task: tokens, cost and calls over its stored ModelCall rows (every service's). */
export interface TaskModelUse {
  tokens: number;
  costUsd: number;
  calls: number;
}

/**
 * Sums a task's stored model calls, for its budget. Rows are written after each call completes, so calls
 * still in flight elsewhere are not counted yet.
 */
export async function modelUseOfTask(db: DbOrTx, taskId: string): Promise<TaskModelUse> {
  // Sums of bigint and float columns come back as numeric text; cast where Postgres computes them.
  const row = await queryable(db)
    .selectFrom('ModelCall')
    .select((eb) => [
      sql<string>`coalesce(sum(${eb.ref('totalTokens')}), 0)::bigint::text`.as('tokens'),
      sql<number>`coalesce(sum(${eb.ref('costUsd')}), 0)::float8`.as('cost'),
      sql<number>`count(*)::int`.as('calls'),
    ])
    .where('taskId', '=', taskId)
    .executeTakeFirst();
  return {
    tokens: Number(row?.tokens ?? 0),
    costUsd: Number(row?.cost ?? 0),
    calls: Number(row?.calls ?? 0),
  };
}
