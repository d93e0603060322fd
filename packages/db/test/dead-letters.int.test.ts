import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, recordDeadLetter, transaction, type Db, type DeadLetterInput } from '../src/index.js';
import { createMigratedTestDatabase, type TestDatabase } from './helpers/test-database.js';

let database: TestDatabase;
let db: Db;

beforeAll(async () => {
  database = await createMigratedTestDatabase();
  db = createDb({ url: database.url, poolMax: 2 });
});

afterAll(async () => {
  await db.close();
  await database.drop();
});

function deadLetter(overrides: Partial<DeadLetterInput> = {}): DeadLetterInput {
  return {
    consumer: 'planner.task-accepted',
    subject: 'tandem.task.accepted.v1',
    code: 'BUS.SCHEMA_INVALID',
    reason: 'data.goal: expected string',
    payload: '{"bad":true}',
    ...overrides,
  };
}

describe('recordDeadLetter', () => {
  it('records once per (consumer, streamSeq), whatever id a repeat carries', async () => {
    expect(await recordDeadLetter(db, deadLetter({ streamSeq: 42 }))).toBe(true);
    expect(await recordDeadLetter(db, deadLetter({ streamSeq: 42, reason: 'again' }))).toBe(false);
    expect(
      await recordDeadLetter(db, deadLetter({ streamSeq: 42, consumer: 'learning.task-accepted' })),
    ).toBe(true);
    const rows = await db.kysely.selectFrom('DeadLetter').selectAll().where('streamSeq', '=', '42').execute();
    expect(rows.map((row) => row.consumer).sort()).toEqual([
      'learning.task-accepted',
      'planner.task-accepted',
    ]);
    expect(rows.find((row) => row.consumer === 'planner.task-accepted')?.reason).toBe(
      'data.goal: expected string',
    );
  });

  it('without a stream sequence, is idempotent on the id', async () => {
    const id = randomUUID();
    expect(await recordDeadLetter(db, deadLetter({ id, consumer: 'no-seq' }))).toBe(true);
    expect(await recordDeadLetter(db, deadLetter({ id, consumer: 'no-seq' }))).toBe(false);
    expect(await recordDeadLetter(db, deadLetter({ consumer: 'no-seq' }))).toBe(true);
    const rows = await db.kysely
      .selectFrom('DeadLetter')
      .select('id')
      .where('consumer', '=', 'no-seq')
      .execute();
    expect(rows).toHaveLength(2);
  });

  it('stores what a poison message carries: bytes, NUL characters, headers, big sequences', async () => {
    const id = randomUUID();
    const streamSeq = 2n ** 60n;
    const recorded = await recordDeadLetter(
      db,
      deadLetter({
        id,
        consumer: 'poison',
        streamSeq,
        messageId: 'msg-1',
        payload: new Uint8Array([0x7b, 0x00, 0xff, 0x7d]),
        reason: 'nul \u0000 inside',
        headers: { 'Nats-Msg-Id': 'msg-1', odd: 'a\u0000b' },
        deliveryCount: 5,
      }),
    );
    expect(recorded).toBe(true);
    const row = await db.kysely
      .selectFrom('DeadLetter')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({
      streamSeq: streamSeq.toString(),
      messageId: 'msg-1',
      payload: '{\uFFFD\uFFFD}',
      reason: 'nul \uFFFD inside',
      headers: { 'Nats-Msg-Id': 'msg-1', odd: 'a\uFFFDb' },
      deliveryCount: 5,
      code: 'BUS.SCHEMA_INVALID',
    });
  });

  it('works inside a transaction too', async () => {
    const id = randomUUID();
    await transaction(db, async (tx) => {
      expect(await recordDeadLetter(tx, deadLetter({ id, consumer: 'in-tx', streamSeq: 7 }))).toBe(true);
    });
    const rows = await db.kysely.selectFrom('DeadLetter').select('id').where('id', '=', id).execute();
    expect(rows).toHaveLength(1);
  });
});

describe('the task of a dead letter', () => {
  it('is read from data.taskId, a CloudEvent subject or the correlation id, else null', async () => {
    const { taskIdOfPayload } = await import('../src/index.js');
    const task = randomUUID();
    expect(taskIdOfPayload(JSON.stringify({ correlationId: randomUUID(), data: { taskId: task } }))).toBe(
      task,
    );
    expect(taskIdOfPayload(JSON.stringify({ specversion: '1.0', subject: task, data: {} }))).toBe(task);
    expect(taskIdOfPayload(JSON.stringify({ correlationId: task, data: { taskId: 'nope' } }))).toBe(task);
    expect(taskIdOfPayload('{"data":{"taskId":"not-a-uuid"}}')).toBeNull();
    expect(taskIdOfPayload('not json')).toBeNull();
    expect(
      await recordDeadLetter(db, deadLetter({ payload: JSON.stringify({ data: { taskId: task } }) })),
    ).toBe(true);
    const row = await db.kysely
      .selectFrom('DeadLetter')
      .select('taskId')
      .where('taskId', '=', task)
      .executeTakeFirstOrThrow();
    expect(row.taskId).toBe(task);
  });
});
