import { sql } from 'kysely';
import { queryable, type Reader } from './tables/planner-common.js';

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
export async function modelUseOfTask(db: Reader, taskId: string): Promise<TaskModelUse> {
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
