// Per-test-file databases for this package's own integration tests. Other packages get theirs from
// @tandem/testing, which itself builds on this package's migrator, so db keeps its own small helper.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate, type MigrateOptions, type MigrateResult } from '../../src/migrate.js';

const DEFAULT_ADMIN_URL = 'postgresql://postgres@127.0.0.1:5432/postgres';

/** A throwaway database named `test_db_<random>`. */
export interface TestDatabase {
  name: string;
  url: string;
  /** Drops the database, disconnecting whoever is still connected. */
  drop(): Promise<void>;
}

/** The admin connection string: DATABASE_URL when set, else the local server's `postgres` database. */
export function adminUrl(): string {
  const fromEnv = process.env['DATABASE_URL'];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : DEFAULT_ADMIN_URL;
}

/** The same server as `url`, another database. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** The database name a connection string points at. */
export function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
}

/** Creates an empty database `test_db_<random>` through the admin connection. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `test_db_${randomBytes(6).toString('hex')}`;
  const admin = adminUrl();
  await withClient(admin, (client) => client.query(`CREATE DATABASE "${name}"`));
  return {
    name,
    url: withDatabase(admin, name),
    drop: () =>
      withClient(admin, async (client) => {
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      }),
  };
}

/** Migrates a test database; refuses any database whose name does not start with `test_`. */
export async function migrateTestDatabase(
  url: string,
  options: Omit<MigrateOptions, 'url'> = {},
): Promise<MigrateResult> {
  const name = databaseName(url);
  if (!name.startsWith('test_')) {
    throw new Error(`refusing to migrate database "${name}" from a test: its name does not start with test_`);
  }
  return migrate({ ...options, url });
}

/** Creates and migrates a test database. */
export async function createMigratedTestDatabase(): Promise<TestDatabase> {
  const database = await createTestDatabase();
  try {
    await migrateTestDatabase(database.url);
  } catch (error) {
    await database.drop();
    throw error;
  }
  return database;
}

/** Runs `work` on a short-lived connection to `url`. */
export async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
