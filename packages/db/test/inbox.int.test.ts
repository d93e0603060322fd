import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, isProcessed, markProcessed, transaction, type Db } from '../src/index.js';
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

/** A promise and the function that settles it. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

describe('markProcessed', () => {
  it('is true the first time and false on redelivery', async () => {
    const messageId = randomUUID();
    expect(await transaction(db, (tx) => markProcessed(tx, 'planner.task-accepted', messageId))).toBe(true);
    expect(await transaction(db, (tx) => markProcessed(tx, 'planner.task-accepted', messageId))).toBe(false);
  });

  it('keeps consumers apart', async () => {
    const messageId = randomUUID();
    expect(await transaction(db, (tx) => markProcessed(tx, 'executor.plan-approved', messageId))).toBe(true);
    expect(await transaction(db, (tx) => markProcessed(tx, 'learning.plan-approved', messageId))).toBe(true);
  });

  it('forgets the message when the handler transaction rolls back, so the redelivery is handled', async () => {
    const messageId = randomUUID();
    await expect(
      transaction(db, async (tx) => {
        await markProcessed(tx, 'approval.plan-proposed', messageId);
        throw new Error('effect failed');
      }),
    ).rejects.toThrow('effect failed');
    expect(await transaction(db, (tx) => markProcessed(tx, 'approval.plan-proposed', messageId))).toBe(true);
  });

  it('lets only one of two concurrent deliveries through', async () => {
    const messageId = randomUUID();
    const firstInserted = gate();
    const releaseFirst = gate();
    const first = transaction(db, async (tx) => {
      const inserted = await markProcessed(tx, 'executor.step', messageId);
      firstInserted.open();
      await releaseFirst.wait;
      return inserted;
    });
    await firstInserted.wait;
    // The second delivery's insert waits on the first transaction's row until it commits.
    const second = transaction(db, (tx) => markProcessed(tx, 'executor.step', messageId));
    await new Promise((resolve) => setTimeout(resolve, 100));
    releaseFirst.open();
    expect(await Promise.all([first, second])).toEqual([true, false]);
  });

  it('is what isProcessed reads once the transaction committed, and only then', async () => {
    const messageId = randomUUID();
    const inserted = gate();
    const release = gate();
    const handling = transaction(db, async (tx) => {
      await markProcessed(tx, 'executor.step', messageId);
      inserted.open();
      await release.wait;
    });
    await inserted.wait;
    expect(await isProcessed(db, 'executor.step', messageId)).toBe(false);
    release.open();
    await handling;
    expect(await isProcessed(db, 'executor.step', messageId)).toBe(true);
    expect(await isProcessed(db, 'learning.step', messageId)).toBe(false);
  });
});
