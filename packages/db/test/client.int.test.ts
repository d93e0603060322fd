import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, isUniqueViolation, type Db, type DbLog, type PrismaTx } from '../src/index.js';
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
    status: 'accepted',
    correlationId: randomUUID(),
  };
}

describe('createDb', () => {
  it('creates and reads a Task row end to end', async () => {
    const data = taskData();
    await db.prisma.task.create({ data });
    const task = await db.prisma.task.findUniqueOrThrow({ where: { id: data.id } });
    expect(task).toMatchObject({ ...data, kind: 'general', agentId: null, budget: null });
    expect(task.createdAt).toBeInstanceOf(Date);
    expect(Math.abs(task.createdAt.getTime() - Date.now())).toBeLessThan(60_000);
  });

  it('runs interactive transactions typed with PrismaTx and rolls them back on error', async () => {
    const data = taskData();
    async function createInside(tx: PrismaTx): Promise<void> {
      await tx.task.create({ data });
      throw new Error('abort');
    }
    await expect(db.prisma.$transaction(createInside)).rejects.toThrow('abort');
    expect(await db.prisma.task.findUnique({ where: { id: data.id } })).toBeNull();
  });

  it('runs sessions in UTC, so database defaults agree with the UTC times Prisma writes', async () => {
    const rows = await db.prisma.$queryRaw<{ TimeZone: string }[]>`SHOW TimeZone`;
    expect(rows[0]?.TimeZone).toBe('UTC');
    const { rows: poolRows } = await db.pool.query<{ TimeZone: string }>('SHOW TimeZone');
    expect(poolRows[0]?.TimeZone).toBe('UTC');
  });

  it('uses the given pool size', () => {
    expect(db.pool.options.max).toBe(3);
  });

  it('close() can be called twice', async () => {
    const other = createDb({ url: database.url });
    await other.prisma.$queryRaw`SELECT 1`;
    await other.close();
    await expect(other.close()).resolves.toBeUndefined();
    expect(other.pool.ended).toBe(true);
  });

  it('sends Prisma errors to the given log', async () => {
    const errors: string[] = [];
    const log: DbLog = { warn: () => undefined, error: (_details, message) => errors.push(message) };
    const other = createDb({ url: database.url, log });
    try {
      await expect(other.prisma.$executeRawUnsafe('SELECT * FROM "NoSuchTable"')).rejects.toThrow();
    } finally {
      await other.close();
    }
    expect(errors.join('\n')).toContain('NoSuchTable');
  });
});

describe('isUniqueViolation', () => {
  it('recognises a duplicate from a model query', async () => {
    const data = taskData({ source: 'cloudevents', externalId: 'event-1' });
    await db.prisma.task.create({ data });
    const error: unknown = await db.prisma.task
      .create({ data: { ...taskData({ source: 'cloudevents', externalId: 'event-1' }) } })
      .catch((caught: unknown) => caught);
    expect(isUniqueViolation(error)).toBe(true);
  });

  it('recognises a duplicate from a raw query and from the pg pool', async () => {
    const id = randomUUID();
    await db.prisma.$executeRaw`INSERT INTO "Agent" ("id") VALUES (${id})`;
    const raw: unknown = await db.prisma.$executeRaw`INSERT INTO "Agent" ("id") VALUES (${id})`.catch(
      (caught: unknown) => caught,
    );
    expect(isUniqueViolation(raw)).toBe(true);
    const fromPool: unknown = await db.pool
      .query('INSERT INTO "Agent" ("id") VALUES ($1)', [id])
      .catch((caught: unknown) => caught);
    expect(isUniqueViolation(fromPool)).toBe(true);
  });

  it('is false for other errors and non-errors', async () => {
    const other: unknown = await db.prisma.$executeRaw`SELECT 1 / 0`.catch((caught: unknown) => caught);
    expect(other).toBeInstanceOf(Error);
    expect(isUniqueViolation(other)).toBe(false);
    expect(isUniqueViolation(new Error('duplicate'))).toBe(false);
    expect(isUniqueViolation(null)).toBe(false);
    expect(isUniqueViolation({ code: 'P2002' })).toBe(false);
  });
});
