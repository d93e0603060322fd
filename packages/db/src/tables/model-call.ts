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
