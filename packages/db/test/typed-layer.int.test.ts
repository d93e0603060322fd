import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { JsonValue } from '@tandem/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  afterCommit,
  createDb,
  enqueueOutbox,
  json,
  markProcessed,
  onOutboxCommitted,
  transaction,
  type Db,
  type OutboxMessage,
} from '../src/index.js';
import { prepared } from '../src/prepared.js';
import { createMigratedTestDatabase, type TestDatabase } from './helpers/test-database.js';

let database: TestDatabase;
let db: Db;

beforeAll(async () => {
  database = await createMigratedTestDatabase();
  db = createDb({ url: database.url, poolMax: 4 });
});

afterAll(async () => {
  await db.close();
  await database.drop();
});

function outboxMessage(publisher: string, payload: JsonValue = { hello: 'world' }): OutboxMessage {
  return { id: randomUUID(), publisher, subject: 'test.thing.happened.v1', payload: { value: payload } };
}

describe('transaction', () => {
  it('commits, then runs its after-commit hooks in order', async () => {
    const seen: string[] = [];
    const messageId = randomUUID();
    const result = await transaction(db, async (tx) => {
      afterCommit(tx, () => seen.push('first'));
      afterCommit(tx, () => seen.push('second'));
      expect(await markProcessed(tx, 'typed-layer', messageId)).toBe(true);
      expect(seen).toEqual([]);
      return 'done';
    });
    expect(result).toBe('done');
    expect(seen).toEqual(['first', 'second']);
    const rows = await db.kysely
      .selectFrom('ProcessedMessage')
      .select('messageId')
      .where('messageId', '=', messageId)
      .execute();
    expect(rows).toHaveLength(1);
  });

  it('rolls back on a throw, rethrows it and never runs the hooks', async () => {
    const messageId = randomUUID();
    let hookRan = false;
    await expect(
      transaction(db, async (tx) => {
        afterCommit(tx, () => {
          hookRan = true;
        });
        await markProcessed(tx, 'typed-layer', messageId);
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(hookRan).toBe(false);
    expect(await transaction(db, (tx) => markProcessed(tx, 'typed-layer', messageId))).toBe(true);
  });

  it('keeps the handler error when the connection dies under it, and reports DB.CONNECTION_LOST', async () => {
    const failure = transaction(db, async (tx) => {
      const backend = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(tx);
      const pid = backend.rows[0]?.pid;
      // A second connection terminates this one: the next statement meets a dead socket.
      await sql`SELECT pg_terminate_backend(${pid})`.execute(db.kysely);
      await sql`SELECT 1`.execute(tx);
    });
    await expect(failure).rejects.toMatchObject({ code: 'DB.CONNECTION_LOST', retryable: true });
    // The pool still works: the dead connection was destroyed, not pooled again.
    for (let attempt = 0; attempt < 6; attempt++) await sql`SELECT 1`.execute(db.kysely);
  });

  it('does not wait for the WAL flush with durable: false', async () => {
    const setting = await transaction(
      db,
      async (tx) =>
        (await sql<{ value: string }>`SELECT current_setting('synchronous_commit') AS value`.execute(tx))
          .rows[0]?.value,
      { durable: false },
    );
    expect(setting).toBe('off');
  });
});

describe('markProcessed', () => {
  it('is true the first time and false for a redelivery, per consumer', async () => {
    const messageId = randomUUID();
    expect(await transaction(db, (tx) => markProcessed(tx, 'a', messageId))).toBe(true);
    expect(await transaction(db, (tx) => markProcessed(tx, 'a', messageId))).toBe(false);
    expect(await transaction(db, (tx) => markProcessed(tx, 'b', messageId))).toBe(true);
  });
});

describe('timestamps', () => {
  it('are written and read as UTC wall-clock time whatever the session time zone would say', async () => {
    const messageId = randomUUID();
    const at = new Date('2026-03-29T01:30:00.123Z');
    await db.kysely
      .insertInto('ProcessedMessage')
      .values({ consumer: 'tz', messageId, processedAt: at })
      .execute();
    const row = await db.kysely
      .selectFrom('ProcessedMessage')
      .select(['processedAt', sql<string>`"processedAt"::text`.as('text')])
      .where('messageId', '=', messageId)
      .executeTakeFirstOrThrow();
    expect(row.text).toBe('2026-03-29 01:30:00.123');
    expect(row.processedAt.toISOString()).toBe(at.toISOString());
  });
});

describe('enqueueOutbox', () => {
  it('stores payloads made safe for jsonb, arrays included, and claims the relay publisher rows', async () => {
    const committed: string[] = [];
    const detach = onOutboxCommitted(db, {
      publisher: 'typed-mine',
      claim: () => ({ holder: 'relay-1', leaseMs: 15_000 }),
      committed: (messages) => committed.push(...messages.map((message) => message.id)),
    });
    const mine = outboxMessage('typed-mine', ['a\u0000b', { deep: [1, 2] }]);
    const theirs = outboxMessage('typed-theirs');
    try {
      await transaction(db, async (tx) => {
        await enqueueOutbox(tx, [mine, theirs]);
        expect(committed).toEqual([]);
      });
    } finally {
      detach();
    }
    expect(committed).toEqual([mine.id]);
    const rows = await db.kysely
      .selectFrom('Outbox')
      .select(['id', 'payload', 'claimedBy', 'claimedUntil'])
      .where('id', 'in', [mine.id, theirs.id])
      .execute();
    const byId = new Map(rows.map((row) => [row.id, row]));
    expect(byId.get(mine.id)?.payload).toEqual({ value: ['a\uFFFDb', { deep: [1, 2] }] });
    expect(byId.get(mine.id)?.claimedBy).toBe('relay-1');
    expect(byId.get(mine.id)?.claimedUntil).toBeInstanceOf(Date);
    expect(byId.get(theirs.id)?.claimedBy).toBeNull();
  });

  it('writes nothing when the transaction rolls back', async () => {
    const message = outboxMessage('typed-rollback');
    await expect(
      transaction(db, async (tx) => {
        await enqueueOutbox(tx, message);
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    const rows = await db.kysely.selectFrom('Outbox').select('id').where('id', '=', message.id).execute();
    expect(rows).toEqual([]);
  });
});

describe('json', () => {
  it('stores arrays as jsonb arrays', async () => {
    const id = randomUUID();
    await db.kysely
      .insertInto('Outbox')
      .values({ id, publisher: 'typed-json', subject: 's', payload: json([1, 'two']), createdAt: new Date() })
      .execute();
    const row = await db.kysely
      .selectFrom('Outbox')
      .select('payload')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row.payload).toEqual([1, 'two']);
  });
});

describe('prepared', () => {
  const insertCall = prepared((q, p: { id: string; at: Date; input: unknown; ids: string[] }) =>
    q
      .insertInto('Agent')
      .values({ id: p.id, createdAt: p.at })
      .returning([
        'id',
        'createdAt',
        sql<unknown>`${json(p.input)}`.as('input'),
        sql<number>`cardinality(${p.ids}::uuid[])`.as('count'),
      ]),
  );

  it('builds once and fills in each run, on the database and in a transaction, Dates as UTC and json made safe', async () => {
    const at = new Date('2026-01-02T03:04:05.678Z');
    const first = await insertCall(db, { id: randomUUID(), at, input: { text: 'a\u0000b' }, ids: [] });
    const [second] = (
      await transaction(db, (tx) =>
        insertCall(tx, { id: randomUUID(), at, input: [1, 'two'], ids: [randomUUID(), randomUUID()] }),
      )
    ).rows;
    expect(first.rows[0]).toMatchObject({ createdAt: at, input: { text: 'a\uFFFDb' }, count: 0 });
    expect(second).toMatchObject({ createdAt: at, input: [1, 'two'], count: 2 });
    expect(second?.id).not.toBe(first.rows[0]?.id);
    const stored = await db.kysely
      .selectFrom('Agent')
      .select('createdAt')
      .where('id', '=', second?.id ?? '')
      .executeTakeFirstOrThrow();
    expect(stored.createdAt).toEqual(at);
  });
});
