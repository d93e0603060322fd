import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { appendFile, cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultMigrationsDir, migrationChecksum, readMigrations } from '../src/migrate.js';
import {
  createTestDatabase,
  migrateTestDatabase,
  withClient,
  withDatabase,
  type TestDatabase,
} from './helpers/test-database.js';

const INIT = '20261126000000_init';
// Fixture migrations are named after 2099 so they sort after every migration of the repository.
/** Every migration in the repository, in name order (the init migration first). */
const REPO = readdirSync(defaultMigrationsDir, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();
let database: TestDatabase;
const temporaryDirs: string[] = [];

beforeEach(async () => {
  database = await createTestDatabase();
});

afterEach(async () => {
  await database.drop();
  await Promise.all(temporaryDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A copy of the repository migrations plus `extra` folders, to change without touching the real ones. */
async function migrationsCopy(extra: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tandem-migrations-'));
  temporaryDirs.push(dir);
  await cp(defaultMigrationsDir, dir, { recursive: true });
  for (const [name, sql] of Object.entries(extra)) {
    await mkdir(join(dir, name));
    await writeFile(join(dir, name, 'migration.sql'), sql);
  }
  return dir;
}

interface MigrationRow {
  id: string;
  checksum: string;
  finished_at: Date | null;
  migration_name: string;
  logs: string | null;
  rolled_back_at: Date | null;
  started_at: Date;
  applied_steps_count: number;
}

function migrationRows(url: string): Promise<MigrationRow[]> {
  return withClient(url, async (client) => {
    const result = await client.query<MigrationRow>('SELECT * FROM "_prisma_migrations" ORDER BY started_at');
    return result.rows;
  });
}

function tableExists(url: string, table: string): Promise<boolean> {
  return withClient(url, async (client) => {
    const result = await client.query<{ name: string | null }>('SELECT to_regclass($1)::text AS name', [
      `"${table}"`,
    ]);
    return result.rows[0]?.name !== null;
  });
}

describe('migrate', () => {
  it('applies every repository migration once and records them the way Prisma does', async () => {
    const result = await migrateTestDatabase(database.url);
    expect(result).toEqual({ applied: REPO, alreadyApplied: [], unknown: [] });

    const [init] = await readMigrations();
    const rows = await migrationRows(database.url);
    expect(rows).toHaveLength(REPO.length);
    expect(rows[0]).toMatchObject({
      migration_name: INIT,
      checksum: init?.checksum,
      logs: null,
      rolled_back_at: null,
      applied_steps_count: 1,
    });
    expect(rows[0]?.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(rows[0]?.finished_at).toBeInstanceOf(Date);
    expect(await tableExists(database.url, 'Task')).toBe(true);
  });

  it('creates _prisma_migrations with exactly the columns of Prisma', async () => {
    await migrateTestDatabase(database.url);
    const columns = await withClient(database.url, async (client) => {
      const result = await client.query<{
        column_name: string;
        data_type: string;
        is_nullable: string;
        len: number | null;
      }>(
        `SELECT column_name, data_type, is_nullable, character_maximum_length AS len
         FROM information_schema.columns WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position`,
      );
      return result.rows.map(
        (row) =>
          `${row.column_name} ${row.data_type}${row.len === null ? '' : `(${row.len})`} ${row.is_nullable === 'YES' ? 'NULL' : 'NOT NULL'}`,
      );
    });
    expect(columns).toEqual([
      'id character varying(36) NOT NULL',
      'checksum character varying(64) NOT NULL',
      'finished_at timestamp with time zone NULL',
      'migration_name character varying(255) NOT NULL',
      'logs text NULL',
      'rolled_back_at timestamp with time zone NULL',
      'started_at timestamp with time zone NOT NULL',
      'applied_steps_count integer NOT NULL',
    ]);
  });

  it('applies nothing on a second run', async () => {
    await migrateTestDatabase(database.url);
    const second = await migrateTestDatabase(database.url);
    expect(second).toEqual({ applied: [], alreadyApplied: REPO, unknown: [] });
    expect(await migrationRows(database.url)).toHaveLength(REPO.length);
  });

  it('applies each migration once when several migrators run at the same time', async () => {
    const dir = await migrationsCopy({
      '20991127000000_second': 'CREATE TABLE "Second" ("id" TEXT NOT NULL);',
    });
    const results = await Promise.all(
      [1, 2, 3].map(() => migrateTestDatabase(database.url, { migrationsDir: dir })),
    );
    const appliedByAll = results.flatMap((result) => result.applied).sort();
    expect(appliedByAll).toEqual([...REPO, '20991127000000_second']);
    for (const result of results) {
      expect([...result.applied, ...result.alreadyApplied].sort()).toEqual([
        ...REPO,
        '20991127000000_second',
      ]);
    }
    expect((await migrationRows(database.url)).map((row) => row.migration_name)).toEqual([
      ...REPO,
      '20991127000000_second',
    ]);
  });

  it('applies only the new migrations, in name order', async () => {
    await migrateTestDatabase(database.url);
    const dir = await migrationsCopy({
      '20991128000000_third': 'ALTER TABLE "Second" ADD COLUMN "note" TEXT;',
      '20991127000000_second': 'CREATE TABLE "Second" ("id" TEXT NOT NULL);',
    });
    const result = await migrateTestDatabase(database.url, { migrationsDir: dir });
    expect(result.applied).toEqual(['20991127000000_second', '20991128000000_third']);
    expect(result.alreadyApplied).toEqual(REPO);
  });

  it('refuses when an applied migration was edited, and applies nothing after it', async () => {
    const dir = await migrationsCopy();
    await migrateTestDatabase(database.url, { migrationsDir: dir });
    await appendFile(join(dir, INIT, 'migration.sql'), '\n-- edited after it was applied\n');
    await mkdir(join(dir, '20991127000000_second'));
    await writeFile(
      join(dir, '20991127000000_second', 'migration.sql'),
      'CREATE TABLE "Second" ("id" TEXT);',
    );

    await expect(migrateTestDatabase(database.url, { migrationsDir: dir })).rejects.toMatchObject({
      code: 'MIGRATE.CHECKSUM_MISMATCH',
      message: expect.stringContaining(INIT),
    });
    expect(await tableExists(database.url, 'Second')).toBe(false);
  });

  it('rolls a failing migration back completely and does not record it', async () => {
    const dir = await migrationsCopy({
      '20991127000000_broken': 'CREATE TABLE "Half" ("id" TEXT);\nSELECT 1 / 0;',
    });
    await expect(migrateTestDatabase(database.url, { migrationsDir: dir })).rejects.toMatchObject({
      code: 'MIGRATE.APPLY_FAILED',
      message: expect.stringContaining('20991127000000_broken'),
      retryable: false,
    });
    expect(await tableExists(database.url, 'Half')).toBe(false);
    expect((await migrationRows(database.url)).map((row) => row.migration_name)).toEqual(REPO);

    await writeFile(join(dir, '20991127000000_broken', 'migration.sql'), 'CREATE TABLE "Half" ("id" TEXT);');
    const retry = await migrateTestDatabase(database.url, { migrationsDir: dir });
    expect(retry.applied).toEqual(['20991127000000_broken']);
  });

  it('refuses while a failed migration is recorded (left by prisma migrate deploy)', async () => {
    await migrateTestDatabase(database.url);
    await withClient(database.url, (client) =>
      client.query(
        `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, applied_steps_count)
         VALUES ('00000000-0000-0000-0000-000000000001', $1, '20991127000000_failed', 0)`,
        [migrationChecksum('x')],
      ),
    );
    await expect(migrateTestDatabase(database.url)).rejects.toMatchObject({
      code: 'MIGRATE.FAILED_MIGRATION_RECORDED',
    });
  });

  it('reports migrations recorded in the database that have no folder', async () => {
    await migrateTestDatabase(database.url);
    await withClient(database.url, (client) =>
      client.query(
        `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, finished_at, applied_steps_count)
         VALUES ('00000000-0000-0000-0000-000000000002', $1, '20261201000000_from_newer_code', now(), 1)`,
        [migrationChecksum('x')],
      ),
    );
    const result = await migrateTestDatabase(database.url);
    expect(result.unknown).toEqual(['20261201000000_from_newer_code']);
    expect(result.applied).toEqual([]);
  });

  it("waits for Prisma's advisory lock and gives up after lockTimeoutMs", async () => {
    await withClient(database.url, async (holder) => {
      await holder.query('SELECT pg_advisory_lock(72707369)');
      const started = Date.now();
      await expect(migrateTestDatabase(database.url, { lockTimeoutMs: 300 })).rejects.toMatchObject({
        code: 'MIGRATE.LOCK_TIMEOUT',
        retryable: true,
      });
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      await holder.query('SELECT pg_advisory_unlock(72707369)');
    });
    expect(await tableExists(database.url, 'Task')).toBe(false);
  });
});

describe('the test helper', () => {
  it('refuses to migrate a database whose name does not start with test_', async () => {
    await expect(migrateTestDatabase(withDatabase(database.url, 'tandem'))).rejects.toThrow(
      /refusing to migrate/,
    );
  });
});

describe('pnpm db:migrate (migrate-cli)', () => {
  const cli = fileURLToPath(new URL('../src/migrate-cli.ts', import.meta.url));

  function runCli(
    env: Record<string, string>,
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const inherited = { ...process.env };
    delete inherited['DATABASE_URL'];
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', cli], { env: { ...inherited, ...env } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  it('explains that DATABASE_URL is missing and exits non-zero', async () => {
    const result = await runCli({});
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('DATABASE_URL is not set');
  });

  it('migrates DATABASE_URL and says what it applied', async () => {
    const first = await runCli({ DATABASE_URL: database.url });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`applied  ${INIT}`);
    const second = await runCli({ DATABASE_URL: database.url });
    expect(second.stdout).toContain('database is up to date');
  });
});
