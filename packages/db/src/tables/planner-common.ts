import { sql, type RawBuilder } from 'kysely';
import type { Db } from '../client.js';
import type { Queryable } from '../transaction.js';

/**
 * What a read of the planner's and learning's modules runs on: a connected database (each statement its
 * own transaction) or a transaction. Services hold a `Db`, never its `kysely`, so reads take either.
 */
export type Reader = Pick<Db, 'kysely'> | Queryable;

/** The query builder of a {@link Reader}. */
export function queryable(reader: Reader): Queryable {
  return 'kysely' in reader ? reader.kysely : reader;
}

/**
 * The database's clock at the statement (its transaction's start), as UTC wall-clock time: what the
 * planning lease and the timestamps of these tables were always written and compared with.
 */
export function utcNow(): RawBuilder<Date> {
  return sql<Date>`(now() AT TIME ZONE 'UTC')`;
}

/** `utcNow()` minus `ms` milliseconds. */
export function utcNowMinus(ms: number): RawBuilder<Date> {
  return sql<Date>`(now() AT TIME ZONE 'UTC') - ${ms}::int * interval '1 millisecond'`;
}
