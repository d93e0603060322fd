import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { findPostgres } from './infra.js';

/** A database created for one test file; `drop()` removes it (idempotent). */
export interface TestDatabase {
  /** Connection URL of the new database (same server and credentials as the admin URL). */
  url: string;
  /** `test_<random>`. */
  name: string;
  drop(): Promise<void>;
}

/** Options of `createTestDatabase`. */
export interface CreateTestDatabaseOptions {
  /** Applies the schema, e.g. the migrator of @tandem/db; called with the new database's URL. */
  migrate?: (url: string) => Promise<void>;
  /** Connection used to create and drop; default `findPostgres()`. */
  adminUrl?: string;
}

const TEST_DATABASE_NAME = /^test_[a-z0-9_]{1,58}$/;

/** Whether `name` is a database these helpers may create, migrate and drop (`test_` + [a-z0-9_]). */
export function isTestDatabaseName(name: string): boolean {
  return TEST_DATABASE_NAME.test(name);
}

/** Creates a fresh `test_<random>` database through an admin connection and runs `migrate` on it. */
export async function createTestDatabase(options: CreateTestDatabaseOptions = {}): Promise<TestDatabase> {
  const adminUrl = options.adminUrl ?? (await findPostgres()).url;
  const name = `test_${randomBytes(8).toString('hex')}`;
  await withAdmin(adminUrl, (client) => client.query(`CREATE DATABASE ${quoteIdentifier(name)}`));
  const url = databaseUrl(adminUrl, name);
  let dropped = false;
  const drop = async (): Promise<void> => {
    if (dropped) return;
    await dropTestDatabase(name, { adminUrl });
    dropped = true;
  };
  if (options.migrate !== undefined) {
    try {
      await options.migrate(url);
    } catch (error) {
      await drop().catch(() => undefined);
      throw error;
    }
  }
  return { url, name, drop };
}

/** Drops a test database, disconnecting its sessions; throws for any name not starting with `test_`. */
export async function dropTestDatabase(name: string, options: { adminUrl?: string } = {}): Promise<void> {
  if (!isTestDatabaseName(name)) {
    throw new Error(
      `refusing to drop database "${name}": only databases named test_<letters, digits, _> are dropped by test helpers`,
    );
  }
  const adminUrl = options.adminUrl ?? (await findPostgres()).url;
  if (databaseNameOf(adminUrl) === name) {
    throw new Error(`refusing to drop database "${name}": it is the admin connection's own database`);
  }
  await withAdmin(adminUrl, (client) =>
    client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`),
  );
}

/** The same server and credentials as `url`, pointed at database `name`. */
function databaseUrl(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

function databaseNameOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
}

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

async function withAdmin<T>(adminUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
