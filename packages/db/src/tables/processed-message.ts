import { queryable, type DbOrTx } from '../queryable.js';
import type { Tx } from '../transaction.js';

/*
 * The ProcessedMessage table (the inbox): the one module that writes it. A consumer records each message
 * it handled in the handler's transaction. 
 */

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

/**
 * Whether `consumer` already recorded `messageId` (a read on its own, outside the handler's transaction:
 * a hint to skip expensive work, never the guard itself, which is {@link markProcessed}).
 */
export async function isProcessed(db: DbOrTx, consumer: string, messageId: string): Promise<boolean> {
  const row = await queryable(db)
    .selectFrom('ProcessedMessage')
    .select('messageId')
    .where('consumer', '=', consumer)
    .where('messageId', '=', messageId)
    .executeTakeFirst();
  return row !== undefined;
}
