import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, isUniqueViolation, json, transaction, type Db, type DbLog } from '../src/index.js';
import { createMigratedTestDatabase, type TestDatabase } from './helpers/test-database.js';

let database: TestDatabase;
let db: Db;

beforeAll(async () => {
  database = await createMigratedTestDatabase();
  db = createDb({ url: database.url, poolMax: 3 });
});

afterAll(async () => {
  await db.close();
  await database.drop();
});

function taskData(overrides: { source?: string; externalId?: string } = {}) {
  return {
    id: randomUUID(),
    source: overrides.source ?? 'test',
    externalId: overrides.externalId ?? randomUUID(),
    requestHash: 'hash',
    goal: 'summarise the report',
    input: { text: 'hello', tags: ['a', 'b'] },
    status: 'accepted' as const,
    correlationId: randomUUID(),
  };
}

describe('createDb', () => {
  it('creates and reads a Task row end to end', async () => {
    const data = taskData();
    await db.kysely
      .insertInto('Task')
      .values({ ...data, input: json(data.input), updatedAt: new Date() })
      .execute();
    const task = await db.kysely
      .selectFrom('Task')
      .selectAll()
      .where('id', '=', data.id)
      .executeTakeFirstOrThrow();
    expect(task).toMatchObject({ ...data, kind: 'general', agentId: null, budget: null });
    expect(task.createdAt).toBeInstanceOf(Date);
    expect(Math.abs(task.createdAt.getTime() - Date.now())).toBeLessThan(60_000);
  });

  it('rolls a transaction back when its function throws', async () => {
    const data = taskData();
    await expect(
      transaction(db, async (tx) => {
        await tx
          .insertInto('Task')
          .values({ ...data, input: json(data.input), updatedAt: new Date() })
          .execute();
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(
      await db.kysely.selectFrom('Task').select('id').where('id', '=', data.id).executeTakeFirst(),
    ).toBeUndefined();
  });

  it('runs sessions in UTC, so database defaults agree with the UTC times the layer writes', async () => {
    const { rows } = await db.pool.query<{ TimeZone: string }>('SHOW TimeZone');
    expect(rows[0]?.TimeZone).toBe('UTC');
    const agent = randomUUID();
    const before = Date.now();
    await db.kysely.insertInto('Agent').values({ id: agent }).execute();
    const stored = await db.kysely
      .selectFrom('Agent')
      .select('createdAt')
      .where('id', '=', agent)
      .executeTakeFirstOrThrow();
    // The column default (CURRENT_TIMESTAMP in a UTC session) read back as UTC is the real time.
    expect(Math.abs(stored.createdAt.getTime() - before)).toBeLessThan(60_000);
  });

  it('uses the given pool size', () => {
    expect(db.pool.options.max).toBe(3);
  });

  it('close() can be called twice', async () => {
    const other = createDb({ url: database.url });
    await other.kysely.selectFrom('Agent').select('id').limit(1).execute();
    await other.close();
    await expect(other.close()).resolves.toBeUndefined();
    expect(other.pool.ended).toBe(true);
  });

  it('logs an idle connection that dies instead of crashing the process', async () => {
    const errors: string[] = [];
    const log: DbLog = { warn: () => undefined, error: (_details, message) => errors.push(message) };
    const other = createDb({ url: database.url, poolMax: 1, log });
    try {
      const { rows } = await other.pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await db.pool.query('SELECT pg_terminate_backend($1::int)', [rows[0]?.pid]);
      const deadline = Date.now() + 10_000;
      while (errors.length === 0 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 20));
      // The pool works again with a new connection.
      await other.kysely.selectFrom('Agent').select('id').limit(1).execute();
    } finally {
      await other.close();
    }
    expect(errors).toContain('postgres idle connection error');
  });
});

describe('isUniqueViolation', () => {
  it('recognises a duplicate from the typed builder and from the pg pool', async () => {
    const id = randomUUID();
    await db.kysely.insertInto('Agent').values({ id }).execute();
    const typed: unknown = await db.kysely
      .insertInto('Agent')
      .values({ id })
      .execute()
      .catch((caught: unknown) => caught);
    expect(isUniqueViolation(typed)).toBe(true);
    const inTransaction: unknown = await transaction(db, (tx) =>
      tx.insertInto('Agent').values({ id }).execute(),
    ).catch((caught: unknown) => caught);
    expect(isUniqueViolation(inTransaction)).toBe(true);
    const fromPool: unknown = await db.pool
      .query('INSERT INTO "Agent" ("id") VALUES ($1)', [id])
      .catch((caught: unknown) => caught);
    expect(isUniqueViolation(fromPool)).toBe(true);
  });

  it('is false for other errors and non-errors', async () => {
    const other: unknown = await db.pool.query('SELECT 1 / 0').catch((caught: unknown) => caught);
    expect(other).toBeInstanceOf(Error);
    expect(isUniqueViolation(other)).toBe(false);
    expect(isUniqueViolation(new Error('duplicate'))).toBe(false);
    expect(isUniqueViolation(null)).toBe(false);
    expect(isUniqueViolation({ code: '23505' })).toBe(false);
  });
});
