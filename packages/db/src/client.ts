import { PrismaPg } from '@prisma/adapter-pg';
import { Kysely } from 'kysely';
import pg from 'pg';
import { TandemPostgresDialect } from './driver.js';
import type { DB } from './generated/kysely.js';
import { disablePreparedStatements, preparedStatementsOn } from './sql.js';
import { Prisma, PrismaClient } from './generated/prisma/client.js';

/** The interactive-transaction client passed to `prisma.$transaction(async (tx) => ...)`. */
export type PrismaTx = Prisma.TransactionClient;

/**
 * Anything that can run Prisma queries: the client itself or a transaction client.
 */
export type DbClient = PrismaClient | PrismaTx;

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
  /** Where Prisma warnings, Prisma errors and idle-connection errors go; without it they are dropped. */
  log?: DbLog;
  /**
   * Prepare plain-SQL statements once per connection (default true). Turn it off where connections share
   * one server session — the embedded PGlite, or PgBouncer in transaction mode.
   */
  preparedStatements?: boolean;
}

/** A connected database: the typed query builder, the Prisma client and the `pg` pool beneath them. */
export interface Db {
  /** Kysely on the pool, typed from `schema.prisma`: what query modules of this package run on. */
  kysely: Kysely<DB>;
  /** The Prisma client; the only way services reach the database. */
  prisma: PrismaClient;
  /** The pool the Prisma adapter runs on (for the rare query Prisma cannot express, and for metrics). */
  pool: pg.Pool;
  /** Disconnects Prisma and ends the pool; safe to call more than once. */
  close(): Promise<void>;
}

/**
 * Connects Prisma through `@prisma/adapter-pg` on a pool we own, so that the pool's size is ours to
 * choose and an error on an idle connection is logged instead of crashing the process.
 */
export function createDb(options: CreateDbOptions): Db {
  const { log } = options;
  // Prisma stores DateTime as UTC wall-clock time in TIMESTAMP(3) columns; a session in UTC makes the
  // columns' CURRENT_TIMESTAMP defaults and now() in raw SQL agree with it on any server time zone. Set as
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
  // The adapter listens on the connections it checks out for a transaction; these hooks only log.
  const adapter = new PrismaPg(pool, {
    disposeExternalPool: false,
    onPoolError: (error) => {
      log?.error({ err: error }, 'postgres idle connection error (prisma adapter)');
    },
    onConnectionError: (error) => {
      log?.warn({ err: error }, 'postgres connection lost during a prisma transaction');
    },
  });
  const kysely = new Kysely<DB>({
    dialect: new TandemPostgresDialect({
      pool,
      preparedStatements: () => preparedStatementsOn(pool),
      onSharedSession: () => disablePreparedStatements(pool),
    }),
  });
  const prisma = new PrismaClient({
    adapter,
    log: [
      { level: 'warn', emit: 'event' },
      { level: 'error', emit: 'event' },
    ],
  });
  if (log !== undefined) {
    prisma.$on('warn', (event) => {
      log.warn({ target: event.target }, event.message);
    });
    prisma.$on('error', (event) => {
      log.error({ target: event.target }, event.message);
    });
  }

  let closing: Promise<void> | undefined;
  return {
    kysely,
    prisma,
    pool,
    close() {
      closing ??= (async () => {
        try {
          await prisma.$disconnect();
          await kysely.destroy();
        } finally {
          await pool.end();
        }
      })();
      return closing;
    },
  };
}

/** Matches a Postgres or Prisma unique-constraint violation, whether it came from a model query or raw SQL. */
export function isUniqueViolation(error: unknown): boolean {
  if (error instanceof Prisma.PrismaClientKnownRequestError) {
    if (error.code === 'P2002') return true;
    // A raw query (P2010) carries the driver adapter's error, with Postgres' SQLSTATE, in `meta`.
    if (error.code !== 'P2010') return false;
    const cause = property(property(error.meta, 'driverAdapterError'), 'cause');
    return (
      property(cause, 'originalCode') === '23505' || property(cause, 'kind') === 'UniqueConstraintViolation'
    );
  }
  // A `pg` error (a query on the pool itself) carries the SQLSTATE as `code`.
  return error instanceof Error && property(error, 'code') === '23505';
}

function property(value: unknown, key: string): unknown {
  if (typeof value !== 'object' || value === null || !(key in value)) return undefined;
  return Reflect.get(value, key);
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
