import { Kysely } from 'kysely';
import pg from 'pg';
import { TandemPostgresDialect } from './driver.js';
import type { DB } from './generated/kysely.js';
import { disablePreparedStatements, preparedStatementsOn } from './prepared-statements.js';

/** The subset of a pino logger that the database layer writes to. */
export interface DbLog {
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

/** Options of {@link createDb}. */
export interface CreateDbOptions {
  /** A Postgres connection string. */
  url: string;
  /** Largest number of pooled connections (default 10; keep it below PGlite's `maxConnections`). */
  poolMax?: number;
  /** Where idle-connection errors go; without it they are dropped. */
  log?: DbLog;
  /**
   * Prepare each statement once per connection under a name (default true). Turn it off where connections
   * share one server session — the embedded PGlite, or PgBouncer in transaction mode.
   */
  preparedStatements?: boolean;
}

/** A connected database: the typed query builder and the `pg` pool beneath it. */
export interface Db {
  /** Kysely on the pool, typed from `schema.prisma`: what query modules of this package run on. */
  kysely: Kysely<DB>;
  /** The pool the builder runs on (pool metrics; tests that must write what no query module writes). */
  pool: pg.Pool;
  /** Ends the builder and the pool; safe to call more than once. */
  close(): Promise<void>;
}

/**
 * Connects the typed query builder on a pool we own, so that the pool's size is ours to choose and an
 * error on an idle connection is logged instead of crashing the process.
 */
export function createDb(options: CreateDbOptions): Db {
  const { log } = options;
  // Timestamp columns hold UTC wall-clock time in TIMESTAMP(3) columns; a session in UTC makes the
  // columns' CURRENT_TIMESTAMP defaults and now() agree with it on any server time zone. Set as
  // a startup option (not a query on 'connect', which races the first query and pg deprecates).
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolMax ?? 10,
    options: '-c TimeZone=UTC',
    types: { getTypeParser: typeParser },
  });
  // pg emits 'error' on the pool when an idle connection dies (server restart, proxy timeout); with no
  // listener Node would throw it as an uncaught exception.
  pool.on('error', (error) => {
    log?.error({ err: error }, 'postgres idle connection error');
  });
  if (options.preparedStatements === false) disablePreparedStatements(pool);
  const kysely = new Kysely<DB>({
    dialect: new TandemPostgresDialect({
      pool,
      preparedStatements: () => preparedStatementsOn(pool),
      onSharedSession: () => disablePreparedStatements(pool),
    }),
  });

  let closing: Promise<void> | undefined;
  return {
    kysely,
    pool,
    close() {
      closing ??= (async () => {
        try {
          await kysely.destroy();
        } finally {
          await pool.end();
        }
      })();
      return closing;
    },
  };
}

/** Matches a Postgres unique-constraint violation (SQLSTATE 23505), as `pg` reports it. */
export function isUniqueViolation(error: unknown): boolean {
  return error instanceof Error && 'code' in error && error.code === '23505';
}

const TIMESTAMP_OID = 1114;

/**
 * Every timestamp column is `timestamp without time zone` holding UTC wall-clock time; `pg` would read it
 * in the process's local zone. Other types keep pg's parsers.
 */
function typeParser(oid: number, format?: string): (value: string) => unknown {
  if (oid === TIMESTAMP_OID && format !== 'binary') return parseUtcTimestamp;
  return format === 'binary' ? pg.types.getTypeParser(oid, 'binary') : pg.types.getTypeParser(oid, 'text');
}

function parseUtcTimestamp(text: string): Date | string {
  const date = new Date(`${text.replace(' ', 'T')}Z`);
  // 'infinity' and years before 1 are not written by Tandem; pass them on as text rather than guess.
  return Number.isNaN(date.getTime()) ? text : date;
}
