import { createHash } from 'node:crypto';
import {
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type CompiledQuery,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';
import type pg from 'pg';
import { connectionLost, isConnectionError } from './connection-errors.js';

/**
 * Kysely's own `PostgresDialect` sends every statement unnamed, so Postgres parses and plans it on every
 * call. This driver names each distinct statement text (`tandem_<sha1>`), so a connection prepares it
 * once; values are always bound, so the set of texts is fixed by the code and stays small (capped as a
 * guard). It also owns what the database layer promises on every path: timestamps bound as UTC
 * wall-clock time, and a lost connection reported as a retryable `DB.CONNECTION_LOST` and never returned
 * to the pool.
 */

const MAX_NAMED_STATEMENTS = 2000;
const statementNames = new Map<string, string>();

function statementName(text: string): string | undefined {
  let name = statementNames.get(text);
  if (name === undefined) {
    if (statementNames.size >= MAX_NAMED_STATEMENTS) return undefined;
    name = `tandem_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    statementNames.set(text, name);
  }
  return name;
}

/** Settings of {@link TandemPostgresDialect}. */
export interface DialectSettings {
  /** The pool the driver checks connections out of (owned by the caller). */
  pool: pg.Pool;
  /** Whether statements are named (off where connections share one server session: PGlite, PgBouncer). */
  preparedStatements: () => boolean;
  /** Called when a connection refused a statement name (it shares a server session): naming stops. */
  onSharedSession: () => void;
}

function isDuplicatePreparedStatement(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === '42P05';
}

/**
 * Bound values as Postgres should store them. Every timestamp column is `timestamp without time zone`
 * holding UTC wall-clock time (what Prisma writes); `pg` would send a Date in the process's local zone.
 */
function toParameter(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString().replace('Z', '');
  if (Array.isArray(value) && value.some((item) => item instanceof Date)) return value.map(toParameter);
  return value;
}

/** One checked-out connection; remembers whether it broke, so it is destroyed instead of reused. */
class TandemConnection implements DatabaseConnection {
  /** An 'error' event on the client (the socket died), or a failed ROLLBACK. */
  broken: Error | undefined;
  inTransaction = false;
  private readonly onError = (error: Error): void => {
    this.broken ??= error;
  };

  constructor(
    readonly client: pg.PoolClient,
    private readonly settings: DialectSettings,
  ) {
    // pg-pool removes its own 'error' listener while a client is checked out: without this one a socket
    // error there is an uncaught 'error' event and the process dies.
    client.on('error', this.onError);
  }

  detach(): void {
    this.client.removeListener('error', this.onError);
  }

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const values = compiled.parameters.map(toParameter);
    const name = this.settings.preparedStatements() ? statementName(compiled.sql) : undefined;
    let result: pg.QueryResult;
    try {
      result = await this.run(compiled.sql, values, name);
    } catch (error) {
      if (this.broken !== undefined || isConnectionError(error))
        throw connectionLost(this.broken ?? error, error);
      throw error;
    }
    const rows: R[] = result.rows;
    const command = result.command;
    const affects =
      command === 'INSERT' || command === 'UPDATE' || command === 'DELETE' || command === 'MERGE';
    return affects && result.rowCount !== null
      ? { rows, numAffectedRows: BigInt(result.rowCount) }
      : { rows };
  }

  /** BEGIN / COMMIT, with the same error mapping as statements. */
  async control(text: string): Promise<void> {
    try {
      await this.client.query(text);
    } catch (error) {
      if (this.broken !== undefined || isConnectionError(error))
        throw connectionLost(this.broken ?? error, error);
      throw error;
    }
  }

  private async run(text: string, values: unknown[], name: string | undefined): Promise<pg.QueryResult> {
    try {
      return await this.client.query(name === undefined ? { text, values } : { text, values, name });
    } catch (error) {
      // Another connection's statement of the same name lives in this server session: the connections
      // share one session (an embedded or pooled server). Stop naming statements; outside a transaction
      // the failed Parse changed nothing, so retry once unnamed (inside one, the caller's retry redoes it).
      if (name === undefined || !isDuplicatePreparedStatement(error)) throw error;
      this.settings.onSharedSession();
      if (this.inTransaction) throw error;
      return this.client.query({ text, values });
    }
  }

  // eslint-disable-next-line require-yield -- no streaming on any path of Tandem; say so if one starts
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streamQuery is not supported by the Tandem driver');
  }
}

class TandemDriver implements Driver {
  constructor(private readonly settings: DialectSettings) {}

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    try {
      return new TandemConnection(await this.settings.pool.connect(), this.settings);
    } catch (error) {
      throw isConnectionError(error) ? connectionLost(error) : error;
    }
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const own = asOwn(connection);
    own.inTransaction = true;
    let statement = 'BEGIN';
    if (settings.isolationLevel !== undefined) statement += ` ISOLATION LEVEL ${settings.isolationLevel}`;
    if (settings.accessMode !== undefined) statement += ` ${settings.accessMode}`;
    await own.control(statement);
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const own = asOwn(connection);
    await own.control('COMMIT');
    own.inTransaction = false;
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const own = asOwn(connection);
    try {
      await own.client.query('ROLLBACK');
    } catch (error) {
      // Kysely rethrows a failed ROLLBACK in place of the handler's error; keep the handler's error and
      // drop the connection, which is in an unknown state.
      own.broken ??= error instanceof Error ? error : new Error(String(error));
    }
    own.inTransaction = false;
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    const own = asOwn(connection);
    own.detach();
    own.client.release(own.broken ?? own.inTransaction);
  }

  async destroy(): Promise<void> {
    // The pool belongs to createDb, which ends it.
  }
}

function asOwn(connection: DatabaseConnection): TandemConnection {
  if (!(connection instanceof TandemConnection)) throw new TypeError('not a connection of the Tandem driver');
  return connection;
}

/** Kysely's Postgres SQL dialect on {@link TandemDriver}. */
export class TandemPostgresDialect implements Dialect {
  constructor(private readonly settings: DialectSettings) {}

  createDriver(): Driver {
    return new TandemDriver(this.settings);
  }

  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler();
  }

  createAdapter(): DialectAdapter {
    return new PostgresAdapter();
  }

  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new PostgresIntrospector(db);
  }
}
