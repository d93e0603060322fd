import type { PrismaTx } from './client.js';
import type { Tx } from './transaction.js';
import type { Sql } from './sql.js';

/**
 * Records that `consumer` handled `messageId`, in the handler's transaction. Returns true the first
 * time, false when it was already recorded: the handler then skips its effects and acks, so a
 * redelivered message is harmless. A concurrent duplicate waits for the first transaction and gets
 * false once it commits (or true if it rolled back).
 */
export async function markProcessedPrisma(
  tx: PrismaTx,
  consumer: string,
  messageId: string,
): Promise<boolean> {
  // processedAt is bound rather than left to the column default so it is UTC like Prisma's own writes.
  const inserted = await tx.$executeRaw`
    INSERT INTO "ProcessedMessage" ("consumer", "messageId", "processedAt")
    VALUES (${consumer}, ${messageId}, ${new Date()})
    ON CONFLICT DO NOTHING`;
  return inserted === 1;
}

/** {@link markProcessedPrisma} on a plain-SQL transaction (see `sqlTransaction`). */
export async function markProcessedSql(sql: Sql, consumer: string, messageId: string): Promise<boolean> {
  const result = await sql.query(
    `INSERT INTO "ProcessedMessage" ("consumer", "messageId", "processedAt")
     VALUES ($1, $2, now() AT TIME ZONE 'UTC') ON CONFLICT DO NOTHING`,
    [consumer, messageId],
  );
  return result.rowCount === 1;
}

/**
 * Records that `consumer` handled `messageId`, in the handler's transaction. Returns true the first
 * time, false when it was already recorded: the handler then skips its effects and acks, so a
 * redelivered message is harmless. A concurrent duplicate waits for the first transaction and gets
 * false once it commits (or true if it rolled back).
 */
export async function markProcessed(tx: Tx, consumer: string, messageId: string): Promise<boolean> {
  const result = await tx
    .insertInto('ProcessedMessage')
    .values({ consumer, messageId, processedAt: new Date() })
    .onConflict((conflict) => conflict.doNothing())
    .executeTakeFirst();
  return result.numInsertedOrUpdatedRows === 1n;
}
