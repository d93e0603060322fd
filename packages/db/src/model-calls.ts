import type { Db } from './client.js';
import { poolSql } from './sql.js';

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
export async function modelUseOfTask(db: Pick<Db, 'pool'>, taskId: string): Promise<TaskModelUse> {
  const result = await poolSql(db).query(
    `SELECT coalesce(sum("totalTokens"), 0)::bigint::text AS "tokens", coalesce(sum("costUsd"), 0)::float8 AS "cost",
            count(*)::int AS "calls"
       FROM "ModelCall" WHERE "taskId" = $1::uuid`,
    [taskId],
  );
  const row = result.rows[0];
  return {
    tokens: Number(row?.['tokens'] ?? 0),
    costUsd: Number(row?.['cost'] ?? 0),
    calls: Number(row?.['calls'] ?? 0),
  };
}
