import { createHash } from 'node:crypto';
import { dropCommitHooks, openCommitHooks, registerPool, runCommitHooks } from './commit-hooks.js';
import { connectionLost, isConnectionError } from './connection-errors.js';
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

/**
 * Statements are prepared once per connection under a name derived from their text, so Postgres parses
 * and plans each distinct statement once instead of on every call.
 */
const statementNames = new Map<string, string>();
const MAX_NAMED_STATEMENTS = 2000;
/** Pools whose connections share one server session (or that refused a name): statements stay unnamed. */
const unnamedPools = new WeakSet<pg.Pool>();

/** Statements on this pool are sent unnamed (see `CreateDbOptions.preparedStatements`). */
export function disablePreparedStatements(pool: pg.Pool): void {
  unnamedPools.add(pool);
}

/** Whether statements on this pool are named (see `CreateDbOptions.preparedStatements`). */
export function preparedStatementsOn(pool: pg.Pool): boolean {
  return !unnamedPools.has(pool);
}

function isDuplicatePreparedStatement(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === '42P05';
}

function statementName(text: string): string | undefined {
  let name = statementNames.get(text);
  if (name === undefined) {
    // Texts are fixed by the code (values are always bound), so this map stays small; the cap is a guard.
    if (statementNames.size >= MAX_NAMED_STATEMENTS) return undefined;
    name = `tandem_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    statementNames.set(text, name);
  }
  return name;
}

async function run(
  pool: pg.Pool,
  client: pg.Pool | pg.PoolClient,
  text: string,
  values?: readonly unknown[],
): Promise<SqlResult> {
  const name = unnamedPools.has(pool) ? undefined : statementName(text);
  const query = { text, values: values === undefined ? [] : [...values] };
  let result: pg.QueryResult;
  try {
    result = await client.query(name === undefined ? query : { ...query, name });
  } catch (error) {
    // Another connection's statement of the same name lives in this session: the connections share one
    // server session (an embedded or pooled server). Stop naming statements on this pool and retry once;
    // the failed Parse changed nothing (outside a transaction) — inside one, the caller's retry redoes it.
    if (name === undefined || !isDuplicatePreparedStatement(error)) throw error;
    unnamedPools.add(pool);
    if (client !== pool) throw error;
    result = await client.query(query);
  }
  const rows: Array<Record<string, unknown>> = result.rows;
  return { rows, rowCount: result.rowCount ?? 0 };
}

/** Statements on the pool, each its own transaction. */
export function poolSql(db: Pick<Db, 'pool'>): Sql {
  const sql: Sql = {
    query: async (text, values) => {
      try {
        return await run(db.pool, db.pool, text, values);
      } catch (error) {
        throw isConnectionError(error) ? connectionLost(error) : error;
      }
    },
  };
  registerPool(sql, db.pool);
  return sql;
}

/**
 * Runs `fn` in one transaction on one pooled connection: COMMIT when it resolves, ROLLBACK when it throws
 * (the error is rethrown). Never hold it across a call to another system. With `durable: false` the
 * commit returns before its WAL record is flushed (Postgres' `synchronous_commit = off`).
 *
 * A connection that dies under the transaction (server restart, backend killed, socket reset) makes it
 * throw a retryable `DB.CONNECTION_LOST` TandemError, and the connection is destroyed instead of going
 * back to the pool. While the client is checked out pg-pool removes its own 'error' listener, so this
 * function holds one: without it a socket error is an uncaught 'error' event and the process dies.
 */
export async function sqlTransaction<T>(
  db: Pick<Db, 'pool'>,
  fn: (sql: Sql) => Promise<T>,
  options: { durable?: boolean } = {},
): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await db.pool.connect();
  } catch (error) {
    throw isConnectionError(error) ? connectionLost(error) : error;
  }
  let lost: Error | undefined;
  const onError = (error: Error): void => {
    lost ??= error;
  };
  client.on('error', onError);
  let broken = false;
  try {
    await client.query('BEGIN');
    // A non-durable transaction does not wait for its WAL flush: for writes whose loss in a crash only
    // repeats harmless work (marking an outbox row published, an informational status).
    if (options.durable === false) await client.query('SET LOCAL synchronous_commit TO OFF');
    const sql: Sql = { query: (text, values) => run(db.pool, client, text, values) };
    openCommitHooks(sql, db.pool);
    try {
      const result = await fn(sql);
      await client.query('COMMIT');
      runCommitHooks(sql);
      return result;
    } catch (error) {
      dropCommitHooks(sql);
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw error;
    }
  } catch (error) {
    // The COMMIT of a transaction whose connection died may or may not have landed: the caller retries,
    // and its writes are idempotent (inbox, unique keys) as for any redelivery.
    if (lost !== undefined || isConnectionError(error)) throw connectionLost(lost ?? error, error);
    throw error;
  } finally {
    client.removeListener('error', onError);
    // A connection whose ROLLBACK failed, or that reported an error, is in an unknown state: drop it.
    client.release(lost ?? broken);
  }
}

/** A column of {@link insertRows}: its name as in the migrations and an optional cast (`uuid`, `jsonb`). */
export interface SqlColumn {
  name: string;
  cast?: string;
}

/**
 * One multi-row INSERT (split every 1000 rows to stay under Postgres' bind-parameter limit). `suffix` is
 * appended verbatim (e.g. `ON CONFLICT DO NOTHING`). Returns how many rows were inserted.
 */
export async function insertRows(
  sql: Sql,
  table: string,
  columns: readonly SqlColumn[],
  rows: ReadonlyArray<readonly unknown[]>,
  suffix = '',
): Promise<number> {
  let inserted = 0;
  const perStatement = Math.max(1, Math.floor(30_000 / Math.max(1, columns.length)));
  for (let start = 0; start < rows.length; start += perStatement) {
    const values: unknown[] = [];
    const tuples = rows.slice(start, start + perStatement).map((row) => {
      if (row.length !== columns.length) throw new RangeError(`a row for ${table} has ${row.length} values`);
      const placeholders = columns.map((column, index) => {
        values.push(row[index]);
        return column.cast ? `$${values.length}::${column.cast}` : `$${values.length}`;
      });
      return `(${placeholders.join(', ')})`;
    });
    const names = columns.map((column) => `"${column.name}"`).join(', ');
    const result = await sql.query(
      `INSERT INTO "${table}" (${names}) VALUES ${tuples.join(', ')} ${suffix}`,
      values,
    );
    inserted += result.rowCount;
  }
  return inserted;
}

/**
 * The current time as UTC wall-clock time, as a SQL expression for `timestamp without time zone`
 * columns: what Prisma writes there, whatever the session's time zone.
 */
export const UTC_NOW = `(now() AT TIME ZONE 'UTC')`;

/** A time as UTC wall-clock text, for a bound `timestamp without time zone` value (what Prisma writes). */
export function utcWallClock(at: Date = new Date()): string {
  return at.toISOString().replace('Z', '');
}
