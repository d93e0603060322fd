import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createTestDatabase, dropTestDatabase, findPostgres, isTestDatabaseName } from '../src/index.js';

async function databaseExists(name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: (await findPostgres()).url });
  await client.connect();
  try {
    const result = await client.query('select 1 from pg_database where datname = $1', [name]);
    return result.rowCount === 1;
  } finally {
    await client.end();
  }
}

describe('test databases', () => {
  it('creates a migrated test_ database and drops it even with open sessions', async () => {
    const seen: string[] = [];
    const database = await createTestDatabase({
      migrate: async (url) => {
        seen.push(url);
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        await client.query('create table widget (id int primary key)');
        await client.end();
      },
    });
    expect(database.name).toMatch(/^test_[0-9a-f]{16}$/);
    expect(seen).toEqual([database.url]);
    expect(new URL(database.url).pathname).toBe(`/${database.name}`);

    // An open session must not block the drop (WITH (FORCE)).
    const session = new pg.Client({ connectionString: database.url });
    session.on('error', () => undefined);
    await session.connect();
    const tables = await session.query("select count(*)::int as n from pg_tables where tablename = 'widget'");
    expect(tables.rows[0]).toEqual({ n: 1 });

    await database.drop();
    expect(await databaseExists(database.name)).toBe(false);
    await database.drop(); // idempotent
    await session.end().catch(() => undefined);
  });

  it('drops the database when migrate fails', async () => {
    let name = '';
    await expect(
      createTestDatabase({
        migrate: (url) => {
          name = new URL(url).pathname.slice(1);
          return Promise.reject(new Error('migration 3 broke'));
        },
      }),
    ).rejects.toThrow('migration 3 broke');
    expect(isTestDatabaseName(name)).toBe(true);
    expect(await databaseExists(name)).toBe(false);
  });

  it('refuses to drop a database whose name does not start with test_', async () => {
    await expect(dropTestDatabase('postgres')).rejects.toThrow(/refusing to drop database "postgres"/);
    await expect(dropTestDatabase('tandem')).rejects.toThrow(/refusing/);
    await expect(dropTestDatabase('test_x"; drop database postgres; --')).rejects.toThrow(/refusing/);
    expect(await databaseExists('postgres')).toBe(true);
  });
});
