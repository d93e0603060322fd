import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  claimUnpublished,
  createDb,
  enqueueOutbox,
  fetchUnpublished,
  onOutboxCommitted,
  releaseClaims,
  transaction,
  isUniqueViolation,
  markPublished,
  recordPublishFailure,
  type Db,
  type OutboxMessage,
} from '../src/index.js';
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

function message(publisher: string, index: number, headers?: Record<string, string>): OutboxMessage {
  return {
    id: randomUUID(),
    publisher,
    subject: `tandem.task.accepted.v1`,
    payload: { index, data: { nested: [1, 'two', null, true] } },
    ...(headers === undefined ? {} : { headers }),
  };
}

describe('enqueueOutbox', () => {
  it('writes rows only when the transaction commits', async () => {
    const kept = message('planner-commit', 0);
    const dropped = message('planner-commit', 1);
    await transaction(db, async (tx) => enqueueOutbox(tx, kept));
    await expect(
      transaction(db, async (tx) => {
        await enqueueOutbox(tx, dropped);
        throw new Error('handler failed');
      }),
    ).rejects.toThrow('handler failed');
    const pending = await fetchUnpublished(db, 'planner-commit', 10);
    expect(pending.map((row) => row.id)).toEqual([kept.id]);
  });

  it('writes many rows at once, beyond one INSERT statement, and the relay reads them in order', async () => {
    const messages = Array.from({ length: 2500 }, (_, index) => message('planner-bulk', index));
    await transaction(db, async (tx) => enqueueOutbox(tx, messages));
    const first = await fetchUnpublished(db, 'planner-bulk', 3000);
    expect(first).toHaveLength(2500);
    expect(first.map((row) => row.id)).toEqual(messages.map((row) => row.id));
    const seqs = first.map((row) => row.seq);
    expect(seqs.every((seq, index) => index === 0 || seq > (seqs[index - 1] ?? 0n))).toBe(true);
  });

  it('round-trips payload, headers and subject, with a UTC createdAt', async () => {
    const withHeaders = message('planner-shape', 0, { 'Nats-Msg-Id': 'abc', traceparent: '00-1-2-01' });
    const withoutHeaders = message('planner-shape', 1);
    await transaction(db, async (tx) => enqueueOutbox(tx, [withHeaders, withoutHeaders]));
    const [first, second] = await fetchUnpublished(db, 'planner-shape', 10);
    expect(first).toMatchObject({
      id: withHeaders.id,
      subject: 'tandem.task.accepted.v1',
      payload: withHeaders.payload,
      headers: { 'Nats-Msg-Id': 'abc', traceparent: '00-1-2-01' },
      attempts: 0,
    });
    expect(second?.headers).toEqual({});
    expect(typeof first?.seq).toBe('bigint');
    expect(Math.abs((first?.createdAt.getTime() ?? 0) - Date.now())).toBeLessThan(60_000);
  });

  it('refuses a second row with the same id', async () => {
    const once = message('planner-dup', 0);
    await transaction(db, async (tx) => enqueueOutbox(tx, once));
    const error: unknown = await transaction(db, async (tx) => enqueueOutbox(tx, { ...once })).catch(
      (caught: unknown) => caught,
    );
    expect(isUniqueViolation(error)).toBe(true);
  });
});

describe('relay store functions', () => {
  it('enqueueOutbox round-trips payloads and headers with quotes, backslashes, braces and unicode', async () => {
    const tricky = {
      id: randomUUID(),
      publisher: 'relay-tricky',
      subject: 'tandem.task.accepted.v1',
      payload: {
        text: 'a "quoted" \\ back\\slash, {braces} [1,2] NULL \u00e9 \ud83d\ude00',
        list: ['"', '\\', ',', '}'],
      },
      headers: { 'X-Odd': 'a "b" \\ c, {d}' },
    };
    const plain = {
      id: randomUUID(),
      publisher: 'relay-tricky',
      subject: 'tandem.task.accepted.v1',
      payload: 'NULL',
    };
    await transaction(db, async (tx) => enqueueOutbox(tx, [tricky, plain]));
    const [first, second] = await fetchUnpublished(db, 'relay-tricky', 10);
    expect(first?.payload).toEqual(tricky.payload);
    expect(first?.headers).toEqual(tricky.headers);
    expect(second?.payload).toBe('NULL');
    expect(second?.headers).toEqual({});
  });

  it('concurrent claims of one publisher take disjoint rows, oldest first; a released row is claimed again', async () => {
    const rows = Array.from({ length: 40 }, (_, index) => message('relay-claims', index));
    await transaction(db, async (tx) => enqueueOutbox(tx, rows));
    const claims = await Promise.all(
      ['a', 'b', 'c', 'd'].map((holder) =>
        claimUnpublished(db, 'relay-claims', { holder, leaseMs: 60_000 }, 15),
      ),
    );
    const claimed = claims.flat().map((row) => row.id);
    expect(new Set(claimed).size).toBe(claimed.length);
    expect(claimed.length).toBe(40);
    for (const batch of claims)
      expect(batch.map((row) => row.seq)).toEqual(
        [...batch.map((row) => row.seq)].sort((x, y) => (x < y ? -1 : 1)),
      );
    // Everything is held: nothing more to claim, until a holder releases what it did not publish.
    expect(await claimUnpublished(db, 'relay-claims', { holder: 'e', leaseMs: 60_000 }, 100)).toEqual([]);
    const first = claims[0] ?? [];
    expect(
      await releaseClaims(
        db,
        'not-the-holder',
        first.map((row) => row.id),
      ),
    ).toBe(0);
    expect(
      await releaseClaims(
        db,
        'a',
        first.map((row) => row.id),
      ),
    ).toBe(first.length);
    const again = await claimUnpublished(db, 'relay-claims', { holder: 'e', leaseMs: 60_000 }, 100);
    expect(again.map((row) => row.id).sort()).toEqual(first.map((row) => row.id).sort());
  });

  it('enqueueOutbox inserts the rows of the hand-over publisher claimed, and hands them over after COMMIT', async () => {
    const handed: string[][] = [];
    const detach = onOutboxCommitted(db, {
      publisher: 'relay-hand',
      claim: () => ({ holder: 'relay-hand:1', leaseMs: 60_000 }),
      committed: (messages) => handed.push(messages.map((one) => one.id)),
    });
    try {
      const mine = message('relay-hand', 0);
      const other = message('relay-other', 0);
      await transaction(db, async (tx) => {
        await enqueueOutbox(tx, [mine, other]);
        expect(handed).toEqual([]);
      });
      expect(handed).toEqual([[mine.id]]);
      const stored = await db.kysely
        .selectFrom('Outbox')
        .selectAll()
        .where('id', 'in', [mine.id, other.id])
        .execute();
      expect(stored.find((row) => row.id === mine.id)?.claimedBy).toBe('relay-hand:1');
      expect(stored.find((row) => row.id === other.id)?.claimedBy).toBeNull();
      // A claimed row is nobody else's to claim; the other publisher's row is free.
      expect(await claimUnpublished(db, 'relay-hand', { holder: 'x', leaseMs: 1_000 }, 10)).toEqual([]);
      expect(
        (await claimUnpublished(db, 'relay-other', { holder: 'x', leaseMs: 1_000 }, 10)).map((row) => row.id),
      ).toEqual([other.id]);
      // A transaction that rolls back hands nothing over.
      await expect(
        transaction(db, async (tx) => {
          await enqueueOutbox(tx, message('relay-hand', 1));
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      expect(handed).toHaveLength(1);
    } finally {
      detach();
    }
  });

  it('fetchUnpublished reads only the publisher, oldest first, up to the limit', async () => {
    const mine = [message('relay-a', 0), message('relay-a', 1), message('relay-a', 2)];
    await transaction(db, async (tx) =>
      enqueueOutbox(tx, [mine[0]!, message('relay-b', 0), mine[1]!, mine[2]!]),
    );
    const pending = await fetchUnpublished(db, 'relay-a', 2);
    expect(pending.map((row) => row.id)).toEqual([mine[0]?.id, mine[1]?.id]);
    await expect(fetchUnpublished(db, 'relay-a', 0)).rejects.toThrow(RangeError);
  });

  it('fetchUnpublished holds no lock while the caller publishes', async () => {
    const row = message('relay-lock', 0);
    await transaction(db, async (tx) => enqueueOutbox(tx, row));
    const pending = await fetchUnpublished(db, 'relay-lock', 10);
    expect(pending).toHaveLength(1);
    // While "publishing", another session can lock the same row at once: nothing holds it.
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const locked = await client.query('SELECT id FROM "Outbox" WHERE id = $1 FOR UPDATE NOWAIT', [row.id]);
      expect(locked.rowCount).toBe(1);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
  });

  it('markPublished hides rows from the next fetch and counts only rows it changed', async () => {
    const rows = [message('relay-mark', 0), message('relay-mark', 1), message('relay-mark', 2)];
    await transaction(db, async (tx) => enqueueOutbox(tx, rows));
    expect(await markPublished(db, [rows[0]!.id, rows[1]!.id])).toBe(2);
    expect(await markPublished(db, [rows[0]!.id])).toBe(0);
    expect(await markPublished(db, [])).toBe(0);
    const pending = await fetchUnpublished(db, 'relay-mark', 10);
    expect(pending.map((row) => row.id)).toEqual([rows[2]?.id]);
    const published = await db.kysely
      .selectFrom('Outbox')
      .selectAll()
      .where('id', '=', rows[0]!.id)
      .executeTakeFirstOrThrow();
    expect(published.publishedAt).toBeInstanceOf(Date);
  });

  it('recordPublishFailure counts attempts, keeps the error and leaves the row pending', async () => {
    const row = message('relay-fail', 0);
    await transaction(db, async (tx) => enqueueOutbox(tx, row));
    await recordPublishFailure(db, row.id, new Error('no responders'));
    await recordPublishFailure(db, row.id, `timeout \u0000 ${'x'.repeat(5000)}`);
    const [pending] = await fetchUnpublished(db, 'relay-fail', 10);
    expect(pending?.attempts).toBe(2);
    const stored = await db.kysely
      .selectFrom('Outbox')
      .selectAll()
      .where('id', '=', row.id)
      .executeTakeFirstOrThrow();
    expect(stored.lastError).toMatch(/^timeout \uFFFD x+$/);
    expect(stored.lastError?.length).toBe(2000);
  });
});
