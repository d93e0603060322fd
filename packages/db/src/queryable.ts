import { sql, type RawBuilder } from 'kysely';
import type { Db } from './client.js';
import type { Queryable, Tx } from './transaction.js';

/**
 * What a query function that may run inside or outside a transaction takes: the database (each statement
 * commits by itself) or a transaction of `transaction(db, ...)`. Callers outside packages/db pass their
 * `Db` or the `tx` they were given, never the builder itself.
 */
export type DbOrTx = Pick<Db, 'kysely'> | Tx;

/** The builder `db` runs on: the transaction itself, or the database's. */
export function queryable(db: DbOrTx): Queryable {
  return 'kysely' in db ? db.kysely : db;
}

/**
 * The database's clock at the statement (its transaction's start), as UTC wall-clock time: what every
 * timestamp column holds and what leases and deadlines are compared with.
 */
export function utcNow(): RawBuilder<Date> {
  return sql<Date>`(now() AT TIME ZONE 'UTC')`;
}

/** `utcNow()` minus `ms` milliseconds. */
export function utcNowMinus(ms: number): RawBuilder<Date> {
  return sql<Date>`(now() AT TIME ZONE 'UTC') - ${ms}::int * interval '1 millisecond'`;
}

/** `utcNow()` plus `ms` milliseconds (fractions allowed). */
export function utcNowPlus(ms: number): RawBuilder<Date> {
  return sql<Date>`(now() AT TIME ZONE 'UTC') + ${ms}::float8 * interval '1 millisecond'`;
}
