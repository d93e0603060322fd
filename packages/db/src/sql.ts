import type pg from 'pg';
import type { Db } from './client.js';

/**
 * Plain SQL on the pool beneath Prisma, for hot paths where Prisma's per-query cost dominates (measured
 * here: a single-row read costs ~0.55 ms of CPU through the Prisma client, ~0.07 ms through `pg`; see
 * docs/decisions/2026-11-26-sql-on-hot-paths.md). Rows come back as unknown values: callers parse them.
 * The schema is still Prisma's; column names are quoted exactly as in the migrations.
 */
export interface Sql {
  /** Runs one statement with bound values (`$1`, `$2`, ...). */
  query(text: string, values?: readonly unknown[]): Promise<SqlResult>;
}

/** The rows of a statement (as `pg` decodes them) and how many rows it touched. */
export interface SqlResult {
  rows: Array<Record<string, unknown>>;
  rowCount: number;
}

async function run(
  client: pg.Pool | pg.PoolClient,
  text: string,
  values?: readonly unknown[],
): Promise<SqlResult> {
  const result = await client.query(text, values === undefined ? undefined : [...values]);
  const rows: Array<Record<string, unknown>> = result.rows;
  return { rows, rowCount: result.rowCount ?? 0 };
}

/** Statements on the pool, each its own transaction. */
export function poolSql(db: Pick<Db, 'pool'>): Sql {
  return { query: (text, values) => run(db.pool, text, values) };
}

/**
 * Runs `fn` in one transaction on one pooled connection: COMMIT when it resolves, ROLLBACK when it throws
 * (the error is rethrown). Never hold it across a call to another system.
 */
export async function sqlTransaction<T>(db: Pick<Db, 'pool'>, fn: (sql: Sql) => Promise<T>): Promise<T> {
  const client = await db.pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    try {
      const result = await fn({ query: (text, values) => run(client, text, values) });
      await client.query('COMMIT');
      return result;
    } catch (error) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw error;
    }
  } finally {
    // A connection whose ROLLBACK failed is in an unknown state: drop it instead of reusing it.
    client.release(broken);
  }
}
