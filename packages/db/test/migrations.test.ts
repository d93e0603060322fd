import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TandemError } from '@tandem/contracts';
import { defaultMigrationsDir, MigrationError, migrationChecksum, readMigrations } from '../src/migrate.js';

const temporaryDirs: string[] = [];

async function migrationsFixture(folders: Record<string, string | null>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tandem-migrations-'));
  temporaryDirs.push(dir);
  for (const [name, sql] of Object.entries(folders)) {
    await mkdir(join(dir, name));
    if (sql !== null) await writeFile(join(dir, name, 'migration.sql'), sql);
  }
  await writeFile(join(dir, 'migration_lock.toml'), 'provider = "postgresql"\n');
  return dir;
}

afterEach(async () => {
  await Promise.all(temporaryDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('readMigrations', () => {
  it('reads the folders in name order and ignores files beside them', async () => {
    const dir = await migrationsFixture({
      '20261127000000_second': 'SELECT 2;',
      '20261126000000_first': 'SELECT 1;',
    });
    const migrations = await readMigrations(dir);
    expect(migrations.map((migration) => migration.name)).toEqual([
      '20261126000000_first',
      '20261127000000_second',
    ]);
    expect(migrations[0]?.sql).toBe('SELECT 1;');
  });

  it('checksums the bytes of migration.sql with sha256 hex, as Prisma records them', async () => {
    const sql = '-- CreateTable\nCREATE TABLE "X" ("id" TEXT NOT NULL);\n';
    const dir = await migrationsFixture({ '20261126000000_x': sql });
    const [migration] = await readMigrations(dir);
    expect(migration?.checksum).toBe(createHash('sha256').update(sql).digest('hex'));
    expect(migration?.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(migrationChecksum(sql)).toBe(migration?.checksum);
  });

  it('refuses a migration folder without migration.sql', async () => {
    const dir = await migrationsFixture({ '20261126000000_empty': null });
    await expect(readMigrations(dir)).rejects.toMatchObject({ code: 'MIGRATE.INVALID_FOLDER' });
    await expect(readMigrations(dir)).rejects.toBeInstanceOf(MigrationError);
    // One family: a permanent TandemError.
    await expect(readMigrations(dir)).rejects.toBeInstanceOf(TandemError);
    await expect(readMigrations(dir)).rejects.toMatchObject({ retryable: false, name: 'MigrationError' });
  });
});

describe('the repository migrations', () => {
  it('start with the init migration and carry a postgresql migration_lock.toml', async () => {
    const migrations = await readMigrations(defaultMigrationsDir);
    expect(migrations[0]?.name).toBe('20261126000000_init');
    const lock = await readFile(join(defaultMigrationsDir, 'migration_lock.toml'), 'utf8');
    expect(lock).toMatch(/^provider = "postgresql"$/m);
  });

  it('are written the way Prisma emits SQL', async () => {
    const [init] = await readMigrations(defaultMigrationsDir);
    const sql = init?.sql ?? '';
    expect(sql).toContain('CREATE TABLE "Task" (');
    expect(sql).toContain('CONSTRAINT "Task_pkey" PRIMARY KEY ("id")');
    expect(sql).toContain(
      'CREATE UNIQUE INDEX "Task_source_externalId_key" ON "Task"("source", "externalId");',
    );
    expect(sql).toContain(
      'ALTER TABLE "Plan" ADD CONSTRAINT "Plan_taskId_fkey" FOREIGN KEY ("taskId") REFERENCES "Task"("id") ON DELETE RESTRICT ON UPDATE CASCADE;',
    );
    // Migrations run inside the migrator's transaction; one that manages its own would break that.
    expect(sql).not.toMatch(/^\s*(BEGIN|COMMIT|ROLLBACK)\b/im);
    expect(sql).not.toMatch(/\bCONCURRENTLY\b/i);
  });
});
