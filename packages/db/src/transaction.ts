import type { Kysely, Transaction } from 'kysely';
import { sql } from 'kysely';
import type { Db } from './client.js';
import { dropCommitHooks, openCommitHooks, runCommitHooks } from './commit-hooks.js';
import type { DB } from './generated/kysely.js';

/** A transaction of {@link transaction}: what a function that must run inside one takes. */
export type Tx = Transaction<DB>;

/**
 * Anything queries can run on: the database (each statement its own transaction) or a transaction. A
 * query function that may run either way takes this, and the caller decides.
 */
export type Queryable = Kysely<DB>;

/** Options of {@link transaction}. */
export interface TransactionOptions {
  /**
   * With `false` the COMMIT returns before its WAL record is flushed (Postgres' `synchronous_commit =
   * off`): for writes whose loss in a crash only repeats harmless work.
   */
  durable?: boolean;
}

/**
 * Runs `fn` in one transaction on one pooled connection: COMMIT when it resolves, ROLLBACK when it throws
 * (the error is rethrown); hooks registered with `afterCommit(tx, ...)` run after the COMMIT. Never hold
 * it across a call to another system (a model, the sandbox, the bus).
 *
 * A connection that dies under it (server restart, backend killed, socket reset) makes it throw a
 * retryable `DB.CONNECTION_LOST` TandemError, and the connection is destroyed, not pooled again. A COMMIT
 * whose connection died may or may not have landed: the caller retries, and its writes are idempotent.
 */
export async function transaction<T>(
  db: Pick<Db, 'kysely' | 'pool'>,
  fn: (tx: Tx) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  let handle: Tx | undefined;
  const result = await db.kysely
    .transaction()
    .execute(async (tx) => {
      handle = tx;
      openCommitHooks(tx, db.pool);
      if (options.durable === false) await sql`SET LOCAL synchronous_commit TO OFF`.execute(tx);
      return fn(tx);
    })
    .catch((error: unknown) => {
      if (handle !== undefined) dropCommitHooks(handle);
      throw error;
    });
  if (handle !== undefined) runCommitHooks(handle);
  return result;
}
