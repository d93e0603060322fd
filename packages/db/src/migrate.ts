import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TandemError, type ErrorCode } from '@tandem/contracts';
import pg from 'pg';

// An offline stand-in for `prisma migrate deploy`, which needs a schema-engine binary that cannot be
// downloaded here. It keeps Prisma's bookkeeping exactly (the `_prisma_migrations` table, sha256
// checksums of migration.sql, advisory lock 72707369) so that the real `prisma migrate deploy` accepts a
// database migrated by it, and the other way round.

/** The migrations folder of the repository (`prisma/migrations`). */
export const defaultMigrationsDir = fileURLToPath(new URL('../../../prisma/migrations', import.meta.url));

// Prisma's own advisory lock key; sharing it keeps this migrator and `prisma migrate` from running at once.
const PRISMA_ADVISORY_LOCK_KEY = 72707369;

// The table exactly as Prisma's schema engine creates it, so that either tool can take over.
const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

/** One migration folder read from disk. */
export interface MigrationFile {
  /** The folder name, e.g. `20261126000000_init`; migrations apply in the order of these names. */
  name: string;
  /** The contents of its `migration.sql`. */
  sql: string;
  /** sha256 hex of `migration.sql`, as Prisma records it. */
  checksum: string;
}

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** Connection string of the database to migrate. */
  url: string;
  /** Where the migration folders are (default: the repository's `prisma/migrations`). */
  migrationsDir?: string;
  /** How long to wait for another migrator's advisory lock before giving up (default 60 s). */
  lockTimeoutMs?: number;
}

/** What {@link migrate} did. */
export interface MigrateResult {
  /** Migrations applied by this run, in order. */
  applied: string[];
  /** Migrations that were already applied before this run (or by a concurrent one). */
  alreadyApplied: string[];
  /** Migrations recorded in the database that have no folder on disk (newer code ran here before). */
  unknown: string[];
}

/** The codes of a {@link MigrationError}: the `MIGRATE.*` codes declared in `ErrorCodes`. */
export type MigrationErrorCode = Extract<ErrorCode, `MIGRATE.${string}`>;

/**
 * Thrown when the migrator refuses to go on; `code` says why. A `TandemError`: permanent, except
 * `MIGRATE.LOCK_TIMEOUT` (another migrator held the lock; trying later may succeed).
 */
export class MigrationError extends TandemError {
  override readonly name = 'MigrationError';
  override readonly code: MigrationErrorCode;

  constructor(
    code: MigrationErrorCode,
    message: string,
    options: { cause?: unknown; retryable?: boolean } = {},
  ) {
    super(code, message, { retryable: options.retryable ?? false, cause: options.cause });
    this.code = code;
  }
}

/** sha256 hex of a migration script, the checksum Prisma stores in `_prisma_migrations`. */
export function migrationChecksum(sql: string | Buffer): string {
  return createHash('sha256').update(sql).digest('hex');
}

/** Reads every migration folder under `dir`, sorted by name (Prisma's order). */
export async function readMigrations(dir: string = defaultMigrationsDir): Promise<MigrationFile[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  const migrations: MigrationFile[] = [];
  for (const name of names) {
    let bytes: Buffer;
    try {
      bytes = await readFile(join(dir, name, 'migration.sql'));
    } catch (error) {
      throw new MigrationError('MIGRATE.INVALID_FOLDER', `migration folder ${name} has no migration.sql`, {
        cause: error,
      });
    }
    // The checksum is over the bytes on disk, as Prisma computes it.
    migrations.push({ name, sql: bytes.toString('utf8'), checksum: migrationChecksum(bytes) });
  }
  return migrations;
}

interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
}

/**
 * Applies every pending migration, each in its own transaction, under Prisma's advisory lock. Refuses
 * when an applied migration's file changed or a failed migration is recorded. Running it again, or
 * twice at once, applies nothing more.
 */
export async function migrate(options: MigrateOptions): Promise<MigrateResult> {
  const migrations = await readMigrations(options.migrationsDir ?? defaultMigrationsDir);
  // One session for everything: the advisory lock belongs to the session that took it.
  const client = new pg.Client({ connectionString: options.url });
  await client.connect();
  try {
    await acquireLock(client, options.lockTimeoutMs ?? 60_000);
    try {
      return await applyPending(client, migrations);
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [PRISMA_ADVISORY_LOCK_KEY]);
    }
  } finally {
    await client.end();
  }
}

async function acquireLock(client: pg.Client, timeoutMs: number): Promise<void> {
  // Poll with pg_try_advisory_lock instead of blocking in pg_advisory_lock: a blocked statement would stall
  // the single-threaded embedded PGlite, and polling gives us a timeout without server settings.
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [
      PRISMA_ADVISORY_LOCK_KEY,
    ]);
    if (result.rows[0]?.locked === true) return;
    if (Date.now() >= deadline) {
      throw new MigrationError(
        'MIGRATE.LOCK_TIMEOUT',
        `another migration holds the advisory lock ${PRISMA_ADVISORY_LOCK_KEY} for more than ${timeoutMs} ms`,
        { retryable: true },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function applyPending(client: pg.Client, migrations: MigrationFile[]): Promise<MigrateResult> {
  await client.query(CREATE_MIGRATIONS_TABLE);
  const recorded = await readApplied(client);
  const onDisk = new Set(migrations.map((migration) => migration.name));
  const result: MigrateResult = {
    applied: [],
    alreadyApplied: [],
    unknown: [...new Set(recorded.map((row) => row.migration_name))].filter((name) => !onDisk.has(name)),
  };

  const failed = recorded.find((row) => row.finished_at === null);
  if (failed !== undefined) {
    throw new MigrationError(
      'MIGRATE.FAILED_MIGRATION_RECORDED',
      `migration ${failed.migration_name} is recorded as started but not finished; fix the database, then ` +
        `mark it with \`prisma migrate resolve\` (or set rolled_back_at) before migrating again`,
    );
  }

  for (const migration of migrations) {
    const row = recorded.find((candidate) => candidate.migration_name === migration.name);
    if (row !== undefined) {
      assertChecksum(migration, row.checksum);
      result.alreadyApplied.push(migration.name);
      continue;
    }
    const appliedNow = await applyOne(client, migration);
    (appliedNow ? result.applied : result.alreadyApplied).push(migration.name);
  }
  return result;
}

async function readApplied(client: pg.Client): Promise<AppliedRow[]> {
  // Rolled-back rows no longer count (Prisma's `migrate resolve --rolled-back`); the migration may be re-applied.
  const result = await client.query<AppliedRow>(
    `SELECT migration_name, checksum, finished_at FROM "_prisma_migrations"
     WHERE rolled_back_at IS NULL ORDER BY started_at, migration_name`,
  );
  return result.rows;
}

function assertChecksum(migration: MigrationFile, recordedChecksum: string): void {
  if (recordedChecksum !== migration.checksum) {
    throw new MigrationError(
      'MIGRATE.CHECKSUM_MISMATCH',
      `migration ${migration.name} was changed after it was applied (recorded checksum ${recordedChecksum}, ` +
        `file ${migration.checksum}); add a new migration instead of editing an applied one`,
    );
  }
}

/** Applies one migration in a transaction; false when another run recorded it in the meantime. */
async function applyOne(client: pg.Client, migration: MigrationFile): Promise<boolean> {
  await client.query('BEGIN');
  try {
    // Checked again inside the transaction: on PGlite every connection shares one session, so the
    // advisory lock does not keep two migrators apart there, but its one-transaction-at-a-time does.
    const existing = await client.query<{ checksum: string }>(
      `SELECT checksum FROM "_prisma_migrations"
       WHERE migration_name = $1 AND rolled_back_at IS NULL AND finished_at IS NOT NULL`,
      [migration.name],
    );
    const row = existing.rows[0];
    if (row !== undefined) {
      assertChecksum(migration, row.checksum);
      await client.query('ROLLBACK');
      return false;
    }
    const id = randomUUID();
    await client.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count)
       VALUES ($1, $2, $3, now(), 0)`,
      [id, migration.checksum, migration.name],
    );
    // No parameters: the script goes through the simple query protocol, which runs several statements.
    await client.query(migration.sql);
    await client.query(
      `UPDATE "_prisma_migrations" SET finished_at = clock_timestamp(), applied_steps_count = 1 WHERE id = $1`,
      [id],
    );
    await client.query('COMMIT');
    return true;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    if (error instanceof MigrationError) throw error;
    throw new MigrationError(
      'MIGRATE.APPLY_FAILED',
      `migration ${migration.name} failed and was rolled back: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}
